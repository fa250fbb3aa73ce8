import type { Knex } from 'knex';
import type { Logger } from '../platform/logger';
import { createSubscriberActivities } from './subscriber.activities';

/** Everything activities need from the outside world, injected so tests can pass their own. */
export interface ActivityDependencies {
  db: Knex;
  logger: Logger;
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createSubscriberActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
