/**
 * Normalises a Stripe-shaped event (`{ id, object: 'event', type, created, data: { object } }`)
 * into the gateway interface's `WebhookEvent`. The Stripe implementation feeds it what
 * `stripe.webhooks.constructEvent` returns; the sandbox emits events of the same shape, so
 * this mapping is exercised by both.
 *
 * Mapped: payment_intent.succeeded / .payment_failed / .requires_action, and refund.created /
 * refund.updated / refund.failed by the refund's status. Everything else is `ignored`.
 */
import { z } from 'zod';
import {
  type PaymentMetadata,
  type PaymentWebhookEventType,
  type WebhookEvent,
  WebhookPayloadError,
} from './payment-gateway';

const minorAmount = z.number().int().nonnegative();
const metadata = z.record(z.string(), z.string()).nullish();
const ref = z.union([z.string(), z.object({ id: z.string() })]).nullish();

const eventEnvelope = z.object({
  id: z.string().min(1),
  object: z.literal('event'),
  type: z.string().min(1),
  created: z.number().int(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});

const paymentIntent = z.object({
  id: z.string(),
  object: z.literal('payment_intent'),
  amount: minorAmount,
  amount_received: minorAmount.nullish(),
  currency: z.string().length(3),
  customer: ref,
  metadata,
  last_payment_error: z
    .object({ code: z.string().nullish(), decline_code: z.string().nullish(), message: z.string().nullish() })
    .nullish(),
});

const refund = z.object({
  id: z.string(),
  object: z.literal('refund'),
  amount: minorAmount,
  currency: z.string().length(3),
  payment_intent: ref,
  status: z.string().nullish(),
  metadata,
  failure_reason: z.string().nullish(),
});

function refId(value: string | { id: string } | null | undefined): string | undefined {
  if (value == null) return undefined;
  return typeof value === 'string' ? value : value.id;
}

/**
 * Stripe reports a plain decline as code 'card_declined' with decline_code 'generic_decline';
 * a specific reason ('insufficient_funds', 'expired_card', ...) in decline_code otherwise.
 * The interface's `declineCode` is the most specific of the two.
 */
export function declineCodeOf(error: { code?: string | null; decline_code?: string | null } | null | undefined): string | undefined {
  if (!error) return undefined;
  if (error.decline_code && error.decline_code !== 'generic_decline') return error.decline_code;
  return error.code ?? error.decline_code ?? undefined;
}

function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new WebhookPayloadError(`webhook ${what} is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export function normaliseStripeEvent(raw: unknown): WebhookEvent {
  const event = parseOrThrow(eventEnvelope, raw, 'event');
  const createdAt = new Date(event.created * 1000);
  const base = { id: event.id, gatewayType: event.type, createdAt };
  const object = event.data.object;

  const paymentTypes: Record<string, PaymentWebhookEventType> = {
    'payment_intent.succeeded': 'payment.succeeded',
    'payment_intent.payment_failed': 'payment.failed',
    'payment_intent.requires_action': 'payment.requires_action',
  };
  const paymentType = paymentTypes[event.type];
  if (paymentType) {
    const pi = parseOrThrow(paymentIntent, object, 'payment_intent');
    const amount = paymentType === 'payment.succeeded' && pi.amount_received ? pi.amount_received : pi.amount;
    return {
      ...base,
      type: paymentType,
      paymentRef: pi.id,
      amountMinor: BigInt(amount),
      currency: pi.currency.toUpperCase(),
      customerRef: refId(pi.customer),
      declineCode: paymentType === 'payment.failed' ? declineCodeOf(pi.last_payment_error) : undefined,
      message: pi.last_payment_error?.message ?? undefined,
      metadata: (pi.metadata ?? {}) as PaymentMetadata,
    };
  }

  if (event.type === 'refund.created' || event.type === 'refund.updated' || event.type === 'refund.failed') {
    const r = parseOrThrow(refund, object, 'refund');
    const type: PaymentWebhookEventType | undefined =
      event.type === 'refund.failed' || r.status === 'failed'
        ? 'refund.failed'
        : r.status === 'succeeded'
          ? 'refund.succeeded'
          : undefined;
    const paymentRef = refId(r.payment_intent);
    // A pending refund, or one of a charge made without a PaymentIntent, is nothing to act on.
    if (!type || !paymentRef) return { ...base, type: 'ignored' };
    return {
      ...base,
      type,
      paymentRef,
      refundRef: r.id,
      amountMinor: BigInt(r.amount),
      currency: r.currency.toUpperCase(),
      message: r.failure_reason ?? undefined,
      metadata: (r.metadata ?? {}) as PaymentMetadata,
    };
  }

  return { ...base, type: 'ignored' };
}

/** Parses a raw (already verified) body as JSON, as a `WebhookPayloadError` when it is not. */
export function parseJsonBody(rawBody: Buffer): unknown {
  try {
    return JSON.parse(rawBody.toString('utf8'));
  } catch (err) {
    throw new WebhookPayloadError('webhook body is not JSON', { cause: err });
  }
}
