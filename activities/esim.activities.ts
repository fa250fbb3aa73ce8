import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Knex } from 'knex';
import { buildActivationCode } from '../domain/sims/es2plus.activation-code';
import { isEs2PlusError, type Es2PlusOperatorPort } from '../domain/sims/es2plus.client';
import { createEsimOrder, updateEsimOrder } from '../domain/sims/esim-orders.repository';
import { esimOrderWorkflowId, type EsimOrderInput } from '../workflows/esim-order.messages';
import { esimOrderCompletedSignal, esimOrderFailedSignal, subscriberWorkflowId } from '../workflows/subscriber.messages';
import { IccidKey, SubscriberIdKey } from '../workflows/search-attributes';
import type { esimOrderWorkflow } from '../workflows/esim-order.workflow';

/** A transient ES2+ failure is thrown as is (Temporal retries with the same functionCallIdentifier);
 * a business refusal is final. */
function es2Failure(err: unknown): never {
  if (isEs2PlusError(err) && !err.retryable) {
    throw ApplicationFailure.create({
      type: 'ES2PLUS_REFUSED', nonRetryable: true,
      message: `${err.functionName} refused by the SM-DP+${err.statusCode ? ` (${err.statusCode})` : ''}: ${err.statusMessage ?? err.message}`,
      details: [err.toJSON()],
    });
  }
  throw err;
}

/** Signals the line; a line whose workflow has ended (terminated meanwhile) has its billing record
 * right already. */
async function tellLine(subscriberId: string, send: (h: ReturnType<Context['client']['workflow']['getHandle']>) => Promise<void>): Promise<void> {
  try {
    await send(Context.current().client.workflow.getHandle(subscriberWorkflowId(subscriberId)));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    Context.current().log.warn('eSIM order: the line has no running workflow', { subscriberId });
  }
}

/**
 * Starts `esim-order:<id>` (recorded in `esim_orders` already) on this worker's task queue, with its
 * search attributes and memo. Eagerly: its first task comes back with the answer and runs here, not
 * through matching. Idempotent: a workflow id is never reused, so a retry never places a second
 * order. To be called from an activity. (The caller does not wait for the order's progress here: a
 * task of this worker waiting on another of its tasks could starve it of slots.)
 */
export async function startEsimOrderWorkflow(input: EsimOrderInput): Promise<void> {
  const ctx = Context.current();
  try {
    await ctx.client.workflow.start<typeof esimOrderWorkflow>('esimOrderWorkflow', {
      workflowId: esimOrderWorkflowId(input.orderId),
      taskQueue: ctx.info.taskQueue,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: SubscriberIdKey, value: input.subscriberId }, { key: IccidKey, value: input.iccid }],
      memo: { purpose: input.purpose, iccid: input.iccid },
      requestEagerStart: true,
    });
  } catch (err) {
    // Started already (a retry), or ended already: either way not placed again.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

export function createEsimActivities(deps: { db: Knex; es2plus?: Es2PlusOperatorPort }) {
  const client = (): Es2PlusOperatorPort => {
    if (!deps.es2plus) throw ApplicationFailure.create({ type: 'ES2PLUS_NOT_CONFIGURED', message: 'no SM-DP+ is configured (SMDP_URL)', nonRetryable: true });
    return deps.es2plus;
  };
  return {
    /** Records the order (the ES2+ notification endpoint finds it by ICCID) and starts its workflow
     * (startEsimOrderWorkflow). Idempotent on the order id. For SIM swaps; an activation's order is
     * recorded and started with the line's registration. */
    async startEsimOrder(o: EsimOrderInput): Promise<void> {
      await createEsimOrder(deps.db, { id: o.orderId, subscriberId: o.subscriberId, simId: o.simId, iccid: o.iccid, purpose: o.purpose, eid: o.eid });
      await startEsimOrderWorkflow(o);
    },
    async es2DownloadOrder(o: { orderId: string; iccid: string; eid?: string }): Promise<{ iccid: string }> {
      try {
        return await client().downloadOrder({ iccid: o.iccid, eid: o.eid }, { functionCallIdentifier: `${o.orderId}:downloadOrder` });
      } catch (err) {
        es2Failure(err);
      }
    },
    async es2ConfirmOrder(o: { orderId: string; iccid: string; eid?: string }): Promise<{ matchingId: string; smdpAddress: string; activationCode: string; eid?: string }> {
      let r;
      try {
        r = await client().confirmOrder({ iccid: o.iccid, eid: o.eid, releaseFlag: true }, { functionCallIdentifier: `${o.orderId}:confirmOrder` });
      } catch (err) {
        es2Failure(err);
      }
      const activationCode = buildActivationCode(r.smdpAddress, r.matchingId);
      await updateEsimOrder(deps.db, o.orderId, { state: 'confirmed', matchingId: r.matchingId, activationCode, eid: r.eid });
      return { matchingId: r.matchingId, smdpAddress: r.smdpAddress, activationCode, ...(r.eid ? { eid: r.eid } : {}) };
    },
    /** Compensation: the Profile goes back to the SM-DP+'s pool. A refusal (e.g. already downloaded)
     * is an answer, not an error: the caller decides what becomes of the SIM. */
    async es2CancelOrder(o: { orderId: string; iccid: string; eid?: string }): Promise<{ cancelled: boolean; code?: string }> {
      try {
        await client().cancelOrder({ iccid: o.iccid, eid: o.eid, finalProfileStatusIndicator: 'Available' }, { functionCallIdentifier: `${o.orderId}:cancelOrder` });
        return { cancelled: true };
      } catch (err) {
        if (isEs2PlusError(err) && !err.retryable) return { cancelled: false, code: err.statusCode ?? err.kind };
        throw err;
      }
    },
    async es2ReleaseProfile(o: { orderId: string; iccid: string }): Promise<void> {
      try {
        await client().releaseProfile({ iccid: o.iccid }, { functionCallIdentifier: `${o.orderId}:releaseProfile` });
      } catch (err) {
        es2Failure(err);
      }
    },
    /** The device has the profile: the order is completed, then the line is told (it activates or
     * completes its swap; a repeated signal changes nothing there). */
    async completeEsimOrder(o: { orderId: string; eid?: string; line: { subscriberId: string; purpose: 'activation' | 'swap'; iccid: string } }): Promise<void> {
      await updateEsimOrder(deps.db, o.orderId, { state: 'completed', eid: o.eid });
      await tellLine(o.line.subscriberId, (h) => h.signal(esimOrderCompletedSignal, { orderId: o.orderId, purpose: o.line.purpose, iccid: o.line.iccid, eid: o.eid }));
    },
    /** The order failed and was compensated: recorded, then the line is told (it gives its inventory
     * back; a repeated signal changes nothing there). */
    async failEsimOrder(o: { orderId: string; code: string; message: string; line: { subscriberId: string; purpose: 'activation' | 'swap'; simDisposition: 'available' | 'retired' } }): Promise<void> {
      await updateEsimOrder(deps.db, o.orderId, { state: 'failed', failureCode: o.code, failureMessage: o.message });
      await tellLine(o.line.subscriberId, (h) => h.signal(esimOrderFailedSignal, {
        orderId: o.orderId, purpose: o.line.purpose, code: o.code, message: o.message, simDisposition: o.line.simDisposition,
      }));
    },
  };
}

export type EsimActivities = ReturnType<typeof createEsimActivities>;
