import { PaymentGatewayConfigError, createPaymentGateway } from './create-payment-gateway';
import { SandboxPaymentGateway } from './sandbox-payment-gateway';
import { StripePaymentGateway } from './stripe-payment-gateway';
import { signPayload } from './webhook-signature';

describe('createPaymentGateway', () => {
  it('defaults to the sandbox outside production', () => {
    expect(createPaymentGateway({})).toBeInstanceOf(SandboxPaymentGateway);
    expect(createPaymentGateway({ NODE_ENV: 'development' }).name).toBe('sandbox');
  });

  it('refuses to guess in production', () => {
    expect(() => createPaymentGateway({ NODE_ENV: 'production' })).toThrow(PaymentGatewayConfigError);
    expect(createPaymentGateway({ NODE_ENV: 'production', PAYMENT_GATEWAY: 'sandbox' }).name).toBe('sandbox');
  });

  it('builds the Stripe gateway only with its secrets', async () => {
    expect(() => createPaymentGateway({ PAYMENT_GATEWAY: 'stripe' })).toThrow(/STRIPE_SECRET_KEY/);
    const gateway = createPaymentGateway({
      PAYMENT_GATEWAY: 'stripe',
      STRIPE_SECRET_KEY: 'sk_test_1',
      STRIPE_WEBHOOK_SECRET: 'whsec_a, whsec_b',
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: '12111',
      STRIPE_API_PROTOCOL: 'http',
    });
    expect(gateway).toBeInstanceOf(StripePaymentGateway);
    // both rolled secrets are accepted
    const body = Buffer.from(JSON.stringify({ id: 'evt_1', object: 'event', type: 'customer.created', created: 1, data: { object: {} } }));
    for (const secret of ['whsec_a', 'whsec_b']) {
      await expect(gateway.verifyWebhook(body, { 'stripe-signature': signPayload(body, secret) })).resolves.toMatchObject({ type: 'ignored' });
    }
  });

  it('reports malformed settings', () => {
    expect(() => createPaymentGateway({ PAYMENT_GATEWAY: 'paypal' })).toThrow(PaymentGatewayConfigError);
    expect(() => createPaymentGateway({ SANDBOX_WEBHOOK_URL: 'not a url' })).toThrow(PaymentGatewayConfigError);
  });
});
