/**
 * GSMA SGP.22 (RSP Technical Specification, v2.x) ES2+ — the interface between the Operator
 * (this BSS) and the SM-DP+. Message types and zod schemas, shared by the production client
 * (`es2plus.client.ts`), the inbound notification parser (`es2plus.notifications.ts`) and the
 * local SM-DP+ simulator (`simulators/smdp-plus/`).
 *
 * Transport (SGP.22 §6, JSON binding): HTTPS POST to `<base>/gsma/rsp2/es2plus/<function>`,
 * `Content-Type: application/json`, `X-Admin-Protocol: gsma/rsp/v<x.y.z>`, mutually
 * authenticated TLS. Every request carries `header: { functionRequesterIdentifier,
 * functionCallIdentifier }`; every response carries `header: { functionExecutionStatus }`.
 *
 * Pure module: no I/O.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Protocol constants
// ---------------------------------------------------------------------------------------------

export const ES2PLUS_PATH_PREFIX = '/gsma/rsp2/es2plus';

/** Value of the `X-Admin-Protocol` header. SGP.22 says `gsma/rsp/v<x.y.z>` with the version of
 *  the specification implemented; 2.2.0 is the version whose ES2+ we follow here. Servers are
 *  expected to accept any `gsma/rsp/v2.*`. */
export const ES2PLUS_ADMIN_PROTOCOL = 'gsma/rsp/v2.2.0';
export const ES2PLUS_ADMIN_PROTOCOL_HEADER = 'X-Admin-Protocol';

/** Functions provided by the SM-DP+ and called by the Operator. */
export const ES2PLUS_SMDP_FUNCTIONS = ['downloadOrder', 'confirmOrder', 'cancelOrder', 'releaseProfile'] as const;
export type Es2PlusSmdpFunction = (typeof ES2PLUS_SMDP_FUNCTIONS)[number];

/** Function provided by the Operator and called by the SM-DP+. */
export const ES2PLUS_OPERATOR_FUNCTIONS = ['handleDownloadProgressInfo'] as const;
export type Es2PlusOperatorFunction = (typeof ES2PLUS_OPERATOR_FUNCTIONS)[number];

export type Es2PlusFunction = Es2PlusSmdpFunction | Es2PlusOperatorFunction;

export function es2PlusPath(fn: Es2PlusFunction): string {
  return `${ES2PLUS_PATH_PREFIX}/${fn}`;
}

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/** EID: 32 decimal digits (SGP.22 §4.3.1, SGP.29). */
export const EidSchema = z.string().regex(/^[0-9]{32}$/, 'EID must be 32 decimal digits');

/** ICCID as carried in ES2+ JSON: the ITU-T E.118 number as a string of 19 or 20 digits
 *  (18 tolerated for legacy cards); some SM-DP+ keep the BCD filler `F` of a 19-digit ICCID,
 *  which we accept as well. */
export const IccidSchema = z
  .string()
  .regex(/^(?:[0-9]{18,20}|[0-9]{19}[Ff])$/, 'ICCID must be 18-20 digits');

/** Matching ID. SGP.22 §4.1 allows only upper-case letters, digits and '-' in an Activation
 *  Code (the example is `04386-AGYFT-A74Y8-3F815`); we also tolerate lower case from operators.
 *  A zero-length Matching ID is meaningful in confirmOrder (default SM-DP+ address use case). */
export const MatchingIdSchema = z.string().max(255).regex(/^[0-9A-Za-z-]*$/, 'Matching ID may contain only 0-9, A-Z and -');

/** FQDN of an SM-DP+ or SM-DS (no `$`, which delimits Activation Code fields). */
export const ServerAddressSchema = z.string().min(1).max(255).regex(/^[^$\s]+$/, 'address must not contain $ or spaces');

/** Content-free Profile Type agreed between Operator and SM-DP+. */
export const ProfileTypeSchema = z.string().min(1).max(64);

// ---------------------------------------------------------------------------------------------
// Headers and execution status
// ---------------------------------------------------------------------------------------------

export const RequestHeaderSchema = z.object({
  functionRequesterIdentifier: z.string().min(1).max(255),
  functionCallIdentifier: z.string().min(1).max(255),
});
export type Es2PlusRequestHeader = z.infer<typeof RequestHeaderSchema>;

export const EXECUTION_STATUSES = ['Executed-Success', 'Executed-WithWarning', 'Failed', 'Expired'] as const;
export const ExecutionStatusSchema = z.enum(EXECUTION_STATUSES);
export type Es2PlusExecutionStatus = z.infer<typeof ExecutionStatusSchema>;

const CodeSchema = z.string().regex(/^[0-9]+(?:\.[0-9]+)*$/, 'status codes look like 8.2.1');

export const StatusCodeDataSchema = z.object({
  subjectCode: CodeSchema,
  reasonCode: CodeSchema,
  subjectIdentifier: z.string().optional(),
  message: z.string().optional(),
});
export type Es2PlusStatusCodeData = z.infer<typeof StatusCodeDataSchema>;

export const FunctionExecutionStatusSchema = z.object({
  status: ExecutionStatusSchema,
  statusCodeData: StatusCodeDataSchema.optional(),
});
export type Es2PlusFunctionExecutionStatus = z.infer<typeof FunctionExecutionStatusSchema>;

export const ResponseHeaderSchema = z.object({ functionExecutionStatus: FunctionExecutionStatusSchema });
export type Es2PlusResponseHeader = z.infer<typeof ResponseHeaderSchema>;

/** Any ES2+ response: at least a header. Used to read a Failed answer whatever the function. */
export const AnyResponseSchema = z.object({ header: ResponseHeaderSchema });

// ---------------------------------------------------------------------------------------------
// Requests (Operator → SM-DP+)
// ---------------------------------------------------------------------------------------------

/** ES2+.DownloadOrder (SGP.22 §5.3.1): reserve a Profile, by ICCID or by Profile Type
 *  (at least one of them), optionally linked to an EID. */
export const DownloadOrderRequestSchema = z
  .object({
    header: RequestHeaderSchema,
    eid: EidSchema.optional(),
    iccid: IccidSchema.optional(),
    profileType: ProfileTypeSchema.optional(),
  })
  .refine((r) => r.iccid !== undefined || r.profileType !== undefined, {
    message: 'iccid or profileType is required',
    path: ['profileType'],
  });
export type DownloadOrderRequest = z.infer<typeof DownloadOrderRequestSchema>;

/** ES2+.ConfirmOrder (SGP.22 §5.3.2). `releaseFlag: true` makes the Profile downloadable at once;
 *  `false` waits for ES2+.ReleaseProfile. A missing matchingId is generated by the SM-DP+; a
 *  zero-length one means "no Matching ID" (default SM-DP+ / EID-based download). */
export const ConfirmOrderRequestSchema = z.object({
  header: RequestHeaderSchema,
  iccid: IccidSchema,
  eid: EidSchema.optional(),
  matchingId: MatchingIdSchema.optional(),
  confirmationCode: z.string().min(1).max(255).optional(),
  smdsAddress: ServerAddressSchema.optional(),
  releaseFlag: z.boolean(),
});
export type ConfirmOrderRequest = z.infer<typeof ConfirmOrderRequestSchema>;

export const FINAL_PROFILE_STATUS_INDICATORS = ['Available', 'Unavailable'] as const;
export const FinalProfileStatusIndicatorSchema = z.enum(FINAL_PROFILE_STATUS_INDICATORS);
export type FinalProfileStatusIndicator = z.infer<typeof FinalProfileStatusIndicatorSchema>;

/** ES2+.CancelOrder (SGP.22 §5.3.3): cancel a pending order; the Profile goes back to the pool
 *  (`Available`) or is withdrawn (`Unavailable`). */
export const CancelOrderRequestSchema = z.object({
  header: RequestHeaderSchema,
  iccid: IccidSchema,
  eid: EidSchema.optional(),
  matchingId: MatchingIdSchema.optional(),
  finalProfileStatusIndicator: FinalProfileStatusIndicatorSchema,
});
export type CancelOrderRequest = z.infer<typeof CancelOrderRequestSchema>;

/** ES2+.ReleaseProfile (SGP.22 §5.3.4): release a Profile confirmed with releaseFlag=false. */
export const ReleaseProfileRequestSchema = z.object({
  header: RequestHeaderSchema,
  iccid: IccidSchema,
});
export type ReleaseProfileRequest = z.infer<typeof ReleaseProfileRequestSchema>;

// ---------------------------------------------------------------------------------------------
// Responses (SM-DP+ → Operator)
// ---------------------------------------------------------------------------------------------

export const DownloadOrderResponseSchema = z.object({
  header: ResponseHeaderSchema,
  iccid: IccidSchema,
});
export type DownloadOrderResponse = z.infer<typeof DownloadOrderResponseSchema>;

/** `smdpAddress` is optional in SGP.22 (present when the SM-DP+ wants the Operator to use an
 *  address other than its default one in the Activation Code). */
export const ConfirmOrderResponseSchema = z.object({
  header: ResponseHeaderSchema,
  eid: EidSchema.optional(),
  matchingId: MatchingIdSchema,
  smdpAddress: ServerAddressSchema.optional(),
});
export type ConfirmOrderResponse = z.infer<typeof ConfirmOrderResponseSchema>;

export const HeaderOnlyResponseSchema = z.object({ header: ResponseHeaderSchema });
export type CancelOrderResponse = z.infer<typeof HeaderOnlyResponseSchema>;
export type ReleaseProfileResponse = z.infer<typeof HeaderOnlyResponseSchema>;

export const RESPONSE_SCHEMAS = {
  downloadOrder: DownloadOrderResponseSchema,
  confirmOrder: ConfirmOrderResponseSchema,
  cancelOrder: HeaderOnlyResponseSchema,
  releaseProfile: HeaderOnlyResponseSchema,
} as const;

export const REQUEST_SCHEMAS = {
  downloadOrder: DownloadOrderRequestSchema,
  confirmOrder: ConfirmOrderRequestSchema,
  cancelOrder: CancelOrderRequestSchema,
  releaseProfile: ReleaseProfileRequestSchema,
} as const;

// ---------------------------------------------------------------------------------------------
// Notification (SM-DP+ → Operator): ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5)
// ---------------------------------------------------------------------------------------------

/**
 * notificationPointId — the step reached in the download and installation procedure.
 *
 * 1–4 are the check points SGP.22 v2.x defines for HandleDownloadProgressInfo (confirmed
 * against several independent implementations): 1 eligibility and retry limit check,
 * 2 confirmation failure (too many wrong Confirmation Codes), 3 BPP download, 4 BPP installation.
 *
 * UNSURE: the values for events after installation — the eUICC's "other notifications"
 * (enable, disable, delete) which the SM-DP+ relays — were not available to us in the spec text.
 * One SGP.22-v2.4-aligned SM-DP+ vendor documents 6 = enabled, 7 = disabled, 8 = deleted; another
 * uses 5 for deletion. We emit 6/7/8 from the simulator, and the parser accepts any positive
 * integer so an unknown check point is never rejected, only reported as `unknown`.
 */
export const NotificationPoint = {
  EligibilityAndRetryLimitCheck: 1,
  ConfirmationFailure: 2,
  BppDownload: 3,
  BppInstallation: 4,
  /** UNSURE: see above. */
  ProfileEnabled: 6,
  /** UNSURE: see above. */
  ProfileDisabled: 7,
  /** UNSURE: see above (some SM-DP+ use 5). */
  ProfileDeleted: 8,
} as const;
export type NotificationPointName = keyof typeof NotificationPoint;

export function notificationPointName(id: number): NotificationPointName | 'unknown' {
  for (const [name, value] of Object.entries(NotificationPoint)) if (value === id) return name as NotificationPointName;
  return 'unknown';
}

/** notificationPointId arrives as a JSON number from most SM-DP+, as a numeric string from some. */
const NotificationPointIdSchema = z.union([
  z.number().int().positive(),
  z.string().regex(/^[0-9]+$/).transform((s) => Number(s)),
]);

/** W3C date-time `YYYY-MM-DDThh:mm:ssTZD` (e.g. 2001-12-17T09:30:47Z); fractions tolerated. */
const TimestampSchema = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'timestamp must be a date-time');

export const HandleDownloadProgressInfoRequestSchema = z.object({
  header: RequestHeaderSchema,
  eid: EidSchema.optional(),
  iccid: IccidSchema,
  /** Mandatory in SGP.22; tolerated as missing on receipt so that a notification is never lost
   *  for a field we do not need to act on. */
  profileType: z.string().max(64).optional(),
  timestamp: TimestampSchema,
  notificationPointId: NotificationPointIdSchema,
  notificationPointStatus: FunctionExecutionStatusSchema,
  /** Base64 of the eUICC's ProfileInstallationResultData, when the SM-DP+ passes it on. */
  resultData: z.string().max(8192).optional(),
  /** Present in later SGP.22 versions (device IMEI); informative only. */
  imei: z.string().max(32).optional(),
});
export type HandleDownloadProgressInfoRequest = z.infer<typeof HandleDownloadProgressInfoRequestSchema>;
/** Input shape (before transforms), what an SM-DP+ sends. */
export type HandleDownloadProgressInfoWire = z.input<typeof HandleDownloadProgressInfoRequestSchema>;

// ---------------------------------------------------------------------------------------------
// Status codes (SGP.22 §5.2.6: subject codes, reason codes)
// ---------------------------------------------------------------------------------------------

export const SUBJECT_CODES: Readonly<Record<string, string>> = {
  '1.1': 'Function Requester',
  '1.2': 'Function Provider',
  '1.3.1': 'Protocol Format',
  '1.3.2': 'Protocol Version',
  '1.6': 'Function',
  '8.1': 'eUICC',
  '8.1.1': 'EID',
  '8.2': 'Profile',
  '8.2.1': 'Profile ICCID',
  '8.2.5': 'Profile Type',
  '8.2.6': 'Matching ID',
  '8.2.7': 'Confirmation Code',
  '8.2.10': 'Bound Profile Package',
  '8.8': 'SM-DP+',
  '8.8.5': 'Download order',
  '8.9': 'SM-DS',
};

export const REASON_CODES: Readonly<Record<string, string>> = {
  '1.1': 'Unknown (Identification or Authentication)',
  '1.2': 'Not Allowed (Authorisation)',
  '2.1': 'Invalid',
  '2.2': 'Mandatory Element Missing',
  '2.3': 'Conditional Element Missing',
  '3.1': 'Unsupported',
  '3.3': 'Already in Use (Uniqueness)',
  '3.5': 'Invalid Transition',
  '3.7': 'Unavailable',
  '3.8': 'Refused',
  '3.9': 'Unknown',
  '3.10': 'Invalid Association',
  '4.2': 'Execution Error',
  '4.4': 'Busy',
  '4.10': 'Time to Live Expired',
  '5.1': 'Inaccessible',
  '6.4': 'Maximum number of attempts exceeded',
};

/** The codes the SM-DP+ uses for ES2+ refusals (SGP.22 §5.3.x), by name. */
export const Es2PlusCodes = {
  /** Function requester unknown. */
  RequesterUnknown: { subjectCode: '1.1', reasonCode: '1.1' },
  /** Internal processing error of the function provider (transient). */
  ExecutionError: { subjectCode: '1.2', reasonCode: '4.2' },
  /** Function provider busy (transient). */
  Busy: { subjectCode: '1.2', reasonCode: '4.4' },
  ProtocolVersionUnsupported: { subjectCode: '1.3.2', reasonCode: '3.1' },
  InvalidInput: { subjectCode: '1.6', reasonCode: '2.1' },
  MandatoryElementMissing: { subjectCode: '1.6', reasonCode: '2.2' },
  ConditionalElementMissing: { subjectCode: '1.6', reasonCode: '2.3' },
  /** EID missing (SM-DS address given, or zero-length Matching ID). */
  EidMissing: { subjectCode: '8.1.1', reasonCode: '2.2' },
  EidUnknown: { subjectCode: '8.1.1', reasonCode: '3.9' },
  /** A different EID is already associated with this ICCID. */
  EidMismatch: { subjectCode: '8.1.1', reasonCode: '3.10' },
  IccidNotAllowed: { subjectCode: '8.2.1', reasonCode: '1.2' },
  /** ICCID or finalProfileStatusIndicator missing in cancelOrder. */
  IccidMissing: { subjectCode: '8.2.1', reasonCode: '2.2' },
  /** Profile not available (already in use / downloaded). */
  ProfileNotAvailable: { subjectCode: '8.2.1', reasonCode: '3.3' },
  /** Profile cannot make this transition (e.g. cannot be released). */
  ProfileInvalidTransition: { subjectCode: '8.2.1', reasonCode: '3.5' },
  IccidUnknown: { subjectCode: '8.2.1', reasonCode: '3.9' },
  ProfileTypeNotAllowed: { subjectCode: '8.2.5', reasonCode: '1.2' },
  /** No more Profile available for the requested Profile Type. */
  ProfileTypeExhausted: { subjectCode: '8.2.5', reasonCode: '3.7' },
  /** Profile Type does not match the Profile identified by the ICCID. */
  ProfileTypeMismatch: { subjectCode: '8.2.5', reasonCode: '3.8' },
  ProfileTypeUnknown: { subjectCode: '8.2.5', reasonCode: '3.9' },
  MatchingIdInvalid: { subjectCode: '8.2.6', reasonCode: '2.1' },
  /** Matching ID already in use at the SM-DP+. */
  MatchingIdConflict: { subjectCode: '8.2.6', reasonCode: '3.3' },
  /** A different Matching ID is associated with this ICCID. */
  MatchingIdMismatch: { subjectCode: '8.2.6', reasonCode: '3.10' },
  ConfirmationCodeAttemptsExceeded: { subjectCode: '8.2.7', reasonCode: '6.4' },
  DownloadAttemptsExceeded: { subjectCode: '8.8.5', reasonCode: '6.4' },
  SmdsUnreachable: { subjectCode: '8.9', reasonCode: '5.1' },
} as const satisfies Record<string, { subjectCode: string; reasonCode: string }>;
export type Es2PlusCodeName = keyof typeof Es2PlusCodes;

export function describeStatusCode(subjectCode: string, reasonCode: string): string {
  const subject = SUBJECT_CODES[subjectCode] ?? `subject ${subjectCode}`;
  const reason = REASON_CODES[reasonCode] ?? `reason ${reasonCode}`;
  return `${subject}: ${reason}`;
}

/**
 * Whether a Failed answer is worth retrying (with the same functionCallIdentifier). The spec does
 * not classify codes this way; our rule: "Busy" (x/4.4), the provider's own execution error
 * (1.2/4.2) and transport reasons (x/5.*) are transient; everything else is a business refusal
 * that will not change on retry.
 */
export function isRetryableStatusCode(subjectCode: string, reasonCode: string): boolean {
  if (reasonCode === '4.4') return true;
  if (subjectCode === '1.2' && reasonCode === '4.2') return true;
  if (reasonCode.startsWith('5.')) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/** True when a validation issue is about an absent element (→ 2.2 "Mandatory Element Missing")
 *  rather than a wrong one (→ 2.1 "Invalid"). */
export function isMissingElement(body: unknown, path: ReadonlyArray<PropertyKey>): boolean {
  let cur: unknown = body;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return true;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur === undefined || cur === null;
}

export function successHeader(withWarning?: Es2PlusStatusCodeData): Es2PlusResponseHeader {
  return withWarning
    ? { functionExecutionStatus: { status: 'Executed-WithWarning', statusCodeData: withWarning } }
    : { functionExecutionStatus: { status: 'Executed-Success' } };
}

export function failedResponse(
  code: { subjectCode: string; reasonCode: string },
  message?: string,
  subjectIdentifier?: string,
  status: 'Failed' | 'Expired' = 'Failed',
): { header: Es2PlusResponseHeader } {
  const statusCodeData: Es2PlusStatusCodeData = { subjectCode: code.subjectCode, reasonCode: code.reasonCode };
  if (subjectIdentifier !== undefined) statusCodeData.subjectIdentifier = subjectIdentifier;
  statusCodeData.message = message ?? describeStatusCode(code.subjectCode, code.reasonCode);
  return { header: { functionExecutionStatus: { status, statusCodeData } } };
}
