/**
 * Delivers notification events: signed webhooks to registered endpoints (with retries, exponential
 * backoff and a log of every attempt) and SMS / e-mail through a channel. Several dispatchers may
 * run at once: deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a short lease.
 */
import type { Knex } from 'knex';
import { NOTIFICATION_SIGNATURE_HEADER, notificationSignature, retryDelaySeconds } from './webhook-signing';
import { renderNotification } from './templates';
import type { NotificationChannel } from './channels';
import type { NotificationEventType } from './notifications.repository';

export interface DispatchOptions {
  fetch?: typeof fetch;
  maxAttempts?: number;
  limit?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface DispatchReport {
  attempted: number;
  delivered: number;
  failed: number;
}

export async function deliverDueWebhooks(db: Knex, options: DispatchOptions = {}): Promise<DispatchReport> {
  const maxAttempts = options.maxAttempts ?? 8;
  const doFetch = options.fetch ?? fetch;
  const claimed = await db.transaction(async (trx) => {
    const rows = await trx.raw(
      `SELECT d.id, d.attempts, e.id AS event_id, e.event_type, e.payload, e.created_at, e.billing_account_id, e.subscriber_id, ep.url, ep.secret
         FROM webhook_deliveries d
         JOIN notification_events e ON e.id = d.event_id
         JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id
        LIMIT ? FOR UPDATE OF d SKIP LOCKED`,
      [options.limit ?? 100],
    );
    const ids = rows.rows.map((r: { id: string }) => r.id);
    if (ids.length > 0) await trx('webhook_deliveries').whereIn('id', ids).update({ next_attempt_at: trx.raw(`now() + interval '2 minutes'`) });
    return rows.rows as { id: string; attempts: number; event_id: string; event_type: string; payload: unknown; created_at: Date; billing_account_id: string | null; subscriber_id: string | null; url: string; secret: string }[];
  });
  const report: DispatchReport = { attempted: claimed.length, delivered: 0, failed: 0 };
  await Promise.all(claimed.map(async (d) => {
    const body = JSON.stringify({
      id: String(d.event_id), type: d.event_type, createdAt: d.created_at.toISOString(), billingAccountId: d.billing_account_id,
      subscriberId: d.subscriber_id, data: d.payload,
    });
    const timestamp = Math.floor((options.now?.() ?? Date.now()) / 1000);
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const res = await doFetch(d.url, {
        method: 'POST', body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        headers: { 'content-type': 'application/json', [NOTIFICATION_SIGNATURE_HEADER]: notificationSignature(body, d.secret, timestamp), 'Mvno-Event-Id': String(d.event_id) },
      });
      statusCode = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const attempt = d.attempts + 1;
    const delivered = error === null;
    const gaveUp = !delivered && attempt >= maxAttempts;
    await db.transaction(async (trx) => {
      await trx('webhook_delivery_attempts').insert({ delivery_id: d.id, attempt, status_code: statusCode, error, duration_ms: Math.round(performance.now() - started) });
      await trx('webhook_deliveries').where({ id: d.id }).update({
        attempts: attempt, last_status_code: statusCode, last_error: error,
        status: delivered ? 'delivered' : gaveUp ? 'failed' : 'pending',
        delivered_at: delivered ? trx.fn.now() : null,
        next_attempt_at: trx.raw(`now() + make_interval(secs => ?)`, [delivered || gaveUp ? 0 : retryDelaySeconds(attempt)]),
      });
    });
    if (delivered) report.delivered++;
    else report.failed++;
  }));
  return report;
}

/** Every new event once per channel (keyset on the event id): SMS to the line's MSISDN, e-mail to
 * the paying customer's address. */
export async function sendChannelMessages(db: Knex, channel: NotificationChannel, afterEventId: string, limit = 500): Promise<string> {
  const rows = await db('notification_events as e')
    .leftJoin('subscribers as s', 's.id', 'e.subscriber_id')
    .leftJoin('billing_accounts as a', 'a.id', 'e.billing_account_id')
    .leftJoin('customers as c', 'c.id', 'a.customer_id')
    .where('e.id', '>', afterEventId).orderBy('e.id').limit(limit)
    .select('e.id', 'e.event_type', 'e.payload', 's.msisdn', 'c.email');
  for (const r of rows) {
    const m = renderNotification(r.event_type as NotificationEventType, r.payload as Record<string, unknown>);
    if (r.msisdn) await channel.send({ eventId: String(r.id), channel: 'sms', recipient: r.msisdn, template: r.event_type, subject: m.subject, body: m.body });
    if (r.email) await channel.send({ eventId: String(r.id), channel: 'email', recipient: r.email, template: r.event_type, subject: m.subject, body: m.body });
  }
  return rows.length > 0 ? String(rows[rows.length - 1].id) : afterEventId;
}
