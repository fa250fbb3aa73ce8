/**
 * A local, stateful, in-memory payment gateway: the default for development and tests.
 *
 * It behaves like Stripe in test mode where the system can observe it:
 *  - deterministic test payment methods (`SANDBOX_TEST_CARDS`): the same tokens (`pm_card_visa`)
 *    and card numbers (4242 4242 4242 4242) as Stripe's, plus `pm_card_transientFailure`, which
 *    makes a capture throw `PaymentGatewayUnavailableError` N times per idempotency key before
 *    succeeding (for retry tests);
 *  - idempotency: same key + same parameters → the first result (declines included); same key
 *    + different parameters (or another operation) → `IdempotencyKeyReuseError`. Requests that
 *    fail validation or transiently store nothing, so a retry runs again;
 *  - refunds up to the captured amount, in as many parts as wanted;
 *  - webhooks: every payment and refund outcome becomes a Stripe-shaped event
 *    (`payment_intent.succeeded`, `payment_intent.payment_failed`, `payment_intent.requires_action`,
 *    `refund.created`) signed with Stripe's scheme. They are kept for `takeWebhooks()` and, when
 *    `webhookUrl` is set, POSTed there in the background (a few attempts; `flushWebhooks()` waits).
 *    `verifyWebhook` checks that scheme and normalises like the Stripe implementation.
 *
 * Operations run synchronously inside each async method, so concurrent calls cannot interleave.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import {
  type AttachPaymentMethodInput,
  type CapturePaymentInput,
  type CapturePaymentResult,
  type CreateCustomerInput,
  type GatewayCustomer,
  IdempotencyKeyReuseError,
  type PaymentDetails,
  type PaymentGateway,
  PaymentGatewayRequestError,
  PaymentGatewayUnavailableError,
  type PaymentMetadata,
  type PaymentStatus,
  type RefundPaymentInput,
  type RefundResult,
  type SavedPaymentMethod,
  type WebhookEvent,
  type WebhookHeaders,
  assertAmountMinor,
  assertCurrency,
  assertIdempotencyKey,
  singleHeader,
} from './payment-gateway';
import { normaliseStripeEvent, parseJsonBody } from './stripe-events';
import { DEFAULT_TOLERANCE_SECONDS, signPayload, verifySignature } from './webhook-signature';

export type SandboxCardBehaviour =
  | { kind: 'succeed' }
  /** `code` and `declineCode` as Stripe reports them; the result's declineCode is the specific one. */
  | { kind: 'decline'; code: string; declineCode: string; message: string }
  /** Off-session charge needs the customer's authentication (3-D Secure). */
  | { kind: 'requires_action' }
  /** Throws PaymentGatewayUnavailableError N times per idempotency key, then succeeds. */
  | { kind: 'transient'; failures?: number };

export interface SandboxTestCard {
  token: string;
  /** Card number to give `createTestPaymentMethod`; the transient-failure method has none. */
  number?: string;
  brand: string;
  last4: string;
  behaviour: SandboxCardBehaviour;
}

const decline = (code: string, declineCode: string, message: string): SandboxCardBehaviour => ({
  kind: 'decline',
  code,
  declineCode,
  message,
});

/** Stripe's documented test cards (tokens and numbers), and one sandbox-only transient failure. */
export const SANDBOX_TEST_CARDS: readonly SandboxTestCard[] = [
  { token: 'pm_card_visa', number: '4242424242424242', brand: 'visa', last4: '4242', behaviour: { kind: 'succeed' } },
  { token: 'pm_card_mastercard', number: '5555555555554444', brand: 'mastercard', last4: '4444', behaviour: { kind: 'succeed' } },
  {
    token: 'pm_card_chargeDeclined',
    number: '4000000000000002',
    brand: 'visa',
    last4: '0002',
    behaviour: decline('card_declined', 'generic_decline', 'Your card was declined.'),
  },
  {
    token: 'pm_card_chargeDeclinedInsufficientFunds',
    number: '4000000000009995',
    brand: 'visa',
    last4: '9995',
    behaviour: decline('card_declined', 'insufficient_funds', 'Your card has insufficient funds.'),
  },
  {
    // Short alias named in the project's brief; same card.
    token: 'pm_card_insufficientFunds',
    brand: 'visa',
    last4: '9995',
    behaviour: decline('card_declined', 'insufficient_funds', 'Your card has insufficient funds.'),
  },
  {
    token: 'pm_card_chargeDeclinedExpiredCard',
    number: '4000000000000069',
    brand: 'visa',
    last4: '0069',
    behaviour: decline('expired_card', 'expired_card', 'Your card has expired.'),
  },
  {
    token: 'pm_card_chargeDeclinedProcessingError',
    number: '4000000000000119',
    brand: 'visa',
    last4: '0119',
    behaviour: decline('processing_error', 'processing_error', 'An error occurred while processing your card. Try again in a little bit.'),
  },
  {
    token: 'pm_card_authenticationRequired',
    number: '4000002760003184',
    brand: 'visa',
    last4: '3184',
    behaviour: { kind: 'requires_action' },
  },
  { token: 'pm_card_transientFailure', brand: 'visa', last4: '0000', behaviour: { kind: 'transient' } },
];

const TRANSIENT_TOKEN = /^pm_card_transientFailure_(\d{1,3})$/;

/** The test card a token (`pm_card_visa`, or `pm_card_transientFailure_<N>`) stands for. */
export function sandboxTestCard(token: string): SandboxTestCard | undefined {
  const known = SANDBOX_TEST_CARDS.find((c) => c.token === token);
  if (known) return known;
  const transient = TRANSIENT_TOKEN.exec(token);
  if (transient) {
    return { token, brand: 'visa', last4: '0000', behaviour: { kind: 'transient', failures: Number(transient[1]) } };
  }
  return undefined;
}

export interface SandboxPaymentGatewayOptions {
  /** Signs emitted webhooks; the first one signs, all are accepted (secret rotation). Default 'whsec_sandbox'. */
  webhookSecret?: string | string[];
  /** POST each event here (Stripe-Signature header) in the background. */
  webhookUrl?: string;
  /** Default 300 s. */
  webhookToleranceSeconds?: number;
  /** Delivery attempts per event when webhookUrl is set. Default 3. */
  webhookMaxAttempts?: number;
  /** How many times `pm_card_transientFailure` fails per idempotency key. Default 2. */
  transientFailures?: number;
  /** Keep at most this many events for takeWebhooks(). Default 1000 (oldest dropped). */
  webhookOutboxLimit?: number;
  /** Clock in ms (tests). Default Date.now. */
  now?: () => number;
}

export interface SandboxWebhook {
  event: { id: string; type: string; created: number; data: { object: Record<string, unknown> } };
  rawBody: Buffer;
  headers: { 'content-type': string; 'stripe-signature': string };
}

export interface WebhookDeliveryResult {
  eventId: string;
  delivered: boolean;
  attempts: number;
  statusCode?: number;
  error?: string;
}

interface CustomerRecord {
  id: string;
  billingAccountId: string;
  email?: string;
  name?: string;
  metadata: PaymentMetadata;
  defaultPaymentMethod?: string;
}

interface PaymentMethodRecord {
  id: string;
  customer: string | null;
  card: SandboxTestCard;
  expMonth: number;
  expYear: number;
}

interface PaymentRecord {
  id: string;
  status: PaymentStatus;
  amount: bigint;
  amountRefunded: bigint;
  currency: string;
  customer: string;
  paymentMethod: string;
  description?: string;
  metadata: PaymentMetadata;
  declineCode?: string;
  lastError?: { code: string; decline_code?: string; message: string };
  message?: string;
  created: number;
}

interface IdempotencyRecord {
  fingerprint: string;
  result: unknown;
}

/** Canonical JSON of request parameters (sorted keys, bigints as strings, undefined dropped). */
function fingerprint(operation: string, params: Record<string, unknown>): string {
  const canon = (v: unknown): unknown => {
    if (typeof v === 'bigint') return `${v}n`;
    if (Array.isArray(v)) return v.map(canon);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify([operation, canon(params)]);
}

function newId(prefix: string): string {
  return `${prefix}_sbx_${randomBytes(10).toString('hex')}`;
}

export class SandboxPaymentGateway implements PaymentGateway {
  readonly name = 'sandbox';

  private readonly secrets: string[];
  private readonly now: () => number;
  private readonly customers = new Map<string, CustomerRecord>();
  private readonly paymentMethods = new Map<string, PaymentMethodRecord>();
  private readonly payments = new Map<string, PaymentRecord>();
  private readonly refunds = new Map<string, RefundResult>();
  private readonly idempotency = new Map<string, IdempotencyRecord>();
  private readonly transientAttempts = new Map<string, number>();
  private outbox: SandboxWebhook[] = [];
  private readonly deliveries = new Set<Promise<WebhookDeliveryResult>>();
  private readonly deliveryResults: WebhookDeliveryResult[] = [];

  constructor(private readonly options: SandboxPaymentGatewayOptions = {}) {
    const secrets = options.webhookSecret ?? 'whsec_sandbox';
    this.secrets = typeof secrets === 'string' ? [secrets] : [...secrets];
    if (this.secrets.length === 0 || this.secrets.some((s) => !s)) throw new Error('webhookSecret must be non-empty');
    this.now = options.now ?? Date.now;
  }

  // ----- sandbox-only helpers -------------------------------------------------------------

  /** Like tokenising a card client-side: returns an unattached payment method for a test card number. */
  createTestPaymentMethod(card: { number: string; expMonth?: number; expYear?: number }): string {
    const digits = card.number.replace(/[\s-]/g, '');
    const test = SANDBOX_TEST_CARDS.find((c) => c.number === digits);
    if (!test) {
      throw new PaymentGatewayRequestError(
        `the sandbox only accepts test card numbers (${SANDBOX_TEST_CARDS.filter((c) => c.number).map((c) => c.number).join(', ')})`,
        'invalid_number',
        { param: 'number' },
      );
    }
    const pm = this.newPaymentMethod(test, null, card.expMonth, card.expYear);
    return pm.id;
  }

  /** Resolves a `requires_action` payment as if the customer completed (or abandoned) authentication. */
  completeAction(paymentRef: string, outcome: 'succeeded' | 'failed'): PaymentDetails {
    const payment = this.requirePayment(paymentRef);
    if (payment.status !== 'requires_action') {
      throw new PaymentGatewayRequestError(`payment ${paymentRef} is ${payment.status}, not requires_action`, 'payment_intent_unexpected_state');
    }
    if (outcome === 'succeeded') {
      payment.status = 'succeeded';
      payment.message = undefined;
    } else {
      payment.status = 'declined';
      payment.lastError = {
        code: 'payment_intent_authentication_failure',
        message: 'The provided payment method has failed authentication.',
      };
      payment.declineCode = 'payment_intent_authentication_failure';
      payment.message = payment.lastError.message;
    }
    this.emitPaymentEvent(payment);
    return this.details(payment);
  }

  /** Returns the events emitted since the last call, and forgets them. */
  takeWebhooks(): SandboxWebhook[] {
    const taken = this.outbox;
    this.outbox = [];
    return taken;
  }

  /** Waits for background deliveries (webhookUrl) in flight and returns every delivery result so far. */
  async flushWebhooks(): Promise<WebhookDeliveryResult[]> {
    while (this.deliveries.size > 0) await Promise.all([...this.deliveries]);
    return [...this.deliveryResults];
  }

  /** Signs an arbitrary payload with the sandbox's secret (tests of the webhook endpoint). */
  signWebhookPayload(payload: Buffer | string, timestamp?: number): string {
    return signPayload(payload, this.secrets[0], { timestamp, now: this.now });
  }

  // ----- PaymentGateway -------------------------------------------------------------------

  async createCustomer(input: CreateCustomerInput): Promise<GatewayCustomer> {
    assertIdempotencyKey(input.idempotencyKey, false);
    if (!input.billingAccountId) throw new PaymentGatewayRequestError('billingAccountId is required', 'parameter_missing');
    return this.idempotent('createCustomer', input.idempotencyKey, { ...input, idempotencyKey: undefined }, () => {
      const customer: CustomerRecord = {
        id: newId('cus'),
        billingAccountId: input.billingAccountId,
        email: input.email,
        name: input.name,
        metadata: { ...input.metadata, billing_account_id: input.billingAccountId },
      };
      this.customers.set(customer.id, customer);
      return { result: { customerRef: customer.id }, store: true };
    });
  }

  async attachPaymentMethod(input: AttachPaymentMethodInput): Promise<SavedPaymentMethod> {
    assertIdempotencyKey(input.idempotencyKey, false);
    return this.idempotent('attachPaymentMethod', input.idempotencyKey, { ...input, idempotencyKey: undefined }, () => {
      const customer = this.requireCustomer(input.customerRef);
      let pm: PaymentMethodRecord;
      const testCard = sandboxTestCard(input.paymentMethodRef);
      if (testCard) {
        pm = this.newPaymentMethod(testCard, customer.id);
      } else {
        const existing = this.paymentMethods.get(input.paymentMethodRef);
        if (!existing) {
          throw new PaymentGatewayRequestError(`No such PaymentMethod: '${input.paymentMethodRef}'`, 'resource_missing', {
            param: 'paymentMethodRef',
          });
        }
        if (existing.customer && existing.customer !== customer.id) {
          throw new PaymentGatewayRequestError(
            `PaymentMethod ${existing.id} is attached to another customer; detach it first`,
            'payment_method_unexpected_state',
            { param: 'paymentMethodRef' },
          );
        }
        existing.customer = customer.id;
        pm = existing;
      }
      if (input.setAsDefault) customer.defaultPaymentMethod = pm.id;
      return { result: this.savedMethod(pm), store: true };
    });
  }

  async capturePayment(input: CapturePaymentInput): Promise<CapturePaymentResult> {
    assertIdempotencyKey(input.idempotencyKey, true);
    assertAmountMinor(input.amountMinor);
    assertCurrency(input.currency);
    const params = { ...input, idempotencyKey: undefined };
    return this.idempotent('capturePayment', input.idempotencyKey, params, () => {
      const customer = this.requireCustomer(input.customerRef);
      const card = this.resolveCardForCharge(input.paymentMethodRef, customer.id);

      if (card.behaviour.kind === 'transient') {
        const limit = card.behaviour.failures ?? this.options.transientFailures ?? 2;
        const seen = this.transientAttempts.get(input.idempotencyKey) ?? 0;
        if (seen < limit) {
          this.transientAttempts.set(input.idempotencyKey, seen + 1);
          // Nothing is stored under the key: like a request that never reached the gateway.
          throw new PaymentGatewayUnavailableError(
            `sandbox: simulated transient failure ${seen + 1} of ${limit} (retry with the same idempotency key)`,
            'sandbox_transient_failure',
          );
        }
        this.transientAttempts.delete(input.idempotencyKey);
      }

      const payment: PaymentRecord = {
        id: newId('pi'),
        status: 'succeeded',
        amount: input.amountMinor,
        amountRefunded: 0n,
        currency: input.currency,
        customer: customer.id,
        paymentMethod: input.paymentMethodRef,
        description: input.description,
        metadata: { ...input.metadata },
        created: Math.floor(this.now() / 1000),
      };
      if (card.behaviour.kind === 'decline') {
        payment.status = 'declined';
        payment.lastError = { code: card.behaviour.code, decline_code: card.behaviour.declineCode, message: card.behaviour.message };
        payment.declineCode = card.behaviour.declineCode === 'generic_decline' ? card.behaviour.code : card.behaviour.declineCode;
        payment.message = card.behaviour.message;
      } else if (card.behaviour.kind === 'requires_action') {
        payment.status = 'requires_action';
        payment.message = 'This payment requires the customer to authenticate (3-D Secure) on-session.';
      }
      this.payments.set(payment.id, payment);
      this.emitPaymentEvent(payment);

      const result: CapturePaymentResult = { status: payment.status, paymentRef: payment.id };
      if (payment.declineCode) result.declineCode = payment.declineCode;
      if (payment.message) result.message = payment.message;
      return { result, store: true };
    });
  }

  async refundPayment(input: RefundPaymentInput): Promise<RefundResult> {
    assertIdempotencyKey(input.idempotencyKey, true);
    if (input.amountMinor !== undefined) assertAmountMinor(input.amountMinor);
    return this.idempotent('refundPayment', input.idempotencyKey, { ...input, idempotencyKey: undefined }, () => {
      const payment = this.requirePayment(input.paymentRef);
      if (payment.status !== 'succeeded') {
        throw new PaymentGatewayRequestError(
          `payment ${payment.id} is ${payment.status}; only a succeeded payment can be refunded`,
          'charge_not_refundable',
          { param: 'paymentRef' },
        );
      }
      const remaining = payment.amount - payment.amountRefunded;
      if (remaining === 0n) {
        throw new PaymentGatewayRequestError(`payment ${payment.id} is already fully refunded`, 'charge_already_refunded');
      }
      const amount = input.amountMinor ?? remaining;
      if (amount > remaining) {
        throw new PaymentGatewayRequestError(
          `refund of ${amount} is more than the ${remaining} ${payment.currency} minor units left to refund on ${payment.id}`,
          'amount_too_large',
          { param: 'amountMinor' },
        );
      }
      payment.amountRefunded += amount;
      const refund: RefundResult = {
        refundRef: newId('re'),
        paymentRef: payment.id,
        status: 'succeeded',
        amountMinor: amount,
        currency: payment.currency,
      };
      this.refunds.set(refund.refundRef, refund);
      this.emit('refund.created', {
        id: refund.refundRef,
        object: 'refund',
        amount: Number(amount),
        currency: payment.currency.toLowerCase(),
        payment_intent: payment.id,
        status: 'succeeded',
        reason: input.reason ?? null,
        metadata: { ...input.metadata },
        created: Math.floor(this.now() / 1000),
      });
      return { result: refund, store: true };
    });
  }

  async getPayment(paymentRef: string): Promise<PaymentDetails | null> {
    const payment = this.payments.get(paymentRef);
    return payment ? this.details(payment) : null;
  }

  async verifyWebhook(rawBody: Buffer, headers: WebhookHeaders): Promise<WebhookEvent> {
    if (!Buffer.isBuffer(rawBody)) {
      throw new TypeError('verifyWebhook needs the raw request body as a Buffer (not a parsed object or string)');
    }
    verifySignature(rawBody, singleHeader(headers, 'stripe-signature'), this.secrets, {
      toleranceSeconds: this.options.webhookToleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
      now: this.now,
    });
    return normaliseStripeEvent(parseJsonBody(rawBody));
  }

  // ----- internals ------------------------------------------------------------------------

  private idempotent<T>(
    operation: string,
    key: string | undefined,
    params: Record<string, unknown>,
    run: () => { result: T; store: boolean },
  ): T {
    const print = fingerprint(operation, params);
    if (key !== undefined) {
      const previous = this.idempotency.get(key);
      if (previous) {
        if (previous.fingerprint !== print) {
          throw new IdempotencyKeyReuseError(
            `Keys for idempotent requests can only be used with the same parameters they were first used with (key '${key}')`,
          );
        }
        return structuredClone(previous.result) as T;
      }
    }
    const { result, store } = run();
    if (key !== undefined && store) this.idempotency.set(key, { fingerprint: print, result: structuredClone(result) });
    return structuredClone(result);
  }

  private requireCustomer(ref: string): CustomerRecord {
    const customer = this.customers.get(ref);
    if (!customer) throw new PaymentGatewayRequestError(`No such customer: '${ref}'`, 'resource_missing', { param: 'customerRef' });
    return customer;
  }

  private requirePayment(ref: string): PaymentRecord {
    const payment = this.payments.get(ref);
    if (!payment) throw new PaymentGatewayRequestError(`No such payment: '${ref}'`, 'resource_missing', { param: 'paymentRef' });
    return payment;
  }

  private resolveCardForCharge(paymentMethodRef: string, customerId: string): SandboxTestCard {
    // Stripe test mode accepts its test tokens directly; a saved method must be the customer's.
    const testCard = sandboxTestCard(paymentMethodRef);
    if (testCard) return testCard;
    const pm = this.paymentMethods.get(paymentMethodRef);
    if (!pm) {
      throw new PaymentGatewayRequestError(`No such PaymentMethod: '${paymentMethodRef}'`, 'resource_missing', {
        param: 'paymentMethodRef',
      });
    }
    if (pm.customer !== customerId) {
      throw new PaymentGatewayRequestError(
        `The provided PaymentMethod ${pm.id} does not belong to the customer ${customerId}`,
        'payment_method_not_attached',
        { param: 'paymentMethodRef' },
      );
    }
    return pm.card;
  }

  private newPaymentMethod(card: SandboxTestCard, customer: string | null, expMonth = 12, expYear?: number): PaymentMethodRecord {
    const pm: PaymentMethodRecord = {
      id: newId('pm'),
      customer,
      card,
      expMonth,
      expYear: expYear ?? new Date(this.now()).getUTCFullYear() + 3,
    };
    this.paymentMethods.set(pm.id, pm);
    return pm;
  }

  private savedMethod(pm: PaymentMethodRecord): SavedPaymentMethod {
    return {
      paymentMethodRef: pm.id,
      customerRef: pm.customer ?? '',
      type: 'card',
      card: { brand: pm.card.brand, last4: pm.card.last4, expMonth: pm.expMonth, expYear: pm.expYear },
    };
  }

  private details(p: PaymentRecord): PaymentDetails {
    const d: PaymentDetails = {
      paymentRef: p.id,
      status: p.status,
      amountMinor: p.amount,
      amountCapturedMinor: p.status === 'succeeded' ? p.amount : 0n,
      amountRefundedMinor: p.amountRefunded,
      currency: p.currency,
      customerRef: p.customer,
      paymentMethodRef: p.paymentMethod,
      metadata: { ...p.metadata },
      createdAt: new Date(p.created * 1000),
    };
    if (p.declineCode) d.declineCode = p.declineCode;
    if (p.message) d.message = p.message;
    if (p.description !== undefined) d.description = p.description;
    return d;
  }

  private emitPaymentEvent(p: PaymentRecord): void {
    const type =
      p.status === 'succeeded'
        ? 'payment_intent.succeeded'
        : p.status === 'requires_action'
          ? 'payment_intent.requires_action'
          : 'payment_intent.payment_failed';
    this.emit(type, {
      id: p.id,
      object: 'payment_intent',
      amount: Number(p.amount),
      amount_received: p.status === 'succeeded' ? Number(p.amount) : 0,
      currency: p.currency.toLowerCase(),
      customer: p.customer,
      payment_method: p.paymentMethod,
      description: p.description ?? null,
      status: p.status === 'succeeded' ? 'succeeded' : p.status === 'requires_action' ? 'requires_action' : 'requires_payment_method',
      last_payment_error: p.lastError ? { type: 'card_error', ...p.lastError } : null,
      metadata: { ...p.metadata },
      created: p.created,
    });
  }

  private emit(type: string, object: Record<string, unknown>): void {
    const created = Math.floor(this.now() / 1000);
    const event = { id: newId('evt'), object: 'event', type, created, livemode: false, data: { object } };
    const rawBody = Buffer.from(JSON.stringify(event), 'utf8');
    const webhook: SandboxWebhook = {
      event,
      rawBody,
      headers: { 'content-type': 'application/json', 'stripe-signature': signPayload(rawBody, this.secrets[0], { now: this.now }) },
    };
    this.outbox.push(webhook);
    const limit = this.options.webhookOutboxLimit ?? 1000;
    if (this.outbox.length > limit) this.outbox.splice(0, this.outbox.length - limit);
    if (this.options.webhookUrl) this.startDelivery(webhook, this.options.webhookUrl);
  }

  private startDelivery(webhook: SandboxWebhook, url: string): void {
    const attempts = Math.max(1, this.options.webhookMaxAttempts ?? 3);
    const run = async (): Promise<WebhookDeliveryResult> => {
      let last: { statusCode?: number; error?: string } = {};
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1) await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 2)));
        // Re-sign each attempt, as Stripe does: a retry days later must not look stale.
        const headers = { ...webhook.headers, 'stripe-signature': signPayload(webhook.rawBody, this.secrets[0], { now: this.now }) };
        try {
          const statusCode = await postOnce(url, webhook.rawBody, headers);
          last = { statusCode };
          if (statusCode >= 200 && statusCode < 300) return { eventId: webhook.event.id, delivered: true, attempts: attempt, statusCode };
        } catch (err) {
          last = { error: err instanceof Error ? err.message : String(err) };
        }
      }
      return { eventId: webhook.event.id, delivered: false, attempts, ...last };
    };
    const promise = run().then((result) => {
      this.deliveryResults.push(result);
      if (this.deliveryResults.length > 1000) this.deliveryResults.shift();
      this.deliveries.delete(promise);
      return result;
    });
    this.deliveries.add(promise);
  }
}

function postOnce(url: string, body: Buffer, headers: Record<string, string>): Promise<number> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      { method: 'POST', headers: { ...headers, 'content-length': String(body.length), 'user-agent': 'mvno-bss-sandbox-gateway' }, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('webhook delivery timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
