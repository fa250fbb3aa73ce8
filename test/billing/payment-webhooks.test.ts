/** Inbound payment webhooks on the real Express app and database: forged, tampered and stale
 * deliveries are refused with no side effect; a valid one delivered three times is applied once. */
import request from 'supertest';
import type { Client } from '@temporalio/client';
import { createTestDatabase } from '../support/services';
import { createApp } from '../../api/app';
import { loadConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { createMetrics } from '../../platform/metrics';
import { SandboxPaymentGateway, signPayload } from '../../domain/payments';
import { recordPayment } from '../../domain/payments/top-ups.repository';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { verifyBalances } from '../../domain/ledger/ledger-verify';

describe('payment webhooks', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  const gateway = new SandboxPaymentGateway({ webhookSecret: 'whsec_test' });
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    t = await createTestDatabase();
    app = createApp({
      config: loadConfig({ NODE_ENV: 'test' }), db: t.db, temporal: {} as Client, logger: createLogger({ level: 'silent' }), metrics: createMetrics(),
      resolveApiKey: async () => undefined, paymentGateways: { sandbox: gateway },
    });
  });
  afterAll(async () => {
    await t.drop();
  });

  const post = (body: Buffer | string, signature: string, path = '/webhooks/payments/sandbox') =>
    request(app).post(path).set('Content-Type', 'application/json').set('Stripe-Signature', signature).send(body.toString()); // a string goes on the wire as is (superagent would JSON-encode a Buffer)
  const sideEffects = async () => ({
    events: Number((await t.db('payment_webhook_events').count('* as n').first())!.n),
    payments: await t.db('payments').select('status', 'refunded_minor').orderBy('payment_ref'),
  });

  async function refundEvent() {
    const account = await seedAccount(t.db);
    const customer = await gateway.createCustomer({ billingAccountId: account });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa' });
    const captured = await gateway.capturePayment({ amountMinor: 1000n, currency: 'EUR', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef, idempotencyKey: `k-${account}` });
    await recordPayment(t.db, { gateway: 'sandbox', paymentRef: captured.paymentRef, billingAccountId: account, purpose: 'top_up', purposeRef: 'x', amountMinor: 1000n, currency: 'EUR', status: 'succeeded' });
    await gateway.refundPayment({ paymentRef: captured.paymentRef, amountMinor: 400n, idempotencyKey: `r-${account}` });
    const hooks = gateway.takeWebhooks();
    return { paymentRef: captured.paymentRef, hook: hooks.find((h) => h.event.type === 'refund.created')! };
  }

  it('rejects forged, tampered and stale deliveries without a trace', async () => {
    const { hook } = await refundEvent();
    const before = await sideEffects();
    const forged = await post(hook.rawBody, signPayload(hook.rawBody, 'whsec_attacker'));
    expect(forged.status).toBe(400);
    expect(forged.body.error).toBe('invalid_signature');
    const tampered = Buffer.from(hook.rawBody.toString().replace('"amount":400', '"amount":900'));
    expect(tampered.equals(hook.rawBody)).toBe(false);
    expect((await post(tampered, hook.headers['stripe-signature'])).status).toBe(400);
    const stale = await post(hook.rawBody, signPayload(hook.rawBody, 'whsec_test', { timestamp: Math.floor(Date.now() / 1000) - 3600 }));
    expect(stale.status).toBe(400);
    expect(stale.body.error).toBe('stale_event');
    expect((await post(hook.rawBody, '')).status).toBe(400);
    expect((await post(hook.rawBody, hook.headers['stripe-signature'], '/webhooks/payments/nope')).status).toBe(404);
    expect(await sideEffects()).toEqual(before);
  });

  it('applies a valid event once however often it is delivered', async () => {
    const { hook, paymentRef } = await refundEvent();
    const outcomes = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(hook.rawBody, hook.headers['stripe-signature']);
      expect(res.status).toBe(200);
      outcomes.push(res.body.outcome);
    }
    expect(outcomes).toEqual(['applied', 'duplicate', 'duplicate']);
    const payment = await t.db('payments').where({ payment_ref: paymentRef }).first();
    expect(BigInt(payment.refunded_minor)).toBe(400n);
    expect(await t.db('payment_webhook_events').where({ payment_ref: paymentRef })).toHaveLength(1);
    // Concurrent redeliveries as well.
    const again = await Promise.all([0, 1, 2].map(() => post(hook.rawBody, hook.headers['stripe-signature'])));
    expect(again.every((r) => r.status === 200 && r.body.outcome === 'duplicate')).toBe(true);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });
});
