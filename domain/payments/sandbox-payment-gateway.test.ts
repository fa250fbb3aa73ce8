import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  IdempotencyKeyReuseError,
  type PaymentGateway,
  PaymentGatewayError,
  PaymentGatewayRequestError,
  PaymentGatewayUnavailableError,
  type PaymentWebhookEvent,
  WebhookSignatureError,
  WebhookStaleError,
} from './payment-gateway';
import { SANDBOX_TEST_CARDS, SandboxPaymentGateway } from './sandbox-payment-gateway';
import { signPayload } from './webhook-signature';

const SECRET = 'whsec_sandbox_test';

function setup(options: ConstructorParameters<typeof SandboxPaymentGateway>[0] = {}) {
  let nowMs = Date.UTC(2030, 0, 15, 12, 0, 0);
  const clock = { advance: (seconds: number) => (nowMs += seconds * 1000), now: () => nowMs };
  const gateway = new SandboxPaymentGateway({ webhookSecret: SECRET, now: () => nowMs, ...options });
  return { gateway, clock };
}

async function customerWith(gateway: SandboxPaymentGateway, token: string) {
  const { customerRef } = await gateway.createCustomer({ billingAccountId: 'ba-1', email: 'ada@example.test' });
  const pm = await gateway.attachPaymentMethod({ customerRef, paymentMethodRef: token, setAsDefault: true });
  return { customerRef, paymentMethodRef: pm.paymentMethodRef, pm };
}

async function verifyAll(gateway: PaymentGateway, sandbox: SandboxPaymentGateway) {
  return Promise.all(sandbox.takeWebhooks().map((w) => gateway.verifyWebhook(w.rawBody, w.headers)));
}

/** A caller's retry loop, as Temporal runs an activity: retry only what says it is retryable. */
async function withRetries<T>(fn: () => Promise<T>, maxAttempts: number): Promise<{ value: T; attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await fn(), attempts: attempt };
    } catch (err) {
      if (!(err instanceof PaymentGatewayError) || !err.retryable || attempt >= maxAttempts) throw err;
    }
  }
}

describe('SandboxPaymentGateway', () => {
  it('captures with pm_card_visa: result, stored payment, signed payment.succeeded webhook', async () => {
    const { gateway } = setup();
    const { customerRef, paymentMethodRef, pm } = await customerWith(gateway, 'pm_card_visa');
    expect(paymentMethodRef).toMatch(/^pm_sbx_/);
    expect(pm).toMatchObject({ customerRef, type: 'card', card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2033 } });

    const result = await gateway.capturePayment({
      amountMinor: 1500n,
      currency: 'EUR',
      customerRef,
      paymentMethodRef,
      idempotencyKey: 'top-up:1:capture',
      description: 'Top-up',
      metadata: { topUpId: '1' },
    });
    expect(result).toEqual({ status: 'succeeded', paymentRef: expect.stringMatching(/^pi_sbx_/) });

    await expect(gateway.getPayment(result.paymentRef)).resolves.toEqual({
      paymentRef: result.paymentRef,
      status: 'succeeded',
      amountMinor: 1500n,
      amountCapturedMinor: 1500n,
      amountRefundedMinor: 0n,
      currency: 'EUR',
      customerRef,
      paymentMethodRef,
      description: 'Top-up',
      metadata: { topUpId: '1' },
      createdAt: new Date(Date.UTC(2030, 0, 15, 12, 0, 0)),
    });
    await expect(gateway.getPayment('pi_unknown')).resolves.toBeNull();

    const events = await verifyAll(gateway, gateway);
    expect(events).toEqual([
      {
        id: expect.stringMatching(/^evt_sbx_/),
        type: 'payment.succeeded',
        gatewayType: 'payment_intent.succeeded',
        paymentRef: result.paymentRef,
        amountMinor: 1500n,
        currency: 'EUR',
        customerRef,
        metadata: { topUpId: '1' },
        createdAt: new Date(Date.UTC(2030, 0, 15, 12, 0, 0)),
      },
    ]);
    expect(gateway.takeWebhooks()).toEqual([]);
  });

  it('accepts Stripe test card numbers through createTestPaymentMethod, and only those', async () => {
    const { gateway } = setup();
    const { customerRef } = await gateway.createCustomer({ billingAccountId: 'ba-2' });
    const raw = gateway.createTestPaymentMethod({ number: '4242 4242 4242 4242', expMonth: 4, expYear: 2031 });
    const saved = await gateway.attachPaymentMethod({ customerRef, paymentMethodRef: raw });
    expect(saved).toMatchObject({ paymentMethodRef: raw, card: { last4: '4242', expMonth: 4, expYear: 2031 } });
    const ok = await gateway.capturePayment({ amountMinor: 100n, currency: 'USD', customerRef, paymentMethodRef: raw, idempotencyKey: 'k1' });
    expect(ok.status).toBe('succeeded');

    const declining = gateway.createTestPaymentMethod({ number: '4000000000000002' });
    await gateway.attachPaymentMethod({ customerRef, paymentMethodRef: declining });
    const declined = await gateway.capturePayment({ amountMinor: 100n, currency: 'USD', customerRef, paymentMethodRef: declining, idempotencyKey: 'k2' });
    expect(declined).toMatchObject({ status: 'declined', declineCode: 'card_declined' });

    expect(() => gateway.createTestPaymentMethod({ number: '4111111111111111' })).toThrow(PaymentGatewayRequestError);
    // every listed number resolves to its token's behaviour
    for (const card of SANDBOX_TEST_CARDS.filter((c) => c.number)) {
      expect(() => gateway.createTestPaymentMethod({ number: card.number! })).not.toThrow();
    }
  });

  it.each([
    ['pm_card_chargeDeclined', 'card_declined', 'Your card was declined.'],
    ['pm_card_insufficientFunds', 'insufficient_funds', 'Your card has insufficient funds.'],
    ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds', 'Your card has insufficient funds.'],
    ['pm_card_chargeDeclinedExpiredCard', 'expired_card', 'Your card has expired.'],
  ])('%s is declined (%s) as a normal result, with a payment.failed webhook', async (token, declineCode, message) => {
    const { gateway } = setup();
    const { customerRef, paymentMethodRef } = await customerWith(gateway, token);
    const result = await gateway.capturePayment({ amountMinor: 2000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: `k-${token}` });
    expect(result).toEqual({ status: 'declined', paymentRef: expect.stringMatching(/^pi_sbx_/), declineCode, message });
    await expect(gateway.getPayment(result.paymentRef)).resolves.toMatchObject({
      status: 'declined',
      declineCode,
      amountCapturedMinor: 0n,
    });
    const [event] = await verifyAll(gateway, gateway);
    expect(event).toMatchObject({ type: 'payment.failed', paymentRef: result.paymentRef, amountMinor: 2000n, declineCode, message });
  });

  it('uses the test tokens directly as well as saved methods (like Stripe test mode)', async () => {
    const { gateway } = setup();
    const { customerRef } = await gateway.createCustomer({ billingAccountId: 'ba-3' });
    const result = await gateway.capturePayment({
      amountMinor: 999n,
      currency: 'GBP',
      customerRef,
      paymentMethodRef: 'pm_card_insufficientFunds',
      idempotencyKey: 'direct',
    });
    expect(result).toMatchObject({ status: 'declined', declineCode: 'insufficient_funds' });
  });

  it('reports requires_action for a card needing authentication, settled later by webhook', async () => {
    const { gateway } = setup();
    const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_authenticationRequired');
    const result = await gateway.capturePayment({ amountMinor: 500n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'k-3ds' });
    expect(result.status).toBe('requires_action');
    expect((await verifyAll(gateway, gateway)).map((e) => e.type)).toEqual(['payment.requires_action']);

    gateway.completeAction(result.paymentRef, 'succeeded');
    expect(await verifyAll(gateway, gateway)).toMatchObject([{ type: 'payment.succeeded', paymentRef: result.paymentRef, amountMinor: 500n }]);
    expect(() => gateway.completeAction(result.paymentRef, 'failed')).toThrow(PaymentGatewayRequestError);

    const other = await gateway.capturePayment({ amountMinor: 500n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'k-3ds-2' });
    gateway.takeWebhooks();
    gateway.completeAction(other.paymentRef, 'failed');
    expect(await verifyAll(gateway, gateway)).toMatchObject([
      { type: 'payment.failed', paymentRef: other.paymentRef, declineCode: 'payment_intent_authentication_failure' },
    ]);
    await expect(gateway.getPayment(other.paymentRef)).resolves.toMatchObject({ status: 'declined' });
  });

  describe('transient failures', () => {
    it('pm_card_transientFailure throws a retryable error twice per key, then succeeds; a retry loop captures once', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_transientFailure');
      const input = { amountMinor: 700n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'top-up:9:capture' };

      const first = gateway.capturePayment(input);
      await expect(first).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
      await expect(first).rejects.toMatchObject({ retryable: true, code: 'sandbox_transient_failure' });
      expect(gateway.takeWebhooks()).toEqual([]);

      const { value, attempts } = await withRetries(() => gateway.capturePayment(input), 5);
      expect(attempts).toBe(2); // one more failure, then success
      expect(value.status).toBe('succeeded');
      // the activity retrying again after success (e.g. a lost completion) gets the same payment
      await expect(gateway.capturePayment(input)).resolves.toEqual(value);
      expect((await verifyAll(gateway, gateway)).map((e) => e.type)).toEqual(['payment.succeeded']);
    });

    it('counts failures per idempotency key; N is configurable per gateway and per token', async () => {
      const { gateway } = setup({ transientFailures: 1 });
      const { customerRef } = await gateway.createCustomer({ billingAccountId: 'ba-4' });
      const capture = (key: string, token: string) =>
        withRetries(() => gateway.capturePayment({ amountMinor: 1n, currency: 'EUR', customerRef, paymentMethodRef: token, idempotencyKey: key }), 10);
      await expect(capture('a', 'pm_card_transientFailure')).resolves.toMatchObject({ attempts: 2 });
      await expect(capture('b', 'pm_card_transientFailure')).resolves.toMatchObject({ attempts: 2 });
      await expect(capture('c', 'pm_card_transientFailure_4')).resolves.toMatchObject({ attempts: 5 });
      await expect(withRetries(() => gateway.capturePayment({ amountMinor: 1n, currency: 'EUR', customerRef, paymentMethodRef: 'pm_card_transientFailure_4', idempotencyKey: 'd' }), 3)).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    });
  });

  describe('idempotency', () => {
    it('replays the first result for the same key and parameters, and captures once', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
      gateway.takeWebhooks();
      const input = { amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'same', metadata: { a: '1', b: '2' } };
      const first = await gateway.capturePayment(input);
      const replays = await Promise.all([
        gateway.capturePayment(input),
        gateway.capturePayment({ ...input, metadata: { b: '2', a: '1' } }), // key order does not matter
      ]);
      expect(replays).toEqual([first, first]);
      expect(gateway.takeWebhooks()).toHaveLength(1);
    });

    it('replays a decline too (a new attempt needs a new key)', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_chargeDeclined');
      const input = { amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'declined-key' };
      const first = await gateway.capturePayment(input);
      await expect(gateway.capturePayment(input)).resolves.toEqual(first);
    });

    it('refuses the same key with different parameters or for another operation', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
      const input = { amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'k' };
      const first = await gateway.capturePayment(input);
      for (const changed of [{ amountMinor: 1001n }, { currency: 'USD' }, { description: 'x' }, { metadata: { a: '1' } }]) {
        const attempt = gateway.capturePayment({ ...input, ...changed });
        await expect(attempt).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
        await expect(attempt).rejects.toMatchObject({ retryable: false, code: 'idempotency_key_reused' });
      }
      await expect(gateway.refundPayment({ paymentRef: first.paymentRef, idempotencyKey: 'k' })).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
      await expect(gateway.getPayment(first.paymentRef)).resolves.toMatchObject({ amountRefundedMinor: 0n });
    });

    it('makes createCustomer and attachPaymentMethod idempotent when given a key', async () => {
      const { gateway } = setup();
      const a = await gateway.createCustomer({ billingAccountId: 'ba-5', idempotencyKey: 'cust:ba-5' });
      await expect(gateway.createCustomer({ billingAccountId: 'ba-5', idempotencyKey: 'cust:ba-5' })).resolves.toEqual(a);
      await expect(gateway.createCustomer({ billingAccountId: 'ba-6', idempotencyKey: 'cust:ba-5' })).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
      const pm1 = await gateway.attachPaymentMethod({ customerRef: a.customerRef, paymentMethodRef: 'pm_card_visa', idempotencyKey: 'pm:1' });
      await expect(gateway.attachPaymentMethod({ customerRef: a.customerRef, paymentMethodRef: 'pm_card_visa', idempotencyKey: 'pm:1' })).resolves.toEqual(pm1);
      // attaching an already attached method again is harmless; to another customer it is refused
      await expect(gateway.attachPaymentMethod({ customerRef: a.customerRef, paymentMethodRef: pm1.paymentMethodRef })).resolves.toEqual(pm1);
      const b = await gateway.createCustomer({ billingAccountId: 'ba-7' });
      await expect(gateway.attachPaymentMethod({ customerRef: b.customerRef, paymentMethodRef: pm1.paymentMethodRef })).rejects.toMatchObject({
        code: 'payment_method_unexpected_state',
      });
      // and it cannot be charged on the other customer
      await expect(
        gateway.capturePayment({ amountMinor: 1n, currency: 'EUR', customerRef: b.customerRef, paymentMethodRef: pm1.paymentMethodRef, idempotencyKey: 'x' }),
      ).rejects.toMatchObject({ code: 'payment_method_not_attached', retryable: false });
    });
  });

  describe('refunds', () => {
    it('refunds in parts up to the captured amount and never beyond', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
      const { paymentRef } = await gateway.capturePayment({ amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'cap' });
      gateway.takeWebhooks();

      const r1 = await gateway.refundPayment({ paymentRef, amountMinor: 400n, idempotencyKey: 'ref-1', reason: 'requested_by_customer' });
      expect(r1).toEqual({ refundRef: expect.stringMatching(/^re_sbx_/), paymentRef, status: 'succeeded', amountMinor: 400n, currency: 'EUR' });
      // a replay does not refund twice
      await expect(gateway.refundPayment({ paymentRef, amountMinor: 400n, idempotencyKey: 'ref-1', reason: 'requested_by_customer' })).resolves.toEqual(r1);

      const over = gateway.refundPayment({ paymentRef, amountMinor: 601n, idempotencyKey: 'ref-2' });
      await expect(over).rejects.toBeInstanceOf(PaymentGatewayRequestError);
      await expect(over).rejects.toMatchObject({ code: 'amount_too_large', retryable: false });

      // the failed attempt stored nothing: the same key works with a valid amount
      const rest = await gateway.refundPayment({ paymentRef, idempotencyKey: 'ref-2' });
      expect(rest.amountMinor).toBe(600n);
      await expect(gateway.refundPayment({ paymentRef, amountMinor: 1n, idempotencyKey: 'ref-3' })).rejects.toMatchObject({ code: 'charge_already_refunded' });
      await expect(gateway.getPayment(paymentRef)).resolves.toMatchObject({ amountMinor: 1000n, amountRefundedMinor: 1000n, status: 'succeeded' });

      const events = (await verifyAll(gateway, gateway)) as PaymentWebhookEvent[];
      expect(events.map((e) => [e.type, e.refundRef, e.paymentRef, e.amountMinor, e.currency])).toEqual([
        ['refund.succeeded', r1.refundRef, paymentRef, 400n, 'EUR'],
        ['refund.succeeded', rest.refundRef, paymentRef, 600n, 'EUR'],
      ]);
    });

    it('refuses to refund a declined or unknown payment and non-positive amounts', async () => {
      const { gateway } = setup();
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_chargeDeclined');
      const { paymentRef } = await gateway.capturePayment({ amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'cap' });
      await expect(gateway.refundPayment({ paymentRef, idempotencyKey: 'r1' })).rejects.toMatchObject({ code: 'charge_not_refundable' });
      await expect(gateway.refundPayment({ paymentRef: 'pi_nope', idempotencyKey: 'r2' })).rejects.toMatchObject({ code: 'resource_missing' });
      await expect(gateway.refundPayment({ paymentRef, amountMinor: 0n, idempotencyKey: 'r3' })).rejects.toMatchObject({ code: 'invalid_amount' });
    });
  });

  it('validates money and references before doing anything', async () => {
    const { gateway } = setup();
    const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
    const base = { amountMinor: 100n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'v' };
    const bad: Array<[Partial<typeof base> | Record<string, unknown>, string]> = [
      [{ amountMinor: 0n }, 'invalid_amount'],
      [{ amountMinor: -5n }, 'invalid_amount'],
      [{ amountMinor: 10 }, 'invalid_amount'],
      [{ amountMinor: 2n ** 53n }, 'invalid_amount'],
      [{ currency: 'eur' }, 'invalid_currency'],
      [{ currency: 'EURO' }, 'invalid_currency'],
      [{ idempotencyKey: '' }, 'invalid_idempotency_key'],
      [{ customerRef: 'cus_nope' }, 'resource_missing'],
      [{ paymentMethodRef: 'pm_nope' }, 'resource_missing'],
    ];
    for (const [change, code] of bad) {
      await expect(gateway.capturePayment({ ...base, ...change } as typeof base)).rejects.toMatchObject({ code, retryable: false });
    }
    expect(gateway.takeWebhooks().filter((w) => w.event.type.startsWith('payment_intent'))).toEqual([]);
  });

  describe('webhooks', () => {
    it('rejects forged, tampered, stale and unsigned deliveries with typed errors', async () => {
      const { gateway, clock } = setup({ webhookToleranceSeconds: 300 });
      const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
      await gateway.capturePayment({ amountMinor: 1000n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'w' });
      const [webhook] = gateway.takeWebhooks();
      await expect(gateway.verifyWebhook(webhook.rawBody, webhook.headers)).resolves.toMatchObject({ type: 'payment.succeeded' });
      // header names are case-insensitive
      await expect(gateway.verifyWebhook(webhook.rawBody, { 'Stripe-Signature': webhook.headers['stripe-signature'] })).resolves.toBeDefined();

      const forged = signPayload(webhook.rawBody, 'whsec_attacker', { now: clock.now });
      await expect(gateway.verifyWebhook(webhook.rawBody, { 'stripe-signature': forged })).rejects.toBeInstanceOf(WebhookSignatureError);

      const tampered = Buffer.from(webhook.rawBody.toString('utf8').replace('"amount":1000', '"amount":100000'));
      expect(tampered.equals(webhook.rawBody)).toBe(false);
      await expect(gateway.verifyWebhook(tampered, webhook.headers)).rejects.toBeInstanceOf(WebhookSignatureError);

      await expect(gateway.verifyWebhook(webhook.rawBody, {})).rejects.toBeInstanceOf(WebhookSignatureError);
      await expect(gateway.verifyWebhook(webhook.rawBody, { 'stripe-signature': ['a', 'b'] })).rejects.toBeInstanceOf(WebhookSignatureError);

      clock.advance(300);
      await expect(gateway.verifyWebhook(webhook.rawBody, webhook.headers)).resolves.toBeDefined();
      clock.advance(1);
      await expect(gateway.verifyWebhook(webhook.rawBody, webhook.headers)).rejects.toBeInstanceOf(WebhookStaleError);
      // re-signed now (as a redelivery is), the same event is accepted again: dedupe is by event id
      const redelivered = gateway.signWebhookPayload(webhook.rawBody);
      await expect(gateway.verifyWebhook(webhook.rawBody, { 'stripe-signature': redelivered })).resolves.toMatchObject({ id: webhook.event.id });
    });

    it('accepts deliveries signed with any configured secret (rotation) and ignores unrelated events', async () => {
      const { gateway, clock } = setup({ webhookSecret: ['whsec_new', 'whsec_old'] });
      const body = Buffer.from(JSON.stringify({ id: 'evt_x', object: 'event', type: 'customer.created', created: 1, data: { object: { id: 'cus_1' } } }));
      const header = signPayload(body, 'whsec_old', { now: clock.now });
      await expect(gateway.verifyWebhook(body, { 'stripe-signature': header })).resolves.toEqual({
        id: 'evt_x',
        type: 'ignored',
        gatewayType: 'customer.created',
        createdAt: new Date(1000),
      });
      const notJson = Buffer.from('not json');
      await expect(gateway.verifyWebhook(notJson, { 'stripe-signature': signPayload(notJson, 'whsec_new', { now: clock.now }) })).rejects.toMatchObject({
        name: 'WebhookPayloadError',
      });
    });

    it('POSTs signed events to webhookUrl, retrying until a 2xx', async () => {
      const received: Array<{ body: Buffer; headers: http.IncomingHttpHeaders }> = [];
      let failuresLeft = 1;
      const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({ body: Buffer.concat(chunks), headers: req.headers });
          if (failuresLeft-- > 0) res.writeHead(503).end();
          else res.writeHead(200).end('ok');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const gateway = new SandboxPaymentGateway({ webhookSecret: SECRET, webhookUrl: `http://127.0.0.1:${port}/webhooks/payments` });
        const { customerRef, paymentMethodRef } = await customerWith(gateway, 'pm_card_visa');
        await gateway.capturePayment({ amountMinor: 250n, currency: 'EUR', customerRef, paymentMethodRef, idempotencyKey: 'u' });

        const results = await gateway.flushWebhooks();
        expect(results).toEqual([{ eventId: expect.any(String), delivered: true, attempts: 2, statusCode: 200 }]);
        expect(received).toHaveLength(2);
        for (const delivery of received) {
          expect(delivery.headers['content-type']).toBe('application/json');
          const event = await gateway.verifyWebhook(delivery.body, delivery.headers);
          expect(event).toMatchObject({ type: 'payment.succeeded', amountMinor: 250n, id: results[0].eventId });
        }
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });
});
