/** The payments context: the gateway interface, its two implementations and the factory. */
export * from './payment-gateway';
export { createPaymentGateway, processPaymentGateway, PaymentGatewayConfigError } from './create-payment-gateway';
export {
  SANDBOX_TEST_CARDS,
  SandboxPaymentGateway,
  type SandboxPaymentGatewayOptions,
  type SandboxTestCard,
  type SandboxWebhook,
  type WebhookDeliveryResult,
} from './sandbox-payment-gateway';
export { StripePaymentGateway, type StripePaymentGatewayOptions } from './stripe-payment-gateway';
export { DEFAULT_TOLERANCE_SECONDS, SIGNATURE_HEADER, signPayload, verifySignature } from './webhook-signature';
