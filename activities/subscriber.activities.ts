import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import { createPgPool } from '../platform/database';
import { createChargingEngine, type ChargingEngine } from '../domain/charging/charging-engine';
import { DomainError } from '../domain/shared/domain-error';
import { registerSubscriber, recordTransition, type TransitionCommand } from '../domain/subscribers/subscribers.repository';
import {
  applyScheduledPlanChange, changePlan, swapSim, transferLine,
  type ChangePlanCommand, type ChangePlanResult, type SwapSimCommand, type TransferCommand,
} from '../domain/subscribers/subscriber-operations';
import { reserveSim, setSimState } from '../domain/sims/inventory.repository';
import type { SimForm } from '../domain/sims/inventory';
import type { SubscriberWorkflowInput } from '../workflows/subscriber.messages';
import { startEsimOrderWorkflow } from './esim.activities';

/** A domain refusal is final: retrying cannot make a taken number free. */
function asFailure(err: unknown): never {
  if (err instanceof DomainError) throw ApplicationFailure.create({ type: err.code, message: err.message, nonRetryable: true, details: [err.field] });
  throw err;
}

async function refusing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    asFailure(err);
  }
}

export interface SubscriberActivityDeps {
  db: Knex;
  /** Wallet movements (plan-change proration) and reservation clean-up (transfer) go through the
   * charging engine; when not given, one is made on a small pool of the same database. */
  chargingEngine?: ChargingEngine;
}

export function createSubscriberActivities(deps: SubscriberActivityDeps) {
  /** The shared engine, or a short-lived one on its own small pool (plan changes and transfers are
   * rare; nothing is left running between calls). */
  const withCharging = async <T>(fn: (engine: ChargingEngine) => Promise<T>): Promise<T> => {
    if (deps.chargingEngine) return fn(deps.chargingEngine);
    const pool = createPgPool(deps.db, { max: 2, applicationName: 'mvno-bss-lifecycle' });
    const engine = createChargingEngine({ pool, concurrency: 1 });
    try {
      return await fn(engine);
    } finally {
      await engine.close();
      await pool.end();
    }
  };
  return {
    /** Writes the line; for an eSIM line also its order (same transaction), then starts the order's
     * workflow `esim-order:<subscriber id>`. Both steps are idempotent on the subscriber id. */
    async registerSubscriber(input: SubscriberWorkflowInput): Promise<{ at: string; msisdn: string; iccid?: string; simId?: string; simForm?: SimForm }> {
      const r = await refusing(() => registerSubscriber(deps.db, input));
      if (r.simForm === 'esim' && r.simId && r.iccid) {
        await startEsimOrderWorkflow({
          orderId: input.subscriberId, subscriberId: input.subscriberId, purpose: 'activation', simId: r.simId, iccid: r.iccid, eid: input.eid, actor: input.actor, options: input.esimOrder,
        });
      }
      return { at: r.at.toISOString(), msisdn: r.msisdn, ...(r.iccid ? { iccid: r.iccid, simId: r.simId, simForm: r.simForm } : {}) };
    },
    async recordSubscriberTransition(cmd: TransitionCommand): Promise<string> {
      return (await refusing(() => recordTransition(deps.db, cmd))).toISOString();
    },
    async changeSubscriberPlan(cmd: ChangePlanCommand): Promise<ChangePlanResult> {
      return refusing(() => withCharging((engine) => changePlan(deps.db, engine, cmd)));
    },
    async applyScheduledPlanChange(cmd: { transitionId: string; subscriberId: string; actor: string }): Promise<{ at: string; planCode: string | null }> {
      return refusing(() => applyScheduledPlanChange(deps.db, cmd));
    },
    async transferSubscriber(cmd: TransferCommand): Promise<{ at: string; fromBillingAccountId: string; movedBuckets: number }> {
      return refusing(() => withCharging((engine) => transferLine(deps.db, engine, cmd)));
    },
    /** Reserves the SIM a swap moves to (idempotent per swap holder). */
    async reserveSimForSwap(cmd: { holder: string; iccid?: string; form: SimForm }): Promise<{ simId: string; iccid: string; form: SimForm }> {
      const sim = await refusing(() => deps.db.transaction((trx) => reserveSim(trx, cmd.holder, { iccid: cmd.iccid, form: cmd.form })));
      return { simId: sim.id, iccid: sim.iccid, form: sim.form };
    },
    async swapSubscriberSim(cmd: SwapSimCommand): Promise<{ at: string; oldIccid: string | null; newIccid: string }> {
      return refusing(() => swapSim(deps.db, cmd));
    },
    /** Gives back a SIM reserved for a swap that did not happen (only while this holder holds it). */
    async releaseReservedSim(cmd: { simId: string; holder: string; disposition: 'available' | 'retired' }): Promise<void> {
      await deps.db.transaction(async (trx) => {
        const sim = await trx('sims').where({ id: cmd.simId }).forUpdate().first();
        if (sim && sim.state === 'reserved' && sim.reserved_for === cmd.holder) await setSimState(trx, cmd.simId, cmd.disposition, null, new Date());
      });
    },
  };
}

export type SubscriberActivities = ReturnType<typeof createSubscriberActivities>;
