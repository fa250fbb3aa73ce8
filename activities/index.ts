import type { Knex } from 'knex';
import type { Logger } from '../platform/logger';
import { createSubscriberActivities } from './subscriber.activities';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { createBillingActivities, type LifecyclePort } from './billing.activities';

/** Everything activities need from the outside world, injected so tests can pass their own. */
export interface ActivityDependencies {
  db: Knex;
  logger: Logger;
  /** Shared charging engine for wallet movements; made on demand when absent. */
  chargingEngine?: ChargingEngine;
  /** Billing's way to suspend and resume lines (default: updates to `subscriber:<id>` through the worker's client). */
  lifecycle?: LifecyclePort;
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createSubscriberActivities(deps),
    ...createBillingActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
