/**
 * Inbound ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5): the SM-DP+ tells the Operator how a
 * Profile download is going. The API mounts this at `POST /gsma/rsp2/es2plus/handleDownloadProgressInfo`
 * (behind mutual TLS); this module is framework-free: it validates the body and turns it into a
 * domain event, and `handleDownloadProgressInfoRequest` gives the HTTP answer to send back.
 *
 * The SM-DP+ retries a notification it could not deliver with the same functionCallIdentifier,
 * so handlers must be idempotent on (functionRequesterIdentifier, functionCallIdentifier) — or on
 * (iccid, notificationPointId) which is what the eSIM order workflow cares about.
 */
import {
  failedResponse,
  HandleDownloadProgressInfoRequestSchema,
  isMissingElement,
  notificationPointName,
  Es2PlusCodes,
  type Es2PlusExecutionStatus,
  type Es2PlusStatusCodeData,
  type HandleDownloadProgressInfoRequest,
  type NotificationPointName,
} from './es2plus.types';

/** A validated download-progress notification, in the shape the domain uses. */
export interface Es2PlusDownloadProgress {
  functionRequesterIdentifier: string;
  /** Stable across the SM-DP+'s delivery retries: the deduplication key. */
  functionCallIdentifier: string;
  iccid: string;
  eid?: string;
  profileType?: string;
  /** As sent (W3C date-time). */
  timestamp: string;
  occurredAt: Date;
  notificationPointId: number;
  notificationPoint: NotificationPointName | 'unknown';
  status: Es2PlusExecutionStatus;
  statusCodeData?: Es2PlusStatusCodeData;
  /** True for Executed-Success and Executed-WithWarning. */
  succeeded: boolean;
  resultData?: string;
  imei?: string;
}

/** What the API calls for each valid notification. Throw to make the SM-DP+ retry later. */
export type Es2PlusOperatorNotificationHandler = (notification: Es2PlusDownloadProgress) => Promise<void> | void;

export type ParseDownloadProgressResult =
  | { ok: true; notification: Es2PlusDownloadProgress }
  | { ok: false; message: string; issues: Array<{ path: string; message: string }>; missingElement: boolean };

export function toDownloadProgress(req: HandleDownloadProgressInfoRequest): Es2PlusDownloadProgress {
  const n: Es2PlusDownloadProgress = {
    functionRequesterIdentifier: req.header.functionRequesterIdentifier,
    functionCallIdentifier: req.header.functionCallIdentifier,
    iccid: req.iccid,
    timestamp: req.timestamp,
    occurredAt: new Date(req.timestamp),
    notificationPointId: req.notificationPointId,
    notificationPoint: notificationPointName(req.notificationPointId),
    status: req.notificationPointStatus.status,
    succeeded: req.notificationPointStatus.status === 'Executed-Success' || req.notificationPointStatus.status === 'Executed-WithWarning',
  };
  if (req.eid !== undefined) n.eid = req.eid;
  if (req.profileType !== undefined) n.profileType = req.profileType;
  if (req.notificationPointStatus.statusCodeData) n.statusCodeData = req.notificationPointStatus.statusCodeData;
  if (req.resultData !== undefined) n.resultData = req.resultData;
  if (req.imei !== undefined) n.imei = req.imei;
  return n;
}

/** Validates a parsed JSON body of HandleDownloadProgressInfo. */
export function parseHandleDownloadProgressInfo(body: unknown): ParseDownloadProgressResult {
  const parsed = HandleDownloadProgressInfoRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
    const missingElement = parsed.error.issues.some((i) => isMissingElement(body, i.path));
    return { ok: false, message: issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; '), issues, missingElement };
  }
  return { ok: true, notification: toDownloadProgress(parsed.data) };
}

export interface Es2PlusHttpAnswer {
  httpStatus: number;
  /** JSON body, or undefined for 204 No Content. */
  body?: unknown;
}

export interface HandleNotificationOptions {
  /** functionRequesterIdentifier values (SM-DP+ identities) accepted; all when omitted. The real
   *  authentication is the TLS client certificate, checked before this is called. */
  allowedRequesters?: readonly string[];
}

/**
 * Validates the body, calls the handler, and says what to answer:
 * - 204 No Content when handled (the notification function has no output data);
 * - 200 with a Failed header when the message is invalid or the requester unknown (answered,
 *   so the SM-DP+ does not retry a message that can never succeed);
 * - 500 when the handler throws, so that the SM-DP+ retries later.
 * A body that is not JSON at all is the caller's 400.
 */
export async function handleDownloadProgressInfoRequest(
  body: unknown,
  handler: Es2PlusOperatorNotificationHandler,
  options: HandleNotificationOptions = {},
): Promise<Es2PlusHttpAnswer> {
  const parsed = parseHandleDownloadProgressInfo(body);
  if (!parsed.ok) {
    const code = parsed.missingElement ? Es2PlusCodes.MandatoryElementMissing : Es2PlusCodes.InvalidInput;
    return { httpStatus: 200, body: failedResponse(code, parsed.message) };
  }
  const n = parsed.notification;
  if (options.allowedRequesters && !options.allowedRequesters.includes(n.functionRequesterIdentifier)) {
    return { httpStatus: 200, body: failedResponse(Es2PlusCodes.RequesterUnknown, 'unknown function requester', n.functionRequesterIdentifier) };
  }
  try {
    await handler(n);
  } catch (err) {
    return { httpStatus: 500, body: failedResponse(Es2PlusCodes.ExecutionError, err instanceof Error ? err.message : 'handler failed') };
  }
  return { httpStatus: 204 };
}
