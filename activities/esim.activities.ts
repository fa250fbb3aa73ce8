import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import { buildActivationCode } from '../domain/sims/es2plus.activation-code';
import { isEs2PlusError, type Es2PlusOperatorPort } from '../domain/sims/es2plus.client';
import { createEsimOrder, updateEsimOrder } from '../domain/sims/esim-orders.repository';

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

export function createEsimActivities(deps: { db: Knex; es2plus?: Es2PlusOperatorPort }) {
  const client = (): Es2PlusOperatorPort => {
    if (!deps.es2plus) throw ApplicationFailure.create({ type: 'ES2PLUS_NOT_CONFIGURED', message: 'no SM-DP+ is configured (SMDP_URL)', nonRetryable: true });
    return deps.es2plus;
  };
  return {
    async recordEsimOrder(o: { orderId: string; subscriberId: string; simId: string; iccid: string; purpose: 'activation' | 'swap'; eid?: string }): Promise<void> {
      await createEsimOrder(deps.db, { id: o.orderId, subscriberId: o.subscriberId, simId: o.simId, iccid: o.iccid, purpose: o.purpose, eid: o.eid });
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
    async completeEsimOrder(o: { orderId: string; eid?: string }): Promise<void> {
      await updateEsimOrder(deps.db, o.orderId, { state: 'completed', eid: o.eid });
    },
    async failEsimOrder(o: { orderId: string; code: string; message: string }): Promise<void> {
      await updateEsimOrder(deps.db, o.orderId, { state: 'failed', failureCode: o.code, failureMessage: o.message });
    },
  };
}

export type EsimActivities = ReturnType<typeof createEsimActivities>;
