/**
 * Consumes the charging engine's balance-event outbox (`balance_events`, written in the same
 * transaction as the charge): each event becomes a notification (usage alert at 50/80/100 %, low
 * balance) and a wallet falling below an account's auto top-up threshold becomes an auto top-up
 * request — at most one per crossing, because each outbox event is one crossing and the request is
 * keyed by the event id. Events are marked published in the same transaction.
 */
import type { Knex } from 'knex';
import { microsToMinorFloor, minorToMicros } from '../ledger/money';
import { publishEvents, type NotificationEventInput } from './notifications.repository';

export interface AutoTopUpRequest {
  billingAccountId: string;
  eventId: string;
}

export async function consumeBalanceEvents(db: Knex, limit = 1000): Promise<{ published: number; autoTopUps: AutoTopUpRequest[] }> {
  return db.transaction(async (trx) => {
    const rows = (await trx.raw(
      `SELECT id, event_type, billing_account_id, subscriber_id, threshold_percent, payload FROM balance_events
        WHERE published_at IS NULL ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, [limit],
    )).rows as { id: string; event_type: 'bucket_threshold' | 'wallet_low'; billing_account_id: string; subscriber_id: string | null; threshold_percent: number | null; payload: Record<string, string> }[];
    if (rows.length === 0) return { published: 0, autoTopUps: [] };
    const events: NotificationEventInput[] = rows.map((r) => r.event_type === 'bucket_threshold'
      ? {
        key: `balance-event:${r.id}`, type: 'usage_alert', billingAccountId: r.billing_account_id, subscriberId: r.subscriber_id,
        payload: { thresholdPercent: r.threshold_percent, service: r.payload.service, initialUnits: r.payload.initialUnits, balanceUnits: r.payload.balanceUnits, shared: r.payload.shared },
      }
      : {
        key: `balance-event:${r.id}`, type: 'low_balance', billingAccountId: r.billing_account_id, subscriberId: r.subscriber_id,
        payload: { currency: r.payload.currency, balanceMinor: microsToMinorFloor(BigInt(r.payload.balanceMicros ?? '0'), r.payload.currency ?? 'EUR').toString() },
      });
    await publishEvents(trx, events);

    const low = rows.filter((r) => r.event_type === 'wallet_low');
    const autoTopUps: AutoTopUpRequest[] = [];
    if (low.length > 0) {
      const settings = await trx('auto_top_up_settings').whereIn('billing_account_id', [...new Set(low.map((r) => r.billing_account_id))]).andWhere('enabled', true);
      const byAccount = new Map(settings.map((s) => [s.billing_account_id as string, s]));
      for (const r of low) {
        const s = byAccount.get(r.billing_account_id);
        if (!s) continue;
        const currency = r.payload.currency ?? 'EUR';
        if (BigInt(r.payload.balanceMicros ?? '0') >= minorToMicros(BigInt(s.threshold_minor), currency)) continue;
        autoTopUps.push({ billingAccountId: r.billing_account_id, eventId: String(r.id) });
        await trx('auto_top_up_settings').where({ billing_account_id: r.billing_account_id }).update({ last_event_id: r.id, updated_at: trx.fn.now() });
      }
    }
    await trx('balance_events').whereIn('id', rows.map((r) => r.id)).update({ published_at: trx.fn.now() });
    return { published: rows.length, autoTopUps };
  });
}
