/**
 * Production ES2+ client (Operator → SM-DP+), GSMA SGP.22 §5.3 over the JSON/HTTPS binding.
 *
 * - One POST per function to `<baseUrl>/gsma/rsp2/es2plus/<function>`, with mutual TLS when
 *   `tls` is given (PEM strings) and a keep-alive agent.
 * - Every call has a functionCallIdentifier: a fresh UUID, or the caller's own so that a retried
 *   Temporal activity repeats the *same* call and the SM-DP+ answers it idempotently.
 * - A `Failed`/`Expired` execution status, an HTTP error, a timeout or a broken connection become
 *   an `Es2PlusError` whose `retryable` says whether trying again (with the same identifier) can
 *   help: transport errors, timeouts, 5xx, Busy and Expired can; business refusals cannot.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { randomUUID } from 'node:crypto';
import {
  AnyResponseSchema,
  describeStatusCode,
  ES2PLUS_ADMIN_PROTOCOL,
  ES2PLUS_ADMIN_PROTOCOL_HEADER,
  es2PlusPath,
  isRetryableStatusCode,
  REQUEST_SCHEMAS,
  RESPONSE_SCHEMAS,
  type ConfirmOrderResponse,
  type DownloadOrderResponse,
  type Es2PlusSmdpFunction,
  type Es2PlusStatusCodeData,
  type FinalProfileStatusIndicator,
} from './es2plus.types';

export {
  buildActivationCode,
  parseActivationCode,
  activationCodeQrPng,
  activationCodeQrDataUrl,
  InvalidActivationCodeError,
  type ActivationCodeOptions,
  type ParsedActivationCode,
} from './es2plus.activation-code';
export {
  parseHandleDownloadProgressInfo,
  handleDownloadProgressInfoRequest,
  type Es2PlusDownloadProgress,
  type Es2PlusOperatorNotificationHandler,
  type ParseDownloadProgressResult,
  type Es2PlusHttpAnswer,
} from './es2plus.notifications';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface Es2PlusTlsConfig {
  /** Operator client certificate chain (PEM). */
  cert: string;
  /** Private key of the client certificate (PEM). */
  key: string;
  /** CA bundle that signs the SM-DP+ server certificate (PEM); the system CAs when omitted. */
  ca?: string;
}

export interface Es2PlusClientConfig {
  /** e.g. `https://smdp.example.com:443` (a path prefix is kept). */
  baseUrl: string;
  /** Our identity towards the SM-DP+ (agreed out of band). */
  functionRequesterIdentifier: string;
  /** Mutual TLS (required by SGP.22 in production; omit only for the local simulator). */
  tls?: Es2PlusTlsConfig;
  /** Whole-call deadline (connect + answer). Default 10 000 ms. */
  timeoutMs?: number;
  /** SM-DP+ address for Activation Codes when confirmOrder does not return one. Defaults to the
   *  host name of `baseUrl`. */
  smdpAddress?: string;
  /** `X-Admin-Protocol` value; default `gsma/rsp/v2.2.0`. */
  adminProtocol?: string;
  /** Called when the SM-DP+ answers `Executed-WithWarning` (the call still succeeds). */
  onWarning?: (fn: Es2PlusSmdpFunction, warning: Es2PlusStatusCodeData | undefined, functionCallIdentifier: string) => void;
  /** Largest answer accepted; default 1 MiB. */
  maxResponseBytes?: number;
}

export interface Es2PlusCallOptions {
  /** Reuse an identifier (e.g. `<orderId>:downloadOrder`) so retries are idempotent. */
  functionCallIdentifier?: string;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
}

export interface DownloadOrderInput {
  eid?: string;
  iccid?: string;
  profileType?: string;
}
export interface DownloadOrderResult {
  iccid: string;
}

export interface ConfirmOrderInput {
  iccid: string;
  eid?: string;
  matchingId?: string;
  confirmationCode?: string;
  smdsAddress?: string;
  releaseFlag: boolean;
}
export interface ConfirmOrderResult {
  eid?: string;
  matchingId: string;
  /** From the answer, else the configured/derived SM-DP+ address. */
  smdpAddress: string;
}

export interface CancelOrderInput {
  iccid: string;
  eid?: string;
  matchingId?: string;
  finalProfileStatusIndicator: FinalProfileStatusIndicator;
}

export interface ReleaseProfileInput {
  iccid: string;
}

/** The port activities depend on; `Es2PlusClient` is the real one, tests may fake it. */
export interface Es2PlusOperatorPort {
  downloadOrder(input: DownloadOrderInput, options?: Es2PlusCallOptions): Promise<DownloadOrderResult>;
  confirmOrder(input: ConfirmOrderInput, options?: Es2PlusCallOptions): Promise<ConfirmOrderResult>;
  cancelOrder(input: CancelOrderInput, options?: Es2PlusCallOptions): Promise<void>;
  releaseProfile(input: ReleaseProfileInput, options?: Es2PlusCallOptions): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

export type Es2PlusErrorKind =
  /** The SM-DP+ executed the function and answered `Failed` with subject/reason codes. */
  | 'Failed'
  /** The SM-DP+ answered `Expired`. */
  | 'Expired'
  /** No complete answer within the deadline. */
  | 'Timeout'
  /** Connection refused/reset, DNS, TLS handshake... */
  | 'Transport'
  /** HTTP error status without an ES2+ answer. */
  | 'Http'
  /** An answer that is not valid ES2+. */
  | 'Protocol'
  /** Our own request failed validation; nothing was sent. */
  | 'InvalidRequest';

export interface Es2PlusErrorDetails {
  kind: Es2PlusErrorKind;
  functionName: Es2PlusSmdpFunction;
  functionCallIdentifier: string;
  retryable: boolean;
  subjectCode?: string;
  reasonCode?: string;
  subjectIdentifier?: string;
  statusMessage?: string;
  httpStatus?: number;
  /** Node error code for transport errors (ECONNREFUSED...). */
  code?: string;
  cause?: unknown;
}

export class Es2PlusError extends Error {
  readonly kind: Es2PlusErrorKind;
  readonly functionName: Es2PlusSmdpFunction;
  readonly functionCallIdentifier: string;
  readonly retryable: boolean;
  readonly subjectCode?: string;
  readonly reasonCode?: string;
  readonly subjectIdentifier?: string;
  /** The SM-DP+'s own message from statusCodeData. */
  readonly statusMessage?: string;
  readonly httpStatus?: number;
  readonly code?: string;

  constructor(message: string, details: Es2PlusErrorDetails) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'Es2PlusError';
    this.kind = details.kind;
    this.functionName = details.functionName;
    this.functionCallIdentifier = details.functionCallIdentifier;
    this.retryable = details.retryable;
    if (details.subjectCode !== undefined) this.subjectCode = details.subjectCode;
    if (details.reasonCode !== undefined) this.reasonCode = details.reasonCode;
    if (details.subjectIdentifier !== undefined) this.subjectIdentifier = details.subjectIdentifier;
    if (details.statusMessage !== undefined) this.statusMessage = details.statusMessage;
    if (details.httpStatus !== undefined) this.httpStatus = details.httpStatus;
    if (details.code !== undefined) this.code = details.code;
  }

  /** `8.2.1/3.9` style, or undefined when the SM-DP+ gave no codes. */
  get statusCode(): string | undefined {
    return this.subjectCode !== undefined && this.reasonCode !== undefined ? `${this.subjectCode}/${this.reasonCode}` : undefined;
  }

  /** Plain data, e.g. for a Temporal ApplicationFailure's details. */
  toJSON(): Omit<Es2PlusErrorDetails, 'cause'> & { message: string } {
    const out: Omit<Es2PlusErrorDetails, 'cause'> & { message: string } = {
      message: this.message,
      kind: this.kind,
      functionName: this.functionName,
      functionCallIdentifier: this.functionCallIdentifier,
      retryable: this.retryable,
    };
    if (this.subjectCode !== undefined) out.subjectCode = this.subjectCode;
    if (this.reasonCode !== undefined) out.reasonCode = this.reasonCode;
    if (this.subjectIdentifier !== undefined) out.subjectIdentifier = this.subjectIdentifier;
    if (this.statusMessage !== undefined) out.statusMessage = this.statusMessage;
    if (this.httpStatus !== undefined) out.httpStatus = this.httpStatus;
    if (this.code !== undefined) out.code = this.code;
    return out;
  }
}

export function isEs2PlusError(err: unknown): err is Es2PlusError {
  return err instanceof Es2PlusError;
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

interface RawAnswer {
  status: number;
  body: string;
}

class TimeoutSignal extends Error {}
class TooLargeSignal extends Error {}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 1 << 20;

export function newFunctionCallIdentifier(): string {
  return randomUUID();
}

export class Es2PlusClient implements Es2PlusOperatorPort {
  private readonly base: URL;
  private readonly isHttps: boolean;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly defaultSmdpAddress: string;
  private readonly adminProtocol: string;
  private readonly maxResponseBytes: number;

  constructor(private readonly config: Es2PlusClientConfig) {
    this.base = new URL(config.baseUrl);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') throw new Error(`ES2+ baseUrl must be http(s): ${config.baseUrl}`);
    this.isHttps = this.base.protocol === 'https:';
    if (config.tls && !this.isHttps) throw new Error('ES2+ client: tls is configured but baseUrl is not https');
    if (!config.functionRequesterIdentifier) throw new Error('ES2+ client: functionRequesterIdentifier is required');
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.defaultSmdpAddress = config.smdpAddress ?? this.base.hostname;
    this.adminProtocol = config.adminProtocol ?? ES2PLUS_ADMIN_PROTOCOL;
    this.maxResponseBytes = config.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.agent = this.isHttps
      ? new https.Agent({
          keepAlive: true,
          ...(config.tls ? { cert: config.tls.cert, key: config.tls.key } : {}),
          ...(config.tls?.ca ? { ca: config.tls.ca } : {}),
        })
      : new http.Agent({ keepAlive: true });
  }

  /** Frees pooled connections. */
  close(): void {
    this.agent.destroy();
  }

  async downloadOrder(input: DownloadOrderInput, options?: Es2PlusCallOptions): Promise<DownloadOrderResult> {
    const res = (await this.call('downloadOrder', pick(input, ['eid', 'iccid', 'profileType']), options)) as DownloadOrderResponse;
    return { iccid: res.iccid };
  }

  async confirmOrder(input: ConfirmOrderInput, options?: Es2PlusCallOptions): Promise<ConfirmOrderResult> {
    const res = (await this.call(
      'confirmOrder',
      pick(input, ['iccid', 'eid', 'matchingId', 'confirmationCode', 'smdsAddress', 'releaseFlag']),
      options,
    )) as ConfirmOrderResponse;
    const out: ConfirmOrderResult = { matchingId: res.matchingId, smdpAddress: res.smdpAddress ?? this.defaultSmdpAddress };
    if (res.eid !== undefined) out.eid = res.eid;
    return out;
  }

  async cancelOrder(input: CancelOrderInput, options?: Es2PlusCallOptions): Promise<void> {
    await this.call('cancelOrder', pick(input, ['iccid', 'eid', 'matchingId', 'finalProfileStatusIndicator']), options);
  }

  async releaseProfile(input: ReleaseProfileInput, options?: Es2PlusCallOptions): Promise<void> {
    await this.call('releaseProfile', pick(input, ['iccid']), options);
  }

  // -------------------------------------------------------------------------------------------

  private async call(fn: Es2PlusSmdpFunction, payload: Record<string, unknown>, options?: Es2PlusCallOptions): Promise<unknown> {
    const functionCallIdentifier = options?.functionCallIdentifier ?? newFunctionCallIdentifier();
    const request = { header: { functionRequesterIdentifier: this.config.functionRequesterIdentifier, functionCallIdentifier }, ...payload };
    const err = (kind: Es2PlusErrorKind, message: string, extra: Partial<Es2PlusErrorDetails> = {}): Es2PlusError =>
      new Es2PlusError(`ES2+ ${fn}: ${message}`, { kind, functionName: fn, functionCallIdentifier, retryable: false, ...extra });

    const valid = REQUEST_SCHEMAS[fn].safeParse(request);
    if (!valid.success) {
      throw err('InvalidRequest', valid.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
    }

    let raw: RawAnswer;
    try {
      raw = await this.post(fn, JSON.stringify(request), options?.timeoutMs ?? this.timeoutMs);
    } catch (e) {
      if (e instanceof TimeoutSignal) throw err('Timeout', `no answer within ${options?.timeoutMs ?? this.timeoutMs} ms`, { retryable: true });
      if (e instanceof TooLargeSignal) throw err('Protocol', `answer larger than ${this.maxResponseBytes} bytes`);
      const code = (e as NodeJS.ErrnoException)?.code;
      throw err('Transport', (e as Error)?.message ?? String(e), { retryable: true, cause: e, ...(code ? { code } : {}) });
    }

    // Header-only functions may be answered 204 No Content by some SM-DP+.
    if (raw.status === 204 && (fn === 'cancelOrder' || fn === 'releaseProfile')) return { header: { functionExecutionStatus: { status: 'Executed-Success' } } };

    let json: unknown;
    let jsonOk = false;
    try {
      json = raw.body.length > 0 ? JSON.parse(raw.body) : undefined;
      jsonOk = json !== undefined;
    } catch {
      jsonOk = false;
    }
    const envelope = jsonOk ? AnyResponseSchema.safeParse(json) : undefined;

    if (envelope?.success) {
      const st = envelope.data.header.functionExecutionStatus;
      const scd = st.statusCodeData;
      if (st.status === 'Failed' || st.status === 'Expired') {
        const codes = scd ? ` ${scd.subjectCode}/${scd.reasonCode} (${scd.message ?? describeStatusCode(scd.subjectCode, scd.reasonCode)})` : '';
        const retryable = st.status === 'Expired' || (scd ? isRetryableStatusCode(scd.subjectCode, scd.reasonCode) : raw.status >= 500);
        throw err(st.status, `${st.status}${codes}`, {
          retryable,
          httpStatus: raw.status,
          ...(scd?.subjectCode !== undefined ? { subjectCode: scd.subjectCode } : {}),
          ...(scd?.reasonCode !== undefined ? { reasonCode: scd.reasonCode } : {}),
          ...(scd?.subjectIdentifier !== undefined ? { subjectIdentifier: scd.subjectIdentifier } : {}),
          ...(scd?.message !== undefined ? { statusMessage: scd.message } : {}),
        });
      }
      if (raw.status < 200 || raw.status >= 300) {
        throw err('Http', `HTTP ${raw.status} with a ${st.status} header`, { retryable: httpRetryable(raw.status), httpStatus: raw.status });
      }
      const full = RESPONSE_SCHEMAS[fn].safeParse(json);
      if (!full.success) {
        throw err('Protocol', `invalid answer: ${full.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, { httpStatus: raw.status });
      }
      if (st.status === 'Executed-WithWarning') this.config.onWarning?.(fn, scd, functionCallIdentifier);
      return full.data;
    }

    if (raw.status < 200 || raw.status >= 300) {
      throw err('Http', `HTTP ${raw.status}${raw.body ? `: ${raw.body.slice(0, 200)}` : ''}`, { retryable: httpRetryable(raw.status), httpStatus: raw.status });
    }
    throw err('Protocol', jsonOk ? 'answer has no ES2+ header' : 'answer is not JSON', { httpStatus: raw.status });
  }

  private post(fn: Es2PlusSmdpFunction, body: string, timeoutMs: number): Promise<RawAnswer> {
    const basePath = this.base.pathname.replace(/\/+$/, '');
    const options: http.RequestOptions = {
      method: 'POST',
      protocol: this.base.protocol,
      hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
      port: this.base.port || (this.isHttps ? 443 : 80),
      path: `${basePath}${es2PlusPath(fn)}`,
      agent: this.agent,
      headers: {
        'Content-Type': 'application/json;charset=UTF-8',
        Accept: 'application/json',
        [ES2PLUS_ADMIN_PROTOCOL_HEADER]: this.adminProtocol,
        'Content-Length': Buffer.byteLength(body),
      },
    };
    const send = this.isHttps ? https.request : http.request;
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (fnSettle: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fnSettle();
      };
      const req = send(options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxResponseBytes) {
            finish(() => reject(new TooLargeSignal()));
            req.destroy();
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
        res.on('error', (e) => finish(() => reject(e)));
        res.on('close', () => {
          if (!res.complete) finish(() => reject(Object.assign(new Error('answer cut short'), { code: 'ECONNRESET' })));
        });
      });
      const timer = setTimeout(() => {
        finish(() => reject(new TimeoutSignal()));
        req.destroy();
      }, timeoutMs);
      req.on('error', (e) => finish(() => reject(e)));
      req.end(body);
    });
  }
}

function httpRetryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function pick<T extends object, K extends keyof T>(obj: T, keys: readonly K[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k as string] = obj[k];
  return out;
}
