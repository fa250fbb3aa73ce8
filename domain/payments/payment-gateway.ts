/**
 * The payment gateway as the rest of the system sees it (top-ups, auto top-up, invoice
 * collection, the inbound webhook endpoint). Two implementations:
 *  - `SandboxPaymentGateway` (sandbox-payment-gateway.ts): in memory, the default for
 *    development and tests; Stripe-like test payment methods and Stripe-signed webhooks.
 *  - `StripePaymentGateway` (stripe-payment-gateway.ts): production, on the official SDK.
 *
 * Money: `amountMinor` is an integer count of the currency's minor unit (cents for EUR,
 * yen for JPY) as a `bigint`; `currency` is an upper-case ISO 4217 code ('EUR'). No floats.
 *
 * Outcomes vs errors:
 *  - A declined card, a payment needing the customer's authentication, a failed attempt are
 *    normal results (`CapturePaymentResult.status`), never exceptions.
 *  - Exceptions are `PaymentGatewayError`s. `retryable === true`
 *    (`PaymentGatewayUnavailableError`: network, gateway 5xx, rate limit, a concurrent request
 *    on the same idempotency key) means "the state at the gateway is unknown or unchanged; call
 *    again WITH THE SAME idempotency key". `retryable === false`
 *    (`PaymentGatewayRequestError`, `IdempotencyKeyReuseError`) means retrying cannot help:
 *    a bug, a bad configuration, an unknown customer, a refund above what is left.
 *    Activities turn the latter into non-retryable Temporal failures.
 *
 * Idempotency: every call that moves money takes an `idempotencyKey` that is passed to the
 * gateway. The same key with the same parameters returns the first call's result (including
 * a decline: to try again after a decline, use a new key); the same key with different
 * parameters throws `IdempotencyKeyReuseError`. Stripe keeps keys for at least 24 hours, so
 * the key is what makes Temporal's activity retries safe, not a permanent dedupe: derive it
 * from the business key (`top-up:<id>:capture`) and also record the `paymentRef`.
 */

/** Upper-case ISO 4217 alphabetic code, e.g. 'EUR', 'USD', 'JPY'. */
export type CurrencyCode = string;

/** Gateway metadata: string keys and values (Stripe: ≤ 50 keys, key ≤ 40 chars, value ≤ 500 chars). */
export type PaymentMetadata = Record<string, string>;

export interface CreateCustomerInput {
  /** Our billing account; stored in the gateway's metadata as `billing_account_id`. */
  billingAccountId: string;
  email?: string;
  name?: string;
  metadata?: PaymentMetadata;
  idempotencyKey?: string;
}

export interface GatewayCustomer {
  customerRef: string;
}

export interface AttachPaymentMethodInput {
  customerRef: string;
  /** A payment method created client-side (Stripe.js / Elements), or a test token such as `pm_card_visa`. */
  paymentMethodRef: string;
  /** Make it the customer's default method (Stripe: `invoice_settings.default_payment_method`). */
  setAsDefault?: boolean;
  idempotencyKey?: string;
}

export interface SavedPaymentMethod {
  /** The saved method's id: store it on the billing account and pass it to `capturePayment`. */
  paymentMethodRef: string;
  customerRef: string;
  type: string;
  card?: { brand: string; last4: string; expMonth: number; expYear: number };
}

export interface CapturePaymentInput {
  /** > 0, in minor units of `currency`. */
  amountMinor: bigint;
  currency: CurrencyCode;
  customerRef: string;
  /** A saved method of `customerRef`: the charge is made off-session (no customer present). */
  paymentMethodRef: string;
  idempotencyKey: string;
  description?: string;
  metadata?: PaymentMetadata;
}

/**
 * - `succeeded`: the money is captured.
 * - `declined`: the issuer or the gateway's risk rules refused; `declineCode` says why
 *   ('card_declined', 'insufficient_funds', 'expired_card', ...). Retry only with a new key.
 * - `requires_action`: not settled now — the customer must authenticate (3-D Secure) on-session,
 *   or the method is still processing; the final outcome arrives by webhook
 *   (`payment.succeeded` / `payment.failed`).
 * - `failed`: the attempt exists at the gateway but ended without a decline (canceled, error).
 */
export type CapturePaymentStatus = 'succeeded' | 'declined' | 'requires_action' | 'failed';

export interface CapturePaymentResult {
  status: CapturePaymentStatus;
  /** The gateway's payment id (Stripe PaymentIntent `pi_…`); present for every status. */
  paymentRef: string;
  declineCode?: string;
  message?: string;
}

export interface RefundPaymentInput {
  paymentRef: string;
  /** Default: everything not yet refunded. Never more than that. */
  amountMinor?: bigint;
  idempotencyKey: string;
  reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer';
  metadata?: PaymentMetadata;
}

export type RefundStatus = 'succeeded' | 'pending' | 'failed' | 'canceled' | 'requires_action';

export interface RefundResult {
  refundRef: string;
  paymentRef: string;
  status: RefundStatus;
  amountMinor: bigint;
  currency: CurrencyCode;
}

export type PaymentStatus = CapturePaymentStatus;

export interface PaymentDetails {
  paymentRef: string;
  status: PaymentStatus;
  amountMinor: bigint;
  /** Captured so far (equals `amountMinor` once succeeded, 0 otherwise). */
  amountCapturedMinor: bigint;
  amountRefundedMinor: bigint;
  currency: CurrencyCode;
  customerRef: string | null;
  paymentMethodRef: string | null;
  declineCode?: string;
  message?: string;
  description?: string;
  metadata: PaymentMetadata;
  createdAt: Date;
}

/** Headers as node's `IncomingMessage.headers` has them; looked up case-insensitively. */
export type WebhookHeaders = Record<string, string | string[] | undefined>;

export type PaymentWebhookEventType =
  | 'payment.succeeded'
  | 'payment.failed'
  | 'payment.requires_action'
  | 'refund.succeeded'
  | 'refund.failed';

/**
 * A verified gateway event the system acts on. Deduplicate by `id` (gateways deliver at least
 * once); handlers must also be idempotent on `paymentRef` / `refundRef`, because a gateway may
 * report one outcome in more than one event (Stripe: `refund.created` and `refund.updated`).
 */
export interface PaymentWebhookEvent {
  id: string;
  type: PaymentWebhookEventType;
  /** The gateway's own event type, e.g. 'payment_intent.succeeded'. */
  gatewayType: string;
  paymentRef: string;
  /** Set on refund.* events. */
  refundRef?: string;
  /** The payment's amount (payment.*) or the refund's (refund.*). */
  amountMinor: bigint;
  currency: CurrencyCode;
  customerRef?: string;
  declineCode?: string;
  message?: string;
  metadata: PaymentMetadata;
  /** When the gateway created the event. */
  createdAt: Date;
}

/** A verified event of a kind the system does not act on (acknowledge it with 2xx). */
export interface IgnoredWebhookEvent {
  id: string;
  type: 'ignored';
  gatewayType: string;
  createdAt: Date;
}

export type WebhookEvent = PaymentWebhookEvent | IgnoredWebhookEvent;

export interface PaymentGateway {
  /** 'sandbox' | 'stripe': recorded with payments so references can be told apart. */
  readonly name: string;
  createCustomer(input: CreateCustomerInput): Promise<GatewayCustomer>;
  attachPaymentMethod(input: AttachPaymentMethodInput): Promise<SavedPaymentMethod>;
  capturePayment(input: CapturePaymentInput): Promise<CapturePaymentResult>;
  refundPayment(input: RefundPaymentInput): Promise<RefundResult>;
  /** null when the gateway does not know the payment. */
  getPayment(paymentRef: string): Promise<PaymentDetails | null>;
  /**
   * Verifies a webhook delivery on the raw, unparsed request body and normalises it.
   * Throws `WebhookSignatureError` (missing/forged signature, tampered body),
   * `WebhookStaleError` (valid signature, timestamp older than the tolerance: a replay) or
   * `WebhookPayloadError` (signed but not an event).
   */
  verifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<WebhookEvent>;
}

// ---------------------------------------------------------------------------------------
// Errors

export abstract class PaymentGatewayError extends Error {
  abstract readonly retryable: boolean;
  /** A short machine-readable reason (the gateway's own error code where it has one). */
  readonly code: string;
  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Transport failure, gateway outage (5xx), rate limit, lock on the idempotency key: retry with the same key. */
export class PaymentGatewayUnavailableError extends PaymentGatewayError {
  readonly retryable = true;
  constructor(message: string, code = 'gateway_unavailable', options?: { cause?: unknown }) {
    super(message, code, options);
  }
}

/** The request cannot succeed as made (invalid parameters, unknown object, over-refund, bad credentials). */
export class PaymentGatewayRequestError extends PaymentGatewayError {
  readonly retryable = false;
  readonly param?: string;
  constructor(message: string, code = 'invalid_request', options?: { cause?: unknown; param?: string }) {
    super(message, code, options);
    this.param = options?.param;
  }
}

/** The idempotency key was used before with different parameters. */
export class IdempotencyKeyReuseError extends PaymentGatewayRequestError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'idempotency_key_reused', options);
  }
}

export abstract class WebhookVerificationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Missing or malformed signature header, or no signature matches the body (forged or tampered). */
export class WebhookSignatureError extends WebhookVerificationError {}

/** The signature is valid but its timestamp is outside the tolerance (a replay, or a badly delayed delivery). */
export class WebhookStaleError extends WebhookVerificationError {
  constructor(
    message: string,
    readonly timestamp: number,
    readonly toleranceSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The signature is valid but the body is not an event this gateway understands. */
export class WebhookPayloadError extends WebhookVerificationError {}

// ---------------------------------------------------------------------------------------
// Shared input checks (both implementations validate before calling out).

const CURRENCY = /^[A-Z]{3}$/;

export function assertCurrency(currency: string): void {
  if (typeof currency !== 'string' || !CURRENCY.test(currency)) {
    throw new PaymentGatewayRequestError(
      `currency must be an upper-case ISO 4217 code, got ${JSON.stringify(currency)}`,
      'invalid_currency',
      { param: 'currency' },
    );
  }
}

/** Positive integer minor units that fit the gateway's JSON number exactly. */
export function assertAmountMinor(amountMinor: bigint, param = 'amountMinor'): void {
  if (typeof amountMinor !== 'bigint') {
    throw new PaymentGatewayRequestError(`${param} must be a bigint, got ${typeof amountMinor}`, 'invalid_amount', {
      param,
    });
  }
  if (amountMinor <= 0n || amountMinor > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new PaymentGatewayRequestError(`${param} must be a positive integer of minor units, got ${amountMinor}`, 'invalid_amount', {
      param,
    });
  }
}

export function assertIdempotencyKey(key: string | undefined, required: boolean): void {
  if (key === undefined && !required) return;
  if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
    throw new PaymentGatewayRequestError('idempotencyKey must be a non-empty string of at most 255 characters', 'invalid_idempotency_key', {
      param: 'idempotencyKey',
    });
  }
}

/** Case-insensitive header lookup; a header sent twice is refused (there is exactly one signature header). */
export function singleHeader(headers: WebhookHeaders, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    if (Array.isArray(value)) {
      if (value.length !== 1) throw new WebhookSignatureError(`expected one ${name} header, got ${value.length}`);
      return value[0];
    }
    return value;
  }
  return undefined;
}
