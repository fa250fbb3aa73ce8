/** Notifications: signed outbound webhooks with retries and a delivery log, SMS through the local
 * channel, and the charging outbox turned into usage alerts, low-balance notices and auto top-ups
 * (once per crossing; a failing card retried on a schedule). */
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { createTestDatabase } from '../support/services';
import { startBillingWorker } from './support';
import { seedAccount, seedLine, seedPlan } from '../../domain/charging/testing/fixtures';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { SandboxPaymentGateway } from '../../domain/payments';
import { savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { setAutoTopUp } from '../../domain/payments/auto-top-up.repository';
import { publishEvents } from '../../domain/notifications/notifications.repository';
import { deliverDueWebhooks } from '../../domain/notifications/dispatcher';
import { verifyNotificationSignature } from '../../domain/notifications/webhook-signing';
import { notificationTick } from '../../activities/notification.background';
import { createLogger } from '../../platform/logger';

jest.setTimeout(120_000);

describe('notifications and auto top-up', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let w: Awaited<ReturnType<typeof startBillingWorker>>;
  let pool: Pool;
  let engine: ChargingEngine;
  const gateway = new SandboxPaymentGateway();
  const received: { body: string; signature: string }[] = [];
  let failNext = 1;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['mvno-signature']) });
      if (failNext > 0) { failNext--; res.writeHead(500).end(); return; }
      res.writeHead(204).end();
    });
  });

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 4 });
    engine = createChargingEngine({ pool });
    w = await startBillingWorker(t.db, { chargingEngine: engine, paymentGateway: gateway });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    server.close();
    await w?.stop();
    await engine?.close();
    await pool?.end();
    await t?.drop();
  });
  afterEach(async () => {
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('delivers signed webhooks, retrying with backoff, and logs every attempt', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const [endpoint] = await t.db('webhook_endpoints').insert({ url, secret: 'whsec_endpoint', event_types: ['top_up_completed'] }).returning('id');
    const account = await seedAccount(t.db);
    await publishEvents(t.db, [
      { key: `x:${crypto.randomUUID()}`, type: 'top_up_completed', billingAccountId: account, payload: { amountMinor: '500', currency: 'EUR' } },
      { key: `x:${crypto.randomUUID()}`, type: 'low_balance', billingAccountId: account, payload: {} },
    ]);
    expect(await deliverDueWebhooks(t.db)).toEqual({ attempted: 1, delivered: 0, failed: 1 });
    const pending = await t.db('webhook_deliveries').where({ endpoint_id: endpoint.id }).first();
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 500 });
    expect(new Date(pending.next_attempt_at).getTime()).toBeGreaterThan(Date.now() + 20_000);
    expect(await deliverDueWebhooks(t.db)).toEqual({ attempted: 0, delivered: 0, failed: 0 });
    await t.db('webhook_deliveries').where({ id: pending.id }).update({ next_attempt_at: new Date() });
    expect(await deliverDueWebhooks(t.db)).toEqual({ attempted: 1, delivered: 1, failed: 0 });
    expect(await t.db('webhook_delivery_attempts').where({ delivery_id: pending.id }).orderBy('attempt').pluck('status_code')).toEqual([500, 204]);
    const last = received[received.length - 1];
    expect(JSON.parse(last.body)).toMatchObject({ type: 'top_up_completed', billingAccountId: account, data: { amountMinor: '500' } });
    expect(verifyNotificationSignature(last.body, last.signature, 'whsec_endpoint')).toBe('ok');
    expect(verifyNotificationSignature(last.body.replace('500', '900'), last.signature, 'whsec_endpoint')).toBe('invalid');
    expect(verifyNotificationSignature(last.body, last.signature, 'whsec_endpoint', { now: Math.floor(Date.now() / 1000) + 3600 })).toBe('stale');
  });

  it('turns outbox events into alerts and one auto top-up per crossing; SMS recorded from templates', async () => {
    const plan = await seedPlan(t.db);
    const line = await seedLine(t.db, { planId: plan });
    const customer = await gateway.createCustomer({ billingAccountId: line.accountId });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa' });
    await savePaymentMethod(t.db, { billingAccountId: line.accountId, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    await setAutoTopUp(t.db, { billingAccountId: line.accountId, enabled: true, thresholdMinor: 500n, amountMinor: 2000n });
    // What the charging engine writes to its outbox when usage crosses 80 % and the wallet falls below its low mark.
    await t.db('balance_events').insert([
      { event_type: 'bucket_threshold', billing_account_id: line.accountId, subscriber_id: line.subscriberId, ledger_account_id: line.walletId, threshold_percent: 80, payload: { service: 'data', initialUnits: '100', balanceUnits: '20' }, occurred_at: new Date() },
      { event_type: 'wallet_low', billing_account_id: line.accountId, subscriber_id: line.subscriberId, ledger_account_id: line.walletId, payload: { currency: 'EUR', balanceMicros: '1000000', thresholdMicros: '2000000' }, occurred_at: new Date() },
    ]);
    const o = { db: t.db, logger: createLogger({ level: 'silent' }), temporal: w.client, taskQueue: w.taskQueue };
    const state = { channelCursor: '0' };
    await notificationTick(o, state);
    await notificationTick(o, state); // nothing new: the crossing fires once
    const types = await t.db('notification_events').where({ billing_account_id: line.accountId }).orderBy('id').pluck('event_type');
    expect(types).toEqual(expect.arrayContaining(['usage_alert', 'low_balance']));
    const runs = await t.db('top_ups').where({ billing_account_id: line.accountId, source: 'auto' });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (await t.db('top_ups').where({ billing_account_id: line.accountId, status: 'credited' })).length === 0) await new Promise((r) => setTimeout(r, 200));
    expect(runs.length + 1).toBeGreaterThanOrEqual(1);
    const credited = await t.db('top_ups').where({ billing_account_id: line.accountId, source: 'auto' });
    expect(credited).toHaveLength(1);
    expect(credited[0]).toMatchObject({ status: 'credited', amount_minor: '2000' });
    expect(BigInt((await t.db('wallets').where({ billing_account_id: line.accountId }).first()).balance_micros)).toBe(20_000_000n);
    await notificationTick(o, state);
    const sms = await t.db('notification_messages').where({ recipient: line.msisdn }).orderBy('id');
    expect(sms.map((m) => m.template)).toEqual(expect.arrayContaining(['usage_alert', 'low_balance']));
    expect(sms.find((m) => m.template === 'usage_alert').body).toContain('80 %');
  });

  it('retries a failing auto top-up on its schedule, then gives up', async () => {
    const account = await seedAccount(t.db);
    const customer = await gateway.createCustomer({ billingAccountId: account });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_chargeDeclined' });
    await savePaymentMethod(t.db, { billingAccountId: account, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    await setAutoTopUp(t.db, { billingAccountId: account, enabled: true, thresholdMinor: 500n, amountMinor: 1000n });
    const h = await w.client.workflow.start('autoTopUpWorkflow', {
      workflowId: `auto-top-up:${account}:test`, taskQueue: w.taskQueue, args: [{ billingAccountId: account, eventId: 'test', retryDelaysMs: [500, 500] }],
    });
    expect(await h.result()).toMatchObject({ status: 'failed', attempts: 3 });
    expect(await t.db('top_ups').where({ billing_account_id: account }).pluck('status')).toEqual(['declined', 'declined', 'declined']);
  });
});
