/** Activities of the billing run: thin adapters from Temporal to domain/billing. Each is idempotent
 * on its business key (the charge row per subscription and period), so retries are safe. */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Knex } from 'knex';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { sharedEngineFor } from '../domain/payments/shared-engine';
import {
  finishBillingRunRecord,
  graceExpiredCharges,
  lanesAtDueQuantiles,
  markSuspended,
  openChargesOf,
  startBillingRunRecord,
  subscribersWithoutArrears,
} from '../domain/billing/billing-run.repository';
import { addDays, collect, fulfil, runBillingBatch, settleCharges } from '../domain/billing/billing-run.service';
import type { BillingBatchResult, BillingRunTotals, DueCursor, DueLane, GraceBatchResult } from '../domain/billing/billing-run.types';
import { publishEvents } from '../domain/notifications/notifications.repository';
import { subscriberResumeUpdate, subscriberSuspendUpdate, subscriberTerminateUpdate, subscriberWorkflowId } from '../workflows/subscriber.messages';
import type { Logger } from '../platform/logger';
import type { Client } from '@temporalio/client';

/** How billing reaches the subscriber lifecycle workflow (`subscriber:<id>`), owned by the lifecycle
 * context. The default sends its updates through the worker's client. */
export type LifecycleOutcome = 'done' | 'no-workflow' | 'rejected';

export interface LifecyclePort {
  suspendForNonPayment(subscriberId: string): Promise<LifecycleOutcome>;
  resumeAfterPayment(subscriberId: string): Promise<LifecycleOutcome>;
  terminateForNonPayment(subscriberId: string): Promise<LifecycleOutcome>;
}

/** Sends one update to `subscriber:<id>`; a missing workflow or a refused transition (the line moved
 * on meanwhile) is an outcome, not an activity failure to retry. */
async function lifecycleUpdate(subscriberId: string, send: (h: ReturnType<Client['workflow']['getHandle']>) => Promise<unknown>): Promise<LifecycleOutcome> {
  try {
    await send(Context.current().client.workflow.getHandle(subscriberWorkflowId(subscriberId)));
    return 'done';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'no-workflow';
    if (err instanceof WorkflowUpdateFailedError) return 'rejected';
    throw err;
  }
}

export const temporalLifecyclePort: LifecyclePort = {
  suspendForNonPayment: (id) => lifecycleUpdate(id, (h) => h.executeUpdate(subscriberSuspendUpdate, { args: [{ actor: 'billing', reason: 'non_payment' }] })),
  resumeAfterPayment: (id) => lifecycleUpdate(id, (h) => h.executeUpdate(subscriberResumeUpdate, { args: [{ actor: 'billing' }] })),
  terminateForNonPayment: (id) => lifecycleUpdate(id, (h) => h.executeUpdate(subscriberTerminateUpdate, { args: [{ actor: 'billing:dunning' }] })),
};

export interface BillingActivityDeps {
  db: Knex;
  logger: Logger;
  chargingEngine?: ChargingEngine;
  lifecycle?: LifecyclePort;
}

/** The engine the billing activities debit wallets through: the one injected, or one of their own on
 * a small pool of the same database (large batches: the billing run submits thousands at once). */
export function engineFor(deps: BillingActivityDeps): () => ChargingEngine {
  return () => deps.chargingEngine ?? sharedEngineFor(deps.db);
}

export function createBillingActivities(deps: BillingActivityDeps) {
  const engine = engineFor(deps);
  const lifecycle = deps.lifecycle ?? temporalLifecyclePort;
  const billing = () => ({ db: deps.db, engine: engine() });

  async function resumeIfClear(subscriberIds: string[]): Promise<number> {
    let resumed = 0;
    for (const id of await subscribersWithoutArrears(deps.db, subscriberIds)) {
      if ((await lifecycle.resumeAfterPayment(id)) === 'done') resumed++;
      else deps.logger.warn({ subscriberId: id }, 'billing: no lifecycle workflow to resume this line');
    }
    return resumed;
  }

  return {
    async billingRunStart(cycleDate: string): Promise<void> {
      await startBillingRunRecord(deps.db, cycleDate);
    },

    /** The run's lanes, cut at quantiles of the due subscriptions' ids (`lanesAtDueQuantiles`). */
    async billingRunLanes(input: { cycleDate: string; count: number }): Promise<DueLane[]> {
      return lanesAtDueQuantiles(deps.db, input);
    },

    /** One batch of one lane (no lane: the whole id space, as runs before lanes). */
    async billingRunBatch(input: { cycleDate: string; after: DueCursor; limit: number; graceDays: number; lane?: DueLane }): Promise<BillingBatchResult> {
      // A retry may follow an attempt that died after its claim committed: finish that one first.
      const r = await runBillingBatch(billing(), { ...input, retried: Context.current().info.attempt > 1 });
      if (r.insufficientSubscriberIds.length > 0) {
        await publishEvents(deps.db, r.insufficientSubscriberIds.map((subscriberId) => ({
          key: `suspension-warning:${subscriberId}:${input.cycleDate}`, type: 'suspension_warning' as const, subscriberId,
          payload: { cycleDate: input.cycleDate, graceDays: input.graceDays },
        })));
      }
      const { insufficientSubscriberIds: _ids, ...result } = r;
      return result;
    },

    /** Charges whose grace ended: one more try, then suspension through the lifecycle workflow. */
    async billingRunGraceBatch(input: { cycleDate: string; afterId: string; limit: number; graceDays: number }): Promise<GraceBatchResult> {
      const due = await graceExpiredCharges(deps.db, input);
      if (due.length === 0) return { lastId: null, scanned: 0, collected: 0, suspended: 0 };
      const outcomes = await collect(billing(), due);
      await fulfil(billing(), outcomes, { graceUntil: addDays(input.cycleDate, input.graceDays) });
      const unpaid = outcomes.filter((o) => o.status === 'insufficient').map((o) => o.id);
      const paid = outcomes.filter((o) => o.status === 'charged').map((o) => o.id);
      await markSuspended(deps.db, unpaid);
      // Only lines still active: one already suspended (an earlier unpaid period) stays as it is.
      const owing = [...new Set(due.filter((c) => unpaid.includes(c.id)).map((c) => c.subscriberId))];
      const subscribers: string[] = owing.length === 0 ? [] : await deps.db('subscribers').whereIn('id', owing).andWhere('state', 'active').pluck('id');
      let suspended = 0;
      for (const id of subscribers) {
        Context.current().heartbeat(id);
        if ((await lifecycle.suspendForNonPayment(id)) === 'done') suspended++;
        else deps.logger.warn({ subscriberId: id }, 'billing: no lifecycle workflow to suspend this line');
      }
      return { lastId: due[due.length - 1].id, scanned: due.length, collected: paid.length, suspended };
    },

    async billingRunFinish(input: { cycleDate: string; totals: BillingRunTotals }): Promise<void> {
      await finishBillingRunRecord(deps.db, input.cycleDate, input.totals);
    },

    /** After money came in (a top-up, a voucher, a payment): collect the account's open charges, oldest
     * first, and resume lines suspended for non-payment that owe nothing any more. */
    async billingSettleAccount(input: { billingAccountId: string; cycleDate: string }): Promise<{ collected: number; resumed: number }> {
      const open = await openChargesOf(deps.db, input.billingAccountId);
      const outcomes = await settleCharges(billing(), open, input.cycleDate, 0);
      const resumed = await resumeIfClear([...new Set(open.map((c) => c.subscriberId))]);
      return { collected: outcomes.filter((o) => o.status === 'charged').length, resumed };
    },
  };
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
