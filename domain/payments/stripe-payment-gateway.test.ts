/**
 * The Stripe implementation against Stripe's own mock server (stripe-mock, built by
 * scripts/ensure-stripe-mock.sh). stripe-mock validates every request against Stripe's OpenAPI
 * spec and answers with fixtures that echo some parameters; it keeps no state, so these tests
 * check requests and the mapping of its answers, and the stateful flows are the sandbox's tests.
 */
import Stripe from 'stripe';
import { PaymentGatewayRequestError, PaymentGatewayUnavailableError, WebhookSignatureError, WebhookStaleError } from './payment-gateway';
import { StripePaymentGateway } from './stripe-payment-gateway';
import { type RunningStripeMock, startStripeMock } from './testing/stripe-mock';
import { signPayload } from './webhook-signature';

const WEBHOOK_SECRET = 'whsec_stripe_mock_test';

let mock: RunningStripeMock;
let gateway: StripePaymentGateway;
const requests: Stripe.RequestEvent[] = [];

beforeAll(async () => {
  // The first run builds stripe-mock with `go install` (a minute or two on a cold Go cache).
  mock = await startStripeMock();
  gateway = new StripePaymentGateway({
    apiKey: 'sk_test_123',
    webhookSecret: WEBHOOK_SECRET,
    host: mock.host,
    port: mock.port,
    protocol: 'http',
    maxNetworkRetries: 0,
  });
  gateway.client.on('request', (event: Stripe.RequestEvent) => requests.push(event));
}, 600_000);

afterAll(async () => {
  await mock?.stop();
});

beforeEach(() => {
  requests.length = 0;
});

describe('StripePaymentGateway against stripe-mock', () => {
  it('creates a customer, passing the idempotency key', async () => {
    const customer = await gateway.createCustomer({
      billingAccountId: 'ba-1',
      email: 'ada@example.test',
      name: 'Ada',
      idempotencyKey: 'customer:ba-1',
    });
    expect(customer.customerRef).toMatch(/^cus_/);
    expect(requests).toMatchObject([{ method: 'POST', path: '/v1/customers', idempotency_key: 'customer:ba-1' }]);
  });

  it('attaches a payment method and makes it the default', async () => {
    const saved = await gateway.attachPaymentMethod({ customerRef: 'cus_123', paymentMethodRef: 'pm_card_visa', setAsDefault: true, idempotencyKey: 'pm:1' });
    expect(saved).toEqual({
      paymentMethodRef: 'pm_card_visa',
      customerRef: 'cus_123',
      type: 'card',
      card: { brand: 'visa', last4: '4242', expMonth: expect.any(Number), expYear: expect.any(Number) },
    });
    expect(requests.map((r) => [r.method, r.path, r.idempotency_key])).toEqual([
      ['POST', '/v1/payment_methods/pm_card_visa/attach', 'pm:1'],
      ['POST', '/v1/customers/cus_123', 'pm:1:default'],
    ]);
  });

  it('captures off-session with a PaymentIntent and maps the answer', async () => {
    const result = await gateway.capturePayment({
      amountMinor: 1500n,
      currency: 'EUR',
      customerRef: 'cus_123',
      paymentMethodRef: 'pm_card_visa',
      idempotencyKey: 'top-up:42:capture',
      description: 'Top-up',
      metadata: { topUpId: '42' },
    });
    // stripe-mock's fixture PaymentIntent is 'requires_payment_method' with a non-card
    // last_payment_error: an attempt that failed without a decline.
    expect(result).toEqual({ status: 'failed', paymentRef: expect.stringMatching(/^pi_/), message: expect.any(String) });
    expect(requests).toMatchObject([{ method: 'POST', path: '/v1/payment_intents', idempotency_key: 'top-up:42:capture' }]);
  });

  it('reads a payment back with its refunded amount', async () => {
    const details = await gateway.getPayment('pi_123');
    // stripe-mock's fixture (pinned version): 1099 usd, not yet paid, latest_charge expanded.
    expect(details).toEqual({
      paymentRef: 'pi_123',
      status: 'failed',
      amountMinor: 1099n,
      amountCapturedMinor: 0n,
      amountRefundedMinor: 0n,
      currency: 'USD',
      customerRef: null,
      paymentMethodRef: null,
      metadata: {},
      message: expect.any(String),
      createdAt: new Date(1234567890 * 1000),
    });
    expect(requests).toMatchObject([{ method: 'GET', path: expect.stringMatching(/^\/v1\/payment_intents\/pi_123\?expand/) }]);
  });

  it('refunds part of a payment', async () => {
    const refund = await gateway.refundPayment({ paymentRef: 'pi_123', amountMinor: 500n, idempotencyKey: 'top-up:42:refund', reason: 'requested_by_customer' });
    expect(refund).toEqual({
      refundRef: expect.stringMatching(/^re_/),
      paymentRef: 'pi_123',
      status: 'succeeded',
      amountMinor: 500n,
      currency: 'USD',
    });
    expect(requests).toMatchObject([{ method: 'POST', path: '/v1/refunds', idempotency_key: 'top-up:42:refund' }]);
  });

  it('maps stripe-mock validation errors to non-retryable request errors', async () => {
    const attempt = gateway.refundPayment({ paymentRef: 'pi_123', idempotencyKey: 'bad', reason: 'no_such_reason' as 'duplicate' });
    await expect(attempt).rejects.toBeInstanceOf(PaymentGatewayRequestError);
    await expect(attempt).rejects.toMatchObject({ retryable: false });
  });

  it('rejects bad input before calling Stripe', async () => {
    await expect(
      gateway.capturePayment({ amountMinor: 0n, currency: 'EUR', customerRef: 'cus_123', paymentMethodRef: 'pm_card_visa', idempotencyKey: 'z' }),
    ).rejects.toMatchObject({ code: 'invalid_amount' });
    await expect(
      gateway.capturePayment({ amountMinor: 1n, currency: 'eur', customerRef: 'cus_123', paymentMethodRef: 'pm_card_visa', idempotencyKey: 'z' }),
    ).rejects.toMatchObject({ code: 'invalid_currency' });
    expect(requests).toEqual([]);
  });

  it('throws a retryable error when Stripe cannot be reached', async () => {
    const unreachable = new StripePaymentGateway({
      apiKey: 'sk_test_123',
      webhookSecret: WEBHOOK_SECRET,
      host: '127.0.0.1',
      port: 1, // nothing listens there
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    const attempt = unreachable.createCustomer({ billingAccountId: 'ba-1' });
    await expect(attempt).rejects.toBeInstanceOf(PaymentGatewayUnavailableError);
    await expect(attempt).rejects.toMatchObject({ retryable: true, code: 'connection_error' });
  });
});

describe('StripePaymentGateway.verifyWebhook (stripe.webhooks.constructEvent)', () => {
  const now = Date.UTC(2030, 5, 1, 8, 0, 0);
  const clocked = () =>
    new StripePaymentGateway({ apiKey: 'sk_test_123', webhookSecret: ['whsec_rolled', WEBHOOK_SECRET], host: mock.host, port: mock.port, protocol: 'http', now: () => current });
  let current = now;
  beforeEach(() => {
    current = now;
  });

  const event = (type: string, object: Record<string, unknown>) =>
    Buffer.from(JSON.stringify({ id: `evt_${type}`, object: 'event', api_version: Stripe.API_VERSION, type, created: now / 1000, livemode: false, data: { object } }));
  const signed = (body: Buffer, secret = WEBHOOK_SECRET, timestamp = now / 1000) => ({ 'stripe-signature': signPayload(body, secret, { timestamp }) });

  it('verifies a locally signed payment_intent.succeeded and normalises it', async () => {
    const body = event('payment_intent.succeeded', {
      id: 'pi_1',
      object: 'payment_intent',
      amount: 2599,
      amount_received: 2599,
      currency: 'eur',
      customer: 'cus_9',
      status: 'succeeded',
      metadata: { topUpId: '7' },
      last_payment_error: null,
    });
    await expect(clocked().verifyWebhook(body, signed(body))).resolves.toEqual({
      id: 'evt_payment_intent.succeeded',
      type: 'payment.succeeded',
      gatewayType: 'payment_intent.succeeded',
      paymentRef: 'pi_1',
      amountMinor: 2599n,
      currency: 'EUR',
      customerRef: 'cus_9',
      metadata: { topUpId: '7' },
      createdAt: new Date(now),
    });
  });

  it('maps payment failures, refunds and unrelated events', async () => {
    const gw = clocked();
    const failed = event('payment_intent.payment_failed', {
      id: 'pi_2',
      object: 'payment_intent',
      amount: 1000,
      currency: 'usd',
      customer: null,
      metadata: {},
      last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
    });
    await expect(gw.verifyWebhook(failed, signed(failed))).resolves.toMatchObject({
      type: 'payment.failed',
      paymentRef: 'pi_2',
      amountMinor: 1000n,
      currency: 'USD',
      declineCode: 'insufficient_funds',
    });
    const refunded = event('refund.created', { id: 're_1', object: 'refund', amount: 300, currency: 'eur', payment_intent: 'pi_1', status: 'succeeded', metadata: {} });
    await expect(gw.verifyWebhook(refunded, signed(refunded))).resolves.toMatchObject({
      type: 'refund.succeeded',
      refundRef: 're_1',
      paymentRef: 'pi_1',
      amountMinor: 300n,
    });
    const pending = event('refund.created', { id: 're_2', object: 'refund', amount: 300, currency: 'eur', payment_intent: 'pi_1', status: 'pending', metadata: {} });
    await expect(gw.verifyWebhook(pending, signed(pending))).resolves.toMatchObject({ type: 'ignored' });
    const other = event('customer.created', { id: 'cus_1', object: 'customer' });
    await expect(gw.verifyWebhook(other, signed(other))).resolves.toMatchObject({ type: 'ignored', gatewayType: 'customer.created' });
  });

  it('accepts a header made by the SDK itself, with either configured secret', async () => {
    const body = event('customer.created', { id: 'cus_1', object: 'customer' });
    const header = Stripe.webhooks.generateTestHeaderString({ payload: body.toString('utf8'), secret: 'whsec_rolled', timestamp: now / 1000 });
    await expect(clocked().verifyWebhook(body, { 'Stripe-Signature': header })).resolves.toMatchObject({ type: 'ignored' });
  });

  it('rejects forged, tampered, unsigned and stale deliveries with typed errors', async () => {
    const gw = clocked();
    const body = event('payment_intent.succeeded', { id: 'pi_1', object: 'payment_intent', amount: 100, currency: 'eur' });
    await expect(gw.verifyWebhook(body, signed(body, 'whsec_attacker'))).rejects.toBeInstanceOf(WebhookSignatureError);
    const tampered = Buffer.from(body.toString('utf8').replace('"amount":100', '"amount":100000'));
    await expect(gw.verifyWebhook(tampered, signed(body))).rejects.toBeInstanceOf(WebhookSignatureError);
    await expect(gw.verifyWebhook(body, {})).rejects.toBeInstanceOf(WebhookSignatureError);
    await expect(gw.verifyWebhook(body, { 'stripe-signature': 'garbage' })).rejects.toBeInstanceOf(WebhookSignatureError);

    current = now + 300_000;
    await expect(gw.verifyWebhook(body, signed(body))).resolves.toMatchObject({ type: 'payment.succeeded' });
    current = now + 301_000;
    const stale = gw.verifyWebhook(body, signed(body));
    await expect(stale).rejects.toBeInstanceOf(WebhookStaleError);
    await expect(stale).rejects.toMatchObject({ timestamp: now / 1000, toleranceSeconds: 300 });
    // forged and old: a signature error, as in Stripe's own order of checks
    await expect(gw.verifyWebhook(body, signed(body, 'whsec_attacker'))).rejects.toBeInstanceOf(WebhookSignatureError);
  });

  it('reports a signed body that is not an event as WebhookPayloadError', async () => {
    const body = Buffer.from(JSON.stringify({ hello: 'world' }));
    await expect(clocked().verifyWebhook(body, signed(body))).rejects.toMatchObject({ name: 'WebhookPayloadError' });
  });
});
