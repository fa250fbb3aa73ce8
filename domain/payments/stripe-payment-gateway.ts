/**
 * The production gateway, on the official `stripe` SDK.
 *
 *  - createCustomer → customers.create (billing account id in metadata)
 *  - attachPaymentMethod → paymentMethods.attach (+ customers.update for the default method)
 *  - capturePayment → paymentIntents.create with confirm + off_session on the saved method,
 *    automatic capture, redirects disallowed (no return URL off-session)
 *  - refundPayment → refunds.create on the PaymentIntent
 *  - getPayment → paymentIntents.retrieve (latest_charge expanded for refunded amounts)
 *  - verifyWebhook → stripe.webhooks.constructEvent, then the shared Stripe event normaliser
 *
 * Every money-moving call sends the caller's idempotency key as Stripe's `Idempotency-Key`.
 * SDK errors are mapped: card errors are results ('declined', or 'requires_action' when
 * authentication is required off-session); connection errors, 409 (a concurrent request on the
 * key), 429 and 5xx are `PaymentGatewayUnavailableError` (retryable); the rest
 * `PaymentGatewayRequestError` / `IdempotencyKeyReuseError`.
 *
 * Amounts: the interface's bigint minor units go to Stripe as JSON integers; Stripe's `amount`
 * is in the currency's smallest unit as the interface's is. Currencies go lower-case to Stripe
 * and come back upper-case.
 */
import Stripe from 'stripe';
import {
  type AttachPaymentMethodInput,
  type CapturePaymentInput,
  type CapturePaymentResult,
  type CreateCustomerInput,
  type GatewayCustomer,
  IdempotencyKeyReuseError,
  type PaymentDetails,
  type PaymentGateway,
  PaymentGatewayError,
  PaymentGatewayRequestError,
  PaymentGatewayUnavailableError,
  type PaymentMetadata,
  type RefundPaymentInput,
  type RefundResult,
  type RefundStatus,
  type SavedPaymentMethod,
  type WebhookEvent,
  type WebhookHeaders,
  WebhookPayloadError,
  WebhookSignatureError,
  WebhookStaleError,
  assertAmountMinor,
  assertCurrency,
  assertIdempotencyKey,
  singleHeader,
} from './payment-gateway';
import { declineCodeOf, normaliseStripeEvent } from './stripe-events';
import { DEFAULT_TOLERANCE_SECONDS, parseSignatureHeader } from './webhook-signature';

export interface StripePaymentGatewayOptions {
  /** Secret key, `sk_live_…` / `sk_test_…` (or a restricted key). */
  apiKey: string;
  /** Endpoint signing secret(s), `whsec_…`; several while one is being rolled. */
  webhookSecret: string | string[];
  /** API host; tests point these at stripe-mock on loopback. */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** SDK-level retries of a failed request, with the same idempotency key. SDK default 1. */
  maxNetworkRetries?: number;
  /** Per-request timeout, ms. SDK default 80 s. */
  timeoutMs?: number;
  /** Default 300 s. */
  webhookToleranceSeconds?: number;
  /** Clock in ms (webhook age). Default Date.now. */
  now?: () => number;
}

const STALE_MESSAGE = 'Timestamp outside the tolerance zone';

export class StripePaymentGateway implements PaymentGateway {
  readonly name = 'stripe';
  /** The SDK client (for listeners such as `client.on('request', …)`). */
  readonly client: Stripe;
  private readonly secrets: string[];
  private readonly now: () => number;

  constructor(private readonly options: StripePaymentGatewayOptions) {
    if (!options.apiKey) throw new Error('StripePaymentGateway: apiKey is required');
    this.secrets = typeof options.webhookSecret === 'string' ? [options.webhookSecret] : [...options.webhookSecret];
    if (this.secrets.length === 0 || this.secrets.some((s) => !s)) throw new Error('StripePaymentGateway: webhookSecret is required');
    this.now = options.now ?? Date.now;
    this.client = new Stripe(options.apiKey, {
      host: options.host,
      port: options.port,
      protocol: options.protocol,
      maxNetworkRetries: options.maxNetworkRetries,
      timeout: options.timeoutMs,
      appInfo: { name: 'mvno-bss' },
    });
  }

  async createCustomer(input: CreateCustomerInput): Promise<GatewayCustomer> {
    assertIdempotencyKey(input.idempotencyKey, false);
    if (!input.billingAccountId) throw new PaymentGatewayRequestError('billingAccountId is required', 'parameter_missing');
    const customer = await this.call(() =>
      this.client.customers.create(
        {
          email: input.email,
          name: input.name,
          metadata: { ...input.metadata, billing_account_id: input.billingAccountId },
        },
        requestOptions(input.idempotencyKey),
      ),
    );
    return { customerRef: customer.id };
  }

  async attachPaymentMethod(input: AttachPaymentMethodInput): Promise<SavedPaymentMethod> {
    assertIdempotencyKey(input.idempotencyKey, false);
    const pm = await this.call(() =>
      this.client.paymentMethods.attach(
        input.paymentMethodRef,
        { customer: input.customerRef },
        requestOptions(input.idempotencyKey),
      ),
    );
    if (input.setAsDefault) {
      await this.call(() =>
        this.client.customers.update(
          input.customerRef,
          { invoice_settings: { default_payment_method: pm.id } },
          requestOptions(input.idempotencyKey && `${input.idempotencyKey}:default`),
        ),
      );
    }
    const saved: SavedPaymentMethod = {
      paymentMethodRef: pm.id,
      customerRef: refId(pm.customer) ?? input.customerRef,
      type: pm.type,
    };
    if (pm.card) {
      saved.card = { brand: pm.card.brand, last4: pm.card.last4, expMonth: pm.card.exp_month, expYear: pm.card.exp_year };
    }
    return saved;
  }

  async capturePayment(input: CapturePaymentInput): Promise<CapturePaymentResult> {
    assertIdempotencyKey(input.idempotencyKey, true);
    assertAmountMinor(input.amountMinor);
    assertCurrency(input.currency);
    let intent: Stripe.PaymentIntent;
    try {
      intent = await this.client.paymentIntents.create(
        {
          amount: Number(input.amountMinor),
          currency: input.currency.toLowerCase(),
          customer: input.customerRef,
          payment_method: input.paymentMethodRef,
          confirm: true,
          off_session: true,
          capture_method: 'automatic',
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          description: input.description,
          metadata: input.metadata,
        },
        { idempotencyKey: input.idempotencyKey },
      );
    } catch (err) {
      const declined = cardErrorResult(err);
      if (declined) return declined;
      throw mapStripeError(err);
    }
    return captureResult(intent);
  }

  async refundPayment(input: RefundPaymentInput): Promise<RefundResult> {
    assertIdempotencyKey(input.idempotencyKey, true);
    if (input.amountMinor !== undefined) assertAmountMinor(input.amountMinor);
    const refund = await this.call(() =>
      this.client.refunds.create(
        {
          payment_intent: input.paymentRef,
          amount: input.amountMinor === undefined ? undefined : Number(input.amountMinor),
          reason: input.reason,
          metadata: input.metadata,
        },
        { idempotencyKey: input.idempotencyKey },
      ),
    );
    return {
      refundRef: refund.id,
      paymentRef: refId(refund.payment_intent) ?? input.paymentRef,
      status: refundStatus(refund.status),
      amountMinor: BigInt(refund.amount),
      currency: refund.currency.toUpperCase(),
    };
  }

  async getPayment(paymentRef: string): Promise<PaymentDetails | null> {
    let intent: Stripe.PaymentIntent;
    try {
      intent = await this.client.paymentIntents.retrieve(paymentRef, { expand: ['latest_charge'] });
    } catch (err) {
      if (isStripeError(err) && (err.statusCode === 404 || err.code === 'resource_missing')) return null;
      throw mapStripeError(err);
    }
    const result = captureResult(intent);
    const charge = typeof intent.latest_charge === 'object' ? intent.latest_charge : null;
    const details: PaymentDetails = {
      paymentRef: intent.id,
      status: result.status,
      amountMinor: BigInt(intent.amount),
      amountCapturedMinor: BigInt(intent.amount_received ?? 0),
      amountRefundedMinor: BigInt(charge?.amount_refunded ?? 0),
      currency: intent.currency.toUpperCase(),
      customerRef: refId(intent.customer) ?? null,
      paymentMethodRef: refId(intent.payment_method) ?? null,
      metadata: { ...(intent.metadata as PaymentMetadata) },
      createdAt: new Date(intent.created * 1000),
    };
    if (result.declineCode) details.declineCode = result.declineCode;
    if (result.message) details.message = result.message;
    if (intent.description != null) details.description = intent.description;
    return details;
  }

  async verifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<WebhookEvent> {
    if (!Buffer.isBuffer(rawBody)) {
      throw new TypeError('verifyWebhook needs the raw request body as a Buffer (not a parsed object or string)');
    }
    const header = singleHeader(headers, 'stripe-signature');
    if (!header) throw new WebhookSignatureError('missing Stripe-Signature header');
    const tolerance = this.options.webhookToleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;

    let event: unknown;
    let stale: unknown;
    let lastError: unknown;
    for (const secret of this.secrets) {
      try {
        event = this.client.webhooks.constructEvent(rawBody, header, secret, tolerance, undefined, this.now());
        break;
      } catch (err) {
        if (err instanceof SyntaxError) throw new WebhookPayloadError('webhook body is not JSON', { cause: err });
        if (isStripeError(err) && err.message.startsWith(STALE_MESSAGE)) stale = err;
        else lastError = err;
      }
    }
    if (event === undefined) {
      if (stale) {
        const { timestamp } = parseSignatureHeader(header);
        throw new WebhookStaleError(
          `signature timestamp is ${Math.floor(this.now() / 1000) - timestamp}s old, more than the tolerance of ${tolerance}s`,
          timestamp,
          tolerance,
          { cause: stale },
        );
      }
      throw new WebhookSignatureError(
        `webhook signature verification failed: ${lastError instanceof Error ? lastError.message.split('\n')[0] : String(lastError)}`,
        { cause: lastError },
      );
    }
    return normaliseStripeEvent(event);
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapStripeError(err);
    }
  }
}

function requestOptions(idempotencyKey: string | undefined): Stripe.RequestOptions | undefined {
  return idempotencyKey ? { idempotencyKey } : undefined;
}

function refId(value: string | { id: string } | null | undefined): string | undefined {
  if (value == null) return undefined;
  return typeof value === 'string' ? value : value.id;
}

interface StripeErrorLike extends Error {
  type: string;
  statusCode?: number;
  code?: string;
  decline_code?: string;
  param?: string;
  charge?: string;
  requestId?: string;
  payment_intent?: { id: string };
}

function isStripeError(err: unknown): err is StripeErrorLike {
  return err instanceof Stripe.errors.StripeError;
}

/** A card error on confirm is an outcome, not a fault. */
function cardErrorResult(err: unknown): CapturePaymentResult | undefined {
  if (!isStripeError(err) || err.type !== 'StripeCardError') return undefined;
  // Stripe attaches the PaymentIntent to card errors on PaymentIntent requests; the fallbacks
  // only keep the result well-formed should it ever be missing.
  const paymentRef = err.payment_intent?.id ?? err.charge ?? `unknown:${err.requestId ?? 'no-request-id'}`;
  if (err.code === 'authentication_required') {
    return { status: 'requires_action', paymentRef, message: err.message };
  }
  const result: CapturePaymentResult = { status: 'declined', paymentRef, message: err.message };
  const declineCode = declineCodeOf({ code: err.code, decline_code: err.decline_code || undefined });
  if (declineCode) result.declineCode = declineCode;
  return result;
}

/** The interface's view of a PaymentIntent's status after an off-session confirm. */
export function captureResult(intent: Stripe.PaymentIntent): CapturePaymentResult {
  const error = intent.last_payment_error;
  switch (intent.status) {
    case 'succeeded':
      return { status: 'succeeded', paymentRef: intent.id };
    case 'requires_action':
    case 'requires_confirmation':
    case 'processing':
      return { status: 'requires_action', paymentRef: intent.id, message: `payment is ${intent.status}; the outcome arrives by webhook` };
    case 'requires_payment_method': {
      // After a confirm this means the attempt failed. A card error is a decline; anything else a failure.
      const declineCode = error && (error.type === 'card_error' || error.decline_code) ? declineCodeOf(error) : undefined;
      if (declineCode) {
        return { status: 'declined', paymentRef: intent.id, declineCode, ...(error?.message ? { message: error.message } : {}) };
      }
      return {
        status: 'failed',
        paymentRef: intent.id,
        message: error?.message ?? `payment attempt failed (${error?.type ?? 'no error reported'}); a new payment method is required`,
      };
    }
    case 'canceled':
      return { status: 'failed', paymentRef: intent.id, message: `payment canceled${intent.cancellation_reason ? ` (${intent.cancellation_reason})` : ''}` };
    default:
      return { status: 'failed', paymentRef: intent.id, message: `unexpected PaymentIntent status '${intent.status}'` };
  }
}

function refundStatus(status: string | null): RefundStatus {
  switch (status) {
    case 'succeeded':
    case 'failed':
    case 'canceled':
    case 'requires_action':
    case 'pending':
      return status;
    default:
      return 'pending';
  }
}

/** Maps an SDK exception onto the interface's errors (retryable or not). */
export function mapStripeError(err: unknown): PaymentGatewayError {
  if (err instanceof PaymentGatewayError) return err;
  if (!isStripeError(err)) {
    return new PaymentGatewayUnavailableError(`stripe: ${err instanceof Error ? err.message : String(err)}`, 'gateway_error', { cause: err });
  }
  const message = `stripe: ${err.message}`;
  const status = err.statusCode;
  switch (err.type) {
    case 'StripeConnectionError':
      return new PaymentGatewayUnavailableError(message, 'connection_error', { cause: err });
    case 'StripeRateLimitError':
      return new PaymentGatewayUnavailableError(message, err.code ?? 'rate_limit', { cause: err });
    case 'StripeIdempotencyError':
      return new IdempotencyKeyReuseError(message, { cause: err });
    case 'StripeAuthenticationError':
    case 'StripePermissionError':
      return new PaymentGatewayRequestError(message, err.code ?? (status === 401 ? 'authentication_failed' : 'permission_denied'), { cause: err });
    case 'StripeInvalidRequestError':
    case 'StripeCardError':
      return new PaymentGatewayRequestError(message, err.code ?? 'invalid_request', { cause: err, param: err.param });
    default:
      // StripeAPIError: 409 (another request holds the idempotency key), 5xx, or an unknown status.
      if (status !== undefined && status < 500 && status !== 409) {
        return new PaymentGatewayRequestError(message, err.code ?? `http_${status}`, { cause: err });
      }
      return new PaymentGatewayUnavailableError(message, err.code ?? (status ? `http_${status}` : 'api_error'), { cause: err });
  }
}
