import type { Knex } from 'knex';
import type { Logger } from '../platform/logger';
import { createSubscriberActivities } from './subscriber.activities';
import { createReconciliationActivities } from './reconciliation.activities';
import { createPaymentActivities } from './payment.activities';
import { createInvoiceActivities } from './billing-invoice.activities';
import type { PaymentGateway } from '../domain/payments/payment-gateway';
import { createEsimActivities } from './esim.activities';
import type { Es2PlusOperatorPort } from '../domain/sims/es2plus.client';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { createBillingActivities, type LifecyclePort } from './billing.activities';

/** Everything activities need from the outside world, injected so tests can pass their own. */
export interface ActivityDependencies {
  db: Knex;
  logger: Logger;
  /** The SM-DP+ (ES2+) client; eSIM orders fail with ES2PLUS_NOT_CONFIGURED without it. */
  es2plus?: Es2PlusOperatorPort;
  /** Shared charging engine for wallet movements; made on demand when absent. */
  chargingEngine?: ChargingEngine;
  /** Billing's way to suspend and resume lines (default: updates to `subscriber:<id>` through the worker's client). */
  lifecycle?: LifecyclePort;
  /** The payment gateway (default: built from the environment, see domain/payments/create-payment-gateway.ts). */
  paymentGateway?: PaymentGateway;
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createSubscriberActivities(deps),
    ...createReconciliationActivities(deps),
    ...createEsimActivities(deps),
    ...createBillingActivities(deps),
    ...createPaymentActivities(deps),
    ...createInvoiceActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
