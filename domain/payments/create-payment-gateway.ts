/**
 * Picks and builds the payment gateway from the environment (for worker.ts and the API's
 * webhook endpoint; both must build the same one):
 *
 *   PAYMENT_GATEWAY          sandbox (default) | stripe
 *   STRIPE_SECRET_KEY        sk_… (stripe)
 *   STRIPE_WEBHOOK_SECRET    whsec_…; comma-separated while a secret is being rolled (stripe)
 *   STRIPE_API_HOST / STRIPE_API_PORT / STRIPE_API_PROTOCOL   point the SDK elsewhere (stripe-mock)
 *   PAYMENT_WEBHOOK_TOLERANCE_SECONDS   default 300
 *   SANDBOX_WEBHOOK_URL      where the sandbox POSTs its signed events (e.g. the local API)
 *   SANDBOX_WEBHOOK_SECRET   default 'whsec_sandbox'
 *
 * In production the sandbox must be asked for explicitly (PAYMENT_GATEWAY=sandbox), so a
 * missing variable never silently takes no money.
 */
import { z } from 'zod';
import type { PaymentGateway } from './payment-gateway';
import { SandboxPaymentGateway } from './sandbox-payment-gateway';
import { StripePaymentGateway } from './stripe-payment-gateway';

const secrets = z
  .string()
  .min(1)
  .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

const schema = z.object({
  NODE_ENV: z.string().optional(),
  PAYMENT_GATEWAY: z.enum(['sandbox', 'stripe']).optional(),
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  STRIPE_WEBHOOK_SECRET: secrets.optional(),
  STRIPE_API_HOST: z.string().min(1).optional(),
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STRIPE_API_PROTOCOL: z.enum(['http', 'https']).optional(),
  PAYMENT_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).optional(),
  SANDBOX_WEBHOOK_URL: z.string().url().optional(),
  SANDBOX_WEBHOOK_SECRET: secrets.optional(),
});

export class PaymentGatewayConfigError extends Error {
  override name = 'PaymentGatewayConfigError';
}

export function createPaymentGateway(env: NodeJS.ProcessEnv = process.env): PaymentGateway {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    throw new PaymentGatewayConfigError(
      `invalid payment gateway settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const e = parsed.data;
  const kind = e.PAYMENT_GATEWAY ?? (e.NODE_ENV === 'production' ? undefined : 'sandbox');
  if (!kind) {
    throw new PaymentGatewayConfigError('PAYMENT_GATEWAY must be set in production (stripe, or sandbox to take no real money)');
  }
  if (kind === 'sandbox') {
    return new SandboxPaymentGateway({
      webhookUrl: e.SANDBOX_WEBHOOK_URL,
      webhookSecret: e.SANDBOX_WEBHOOK_SECRET,
      webhookToleranceSeconds: e.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
    });
  }
  if (!e.STRIPE_SECRET_KEY || !e.STRIPE_WEBHOOK_SECRET?.length) {
    throw new PaymentGatewayConfigError('PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET');
  }
  return new StripePaymentGateway({
    apiKey: e.STRIPE_SECRET_KEY,
    webhookSecret: e.STRIPE_WEBHOOK_SECRET,
    host: e.STRIPE_API_HOST,
    port: e.STRIPE_API_PORT,
    protocol: e.STRIPE_API_PROTOCOL,
    webhookToleranceSeconds: e.PAYMENT_WEBHOOK_TOLERANCE_SECONDS,
  });
}

let processGateway: PaymentGateway | undefined;

/** One gateway per process, built from the environment on first use. The sandbox keeps its state in
 * memory, so the worker's activities, the API and the demo must share one instance when they run in
 * one process (`npm start`); with Stripe the state is at Stripe and sharing is only a saving. */
export function processPaymentGateway(env: NodeJS.ProcessEnv = process.env): PaymentGateway {
  return (processGateway ??= createPaymentGateway(env));
}
