import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import { DomainError } from '../domain/shared/domain-error';
import { registerSubscriber, recordTransition, type TransitionCommand } from '../domain/subscribers/subscribers.repository';
import type { SubscriberWorkflowInput } from '../workflows/subscriber.messages';

/** A domain refusal is final: retrying cannot make a taken number free. */
function asFailure(err: unknown): never {
  if (err instanceof DomainError) throw ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [err.field] });
  throw err;
}

export function createSubscriberActivities(deps: { db: Knex }) {
  return {
    async registerSubscriber(input: SubscriberWorkflowInput): Promise<string> {
      try {
        return (await registerSubscriber(deps.db, input)).toISOString();
      } catch (err) {
        asFailure(err);
      }
    },
    async recordSubscriberTransition(cmd: TransitionCommand): Promise<string> {
      try {
        return (await recordTransition(deps.db, cmd)).toISOString();
      } catch (err) {
        asFailure(err);
      }
    },
  };
}

export type SubscriberActivities = ReturnType<typeof createSubscriberActivities>;
