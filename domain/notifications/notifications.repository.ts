/**
 * The notification outbox: events (each once, by `key`) and their fan-out into one webhook delivery
 * per registered endpoint that subscribes to the event's type — in one statement per call, so the
 * billing run and the balance-event consumer can publish thousands at once.
 */
import type { Knex } from 'knex';
import { pgQuery } from '../shared/pg-connection';

export const NOTIFICATION_EVENT_TYPES = [
  'usage_alert', 'low_balance', 'top_up_completed', 'invoice_issued', 'payment_failed', 'suspension_warning', 'subscriber_suspended', 'subscriber_resumed',
] as const;
export type NotificationEventType = (typeof NOTIFICATION_EVENT_TYPES)[number];

export interface NotificationEventInput {
  /** Idempotency: one event per key ('top-up:<key>', 'usage:<bucket>:80'…). */
  key: string;
  type: NotificationEventType;
  billingAccountId?: string | null;
  subscriberId?: string | null;
  payload: Record<string, unknown>;
}

/** Records events (the ones already recorded are skipped) and queues their webhook deliveries.
 * Returns the ids of the events that are new. */
export async function publishEvents(db: Knex | Knex.Transaction, events: NotificationEventInput[]): Promise<string[]> {
  if (events.length === 0) return [];
  const res = await pgQuery(db,
    `WITH input AS (
       SELECT k, t, coalesce(a, (SELECT s.billing_account_id FROM subscribers s WHERE s.id = x.sub)) AS a, x.sub, p
         FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::jsonb[]) x(k, t, a, sub, p)),
     ev AS (
       INSERT INTO notification_events (event_key, event_type, billing_account_id, subscriber_id, payload)
       SELECT k, t, a, sub, p FROM input
       ON CONFLICT (event_key) DO NOTHING
       RETURNING id, event_type),
     dl AS (
       INSERT INTO webhook_deliveries (event_id, endpoint_id)
       SELECT ev.id, e.id FROM ev JOIN webhook_endpoints e ON e.enabled AND (cardinality(e.event_types) = 0 OR ev.event_type = ANY(e.event_types))
       ON CONFLICT DO NOTHING RETURNING 1)
     SELECT (SELECT coalesce(json_agg(id::text), '[]') FROM ev) AS ids, (SELECT count(*) FROM dl) AS deliveries`,
    [
      events.map((e) => e.key), events.map((e) => e.type), events.map((e) => e.billingAccountId ?? null),
      events.map((e) => e.subscriberId ?? null), events.map((e) => JSON.stringify(e.payload)),
    ],
  );
  return res.rows[0].ids as string[];
}
