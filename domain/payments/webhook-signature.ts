/**
 * Stripe's webhook signature scheme, shared by the sandbox (signs and verifies) and the tests
 * of the Stripe implementation (which verifies with the SDK's `constructEvent`).
 *
 *   Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=<…>]
 *
 * Verification, in Stripe's order: the header must parse, one of its v1 signatures must match
 * (constant-time compare; several are allowed, e.g. while a secret is being rolled), and only
 * then is the timestamp checked against the tolerance — so a forged old delivery is a
 * `WebhookSignatureError`, a genuine old one a `WebhookStaleError`. Other schemes in the header
 * (v0, …) are ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookSignatureError, WebhookStaleError } from './payment-gateway';

export const SIGNATURE_HEADER = 'Stripe-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function computeSignature(payload: Buffer | string, timestamp: number, secret: string): string {
  return createHmac('sha256', secret)
    .update(`${timestamp}.`, 'utf8')
    .update(typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload)
    .digest('hex');
}

export interface SignOptions {
  /** Unix seconds; default: now. */
  timestamp?: number;
  /** Sign with several secrets (one v1 per secret), as Stripe does while a secret is rolled. */
  additionalSecrets?: string[];
  now?: () => number;
}

/** The `Stripe-Signature` header value for `payload`. */
export function signPayload(payload: Buffer | string, secret: string, options: SignOptions = {}): string {
  const timestamp = options.timestamp ?? Math.floor((options.now ?? Date.now)() / 1000);
  const secrets = [secret, ...(options.additionalSecrets ?? [])];
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${computeSignature(payload, timestamp, s)}`)].join(',');
}

export interface ParsedSignatureHeader {
  timestamp: number;
  signatures: string[];
}

export function parseSignatureHeader(header: string): ParsedSignatureHeader {
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value) || timestamp !== undefined) {
        throw new WebhookSignatureError('signature header has a malformed or repeated timestamp');
      }
      timestamp = Number(value);
    } else if (key === 'v1') {
      signatures.push(value.toLowerCase());
    }
  }
  if (timestamp === undefined) throw new WebhookSignatureError('signature header has no timestamp');
  if (signatures.length === 0) throw new WebhookSignatureError('signature header has no v1 signature');
  return { timestamp, signatures };
}

export interface VerifyOptions {
  /** Seconds; default 300. 0 disables the age check (for replaying stored deliveries offline). */
  toleranceSeconds?: number;
  /** Current time in ms; default Date.now. */
  now?: () => number;
}

/**
 * Verifies `header` over the raw `payload` with any of `secrets` and returns the signed timestamp.
 * Throws `WebhookSignatureError` or `WebhookStaleError`.
 */
export function verifySignature(
  payload: Buffer | string,
  header: string | undefined,
  secrets: string | readonly string[],
  options: VerifyOptions = {},
): { timestamp: number } {
  if (header === undefined || header.trim() === '') {
    throw new WebhookSignatureError(`missing ${SIGNATURE_HEADER} header`);
  }
  const secretList = typeof secrets === 'string' ? [secrets] : [...secrets];
  if (secretList.length === 0 || secretList.some((s) => typeof s !== 'string' || s === '')) {
    throw new WebhookSignatureError('no webhook secret configured');
  }
  const { timestamp, signatures } = parseSignatureHeader(header);

  let matched = false;
  for (const secret of secretList) {
    const expected = Buffer.from(computeSignature(payload, timestamp, secret), 'hex');
    for (const candidate of signatures) {
      if (!HEX_SHA256.test(candidate)) continue;
      // Both are 32 bytes here; check every pair so timing does not depend on which one matched.
      if (timingSafeEqual(expected, Buffer.from(candidate, 'hex'))) matched = true;
    }
  }
  if (!matched) throw new WebhookSignatureError('no signature matches the payload (forged, tampered, or signed with another secret)');

  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  if (tolerance > 0 && nowSeconds - timestamp > tolerance) {
    throw new WebhookStaleError(
      `signature timestamp is ${nowSeconds - timestamp}s old, more than the tolerance of ${tolerance}s`,
      timestamp,
      tolerance,
    );
  }
  return { timestamp };
}
