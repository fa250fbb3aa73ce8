/**
 * Applies a verified gateway event exactly once: the event id is inserted into
 * `payment_webhook_events` (primary key gateway + event id) in the same transaction as its effect,
 * so a redelivery finds the row and changes nothing, and a crash applies neither.
 *
 * Effects: the payment's status (payment.*), the refunded amount (refund.succeeded), and for a
 * top-up that needed the customer's action, the outcome recorded on the top-up.
 */
import type { Knex } from 'knex';
import type { PaymentWebhookEvent, WebhookEvent } from './payment-gateway';

export type ApplyOutcome = 'applied' | 'duplicate' | 'ignored';

export async function applyWebhookEvent(db: Knex, gateway: string, event: WebhookEvent): Promise<ApplyOutcome> {
  return db.transaction(async (trx) => {
    const inserted = await trx('payment_webhook_events')
      .insert({
        gateway, event_id: event.id, event_type: event.type === 'ignored' ? `ignored:${event.gatewayType}` : event.type,
        payment_ref: event.type === 'ignored' ? null : event.paymentRef,
        payload: JSON.stringify(event, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      })
      .onConflict(['gateway', 'event_id']).ignore()
      .returning('event_id');
    if (inserted.length === 0) return 'duplicate';
    if (event.type === 'ignored') return 'ignored';
    await applyEffect(trx, gateway, event);
    return 'applied';
  });
}

async function applyEffect(trx: Knex.Transaction, gateway: string, e: PaymentWebhookEvent): Promise<void> {
  const payment = trx('payments').where({ gateway, payment_ref: e.paymentRef });
  switch (e.type) {
    case 'payment.succeeded':
      await payment.clone().update({ status: 'succeeded', updated_at: trx.fn.now() });
      break;
    case 'payment.failed':
      await payment.clone().update({ status: 'failed', updated_at: trx.fn.now() });
      await trx('top_ups').where({ payment_ref: e.paymentRef }).whereIn('status', ['pending']).update({
        status: 'failed', error_code: e.declineCode ?? 'payment_failed', error_message: e.message ?? 'the payment failed', updated_at: trx.fn.now(),
      });
      break;
    case 'payment.requires_action':
      await payment.clone().update({ status: 'requires_action', updated_at: trx.fn.now() });
      break;
    case 'refund.succeeded':
      await payment.clone().update({ refunded_minor: trx.raw('refunded_minor + ?', [e.amountMinor.toString()]), updated_at: trx.fn.now() });
      break;
    case 'refund.failed':
      break;
  }
}
