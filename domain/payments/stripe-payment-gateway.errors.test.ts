/**
 * How the Stripe implementation maps Stripe's error answers, which stripe-mock cannot produce
 * (card declines, conflicts, outages, missing objects): a stub on loopback answers the SDK
 * with Stripe's documented error bodies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { IdempotencyKeyReuseError, PaymentGatewayRequestError, PaymentGatewayUnavailableError } from './payment-gateway';
import { StripePaymentGateway } from './stripe-payment-gateway';

interface Canned {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

let server: http.Server;
let next: Canned[] = [];
const seen: Array<{ method: string; url: string; idempotencyKey?: string }> = [];
let gateway: StripePaymentGateway;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, idempotencyKey: req.headers['idempotency-key'] as string | undefined });
      const answer = next.shift() ?? { status: 500, body: { error: { type: 'api_error', message: 'stub: nothing queued' } } };
      res.writeHead(answer.status, { 'content-type': 'application/json', 'request-id': 'req_stub', ...answer.headers });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  gateway = new StripePaymentGateway({ apiKey: 'sk_test_stub', webhookSecret: 'whsec_stub', host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  next = [];
  seen.length = 0;
});

const capture = () =>
  gateway.capturePayment({ amountMinor: 2500n, currency: 'EUR', customerRef: 'cus_1', paymentMethodRef: 'pm_1', idempotencyKey: 'top-up:1:capture' });

const intent = (overrides: Record<string, unknown>) => ({
  id: 'pi_stub',
  object: 'payment_intent',
  amount: 2500,
  amount_received: 0,
  currency: 'eur',
  customer: 'cus_1',
  payment_method: 'pm_1',
  status: 'succeeded',
  created: 1_700_000_000,
  metadata: {},
  last_payment_error: null,
  latest_charge: null,
  ...overrides,
});

const cardError = (code: string, declineCode: string | undefined, message: string) => ({
  status: 402,
  body: {
    error: {
      type: 'card_error',
      code,
      ...(declineCode ? { decline_code: declineCode } : {}),
      message,
      payment_intent: intent({ id: 'pi_declined', status: 'requires_payment_method' }),
    },
  },
});

describe('StripePaymentGateway error mapping', () => {
  it('maps a succeeded PaymentIntent', async () => {
    next.push({ status: 200, body: intent({ amount_received: 2500 }) });
    await expect(capture()).resolves.toEqual({ status: 'succeeded', paymentRef: 'pi_stub' });
    expect(seen).toEqual([{ method: 'POST', url: '/v1/payment_intents', idempotencyKey: 'top-up:1:capture' }]);
  });

  it.each([
    ['card_declined', 'generic_decline', 'card_declined'],
    ['card_declined', 'insufficient_funds', 'insufficient_funds'],
    ['expired_card', undefined, 'expired_card'],
  ])('returns a card error (%s / %s) as a declined result', async (code, declineCode, expected) => {
    next.push(cardError(code, declineCode, 'Your card was declined.'));
    await expect(capture()).resolves.toEqual({
      status: 'declined',
      paymentRef: 'pi_declined',
      declineCode: expected,
      message: 'Your card was declined.',
    });
  });

  it('returns authentication_required off-session as requires_action', async () => {
    next.push(cardError('authentication_required', 'authentication_required', 'This payment requires authentication.'));
    await expect(capture()).resolves.toMatchObject({ status: 'requires_action', paymentRef: 'pi_declined' });
  });

  it.each([
    ['requires_action', {}, 'requires_action'],
    ['processing', {}, 'requires_action'],
    ['canceled', { cancellation_reason: 'automatic' }, 'failed'],
    ['requires_payment_method', { last_payment_error: { type: 'card_error', code: 'card_declined', decline_code: 'lost_card' } }, 'declined'],
  ])('maps PaymentIntent status %s', async (status, extra, expected) => {
    next.push({ status: 200, body: intent({ status, ...extra }) });
    await expect(capture()).resolves.toMatchObject({ status: expected, paymentRef: 'pi_stub' });
  });

  it.each([
    [500, { type: 'api_error', message: 'boom' }, PaymentGatewayUnavailableError, true],
    [503, { type: 'api_error', message: 'unavailable' }, PaymentGatewayUnavailableError, true],
    [429, { type: 'invalid_request_error', code: 'rate_limit', message: 'slow down' }, PaymentGatewayUnavailableError, true],
    [409, { type: 'invalid_request_error', code: 'idempotency_key_in_use', message: 'another request is using this key' }, PaymentGatewayUnavailableError, true],
    [400, { type: 'idempotency_error', message: 'Keys for idempotent requests can only be used with the same parameters' }, IdempotencyKeyReuseError, false],
    [400, { type: 'invalid_request_error', code: 'resource_missing', param: 'customer', message: 'No such customer' }, PaymentGatewayRequestError, false],
    [401, { type: 'invalid_request_error', message: 'Invalid API Key provided' }, PaymentGatewayRequestError, false],
  ])('maps HTTP %i %j', async (status, error, errorClass, retryable) => {
    next.push({ status, body: { error } });
    const attempt = capture();
    await expect(attempt).rejects.toBeInstanceOf(errorClass);
    await expect(attempt).rejects.toMatchObject({ retryable });
  });

  it('maps over-refunds to request errors with Stripe\'s code', async () => {
    next.push({ status: 400, body: { error: { type: 'invalid_request_error', code: 'charge_already_refunded', message: 'already refunded' } } });
    await expect(gateway.refundPayment({ paymentRef: 'pi_1', idempotencyKey: 'r' })).rejects.toMatchObject({
      code: 'charge_already_refunded',
      retryable: false,
    });
  });

  it('returns null for a payment Stripe does not know', async () => {
    next.push({ status: 404, body: { error: { type: 'invalid_request_error', code: 'resource_missing', message: 'No such payment_intent' } } });
    await expect(gateway.getPayment('pi_missing')).resolves.toBeNull();
  });

  it('reads refunded amounts from the expanded latest charge', async () => {
    next.push({
      status: 200,
      body: intent({ amount_received: 2500, latest_charge: { id: 'ch_1', object: 'charge', amount: 2500, amount_refunded: 700 } }),
    });
    await expect(gateway.getPayment('pi_stub')).resolves.toMatchObject({
      status: 'succeeded',
      amountMinor: 2500n,
      amountCapturedMinor: 2500n,
      amountRefundedMinor: 700n,
      currency: 'EUR',
      customerRef: 'cus_1',
      paymentMethodRef: 'pm_1',
    });
  });
});
