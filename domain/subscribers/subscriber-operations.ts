/** Plan change, transfer and SIM swap on the billing record, each once per transition id (the
 * subscriber workflow's `subscriber:<id>:<n>`). Money moves through the ledger's wallet operations
 * (the charging engine's locks and journal), idempotent on `plan-change:<transition id>`.
 *
 * Transfer rules (to another billing account of the same currency):
 * - the monetary balance stays with the old account: a wallet belongs to the account, not the line;
 * - open charging reservations of the line are closed first: expired holds are returned through the
 *   charging engine; a line with reservations still held by a live session is refused
 *   (OPEN_RESERVATIONS) and can be transferred once the network releases them;
 * - allowance buckets scoped to the line's subscription move with it; pooled (account-level) buckets
 *   stay with the old account;
 * - the next recurring charge and every later one are billed to the new account. */
import type { Knex } from 'knex';
import type { ChargingEngine } from '../charging/charging-engine';
import { creditWallet, debitWallet } from '../ledger/wallet-operations';
import { minorToMicros } from '../ledger/money';
import { addBillingPeriods, isoDate } from '../catalog/billing-period';
import { DomainError } from '../shared/domain-error';
import { setSimState } from '../sims/inventory.repository';
import { prorate } from './proration';

async function transitionDone(db: Knex, transitionId: string): Promise<{ occurred_at: Date; details: Record<string, unknown> | null } | undefined> {
  return db('subscriber_transitions').where({ id: transitionId }).first('occurred_at', 'details');
}

async function liveLine(trx: Knex, subscriberId: string) {
  const line = await trx('subscribers').where({ id: subscriberId }).forUpdate().first();
  if (!line) throw new DomainError('SUBSCRIBER_NOT_FOUND', 'no line has this id', ['input', 'subscriberId']);
  if (line.state !== 'active' && line.state !== 'suspended') throw new DomainError('INVALID_STATE', `the line is ${line.state}`);
  return line;
}

export interface ChangePlanCommand {
  transitionId: string;
  subscriberId: string;
  planCode: string;
  when: 'now' | 'end_of_cycle';
  actor: string;
  /** The workflow's time of the change: proration is computed at it, so a retry computes the same. */
  at: string;
}

export interface ChangePlanResult {
  at: string;
  effectiveAt: string;
  fromPlanCode: string;
  toPlanCode: string;
  creditMinor: string;
  chargeMinor: string;
  netMinor: string;
  currency: string;
}

async function loadPlanChange(db: Knex, cmd: ChangePlanCommand) {
  const line = await db('subscribers').where({ id: cmd.subscriberId }).first();
  if (!line) throw new DomainError('SUBSCRIBER_NOT_FOUND', 'no line has this id', ['input', 'subscriberId']);
  const account = await db('billing_accounts').where({ id: line.billing_account_id }).first();
  const current = await db('subscriptions').join('plans', 'plans.id', 'subscriptions.plan_id').where({ 'subscriptions.subscriber_id': cmd.subscriberId, 'subscriptions.state': 'active' })
    .first('subscriptions.*', 'plans.code as plan_code', 'plans.recurring_fee_minor as fee', 'plans.currency as plan_currency');
  if (!current) throw new DomainError('NO_SUBSCRIPTION', 'the line has no active subscription');
  const plan = await db('plans').where({ code: cmd.planCode, status: 'active' }).first();
  if (!plan) throw new DomainError('PLAN_NOT_FOUND', 'no active plan has this code', ['input', 'planCode']);
  if (plan.currency.trim() !== account.currency.trim()) throw new DomainError('CURRENCY_MISMATCH', `the plan is priced in ${plan.currency.trim()}, the account in ${account.currency.trim()}`, ['input', 'planCode']);
  if (plan.id === current.plan_id) throw new DomainError('SAME_PLAN', 'the line is on this plan already', ['input', 'planCode']);
  return { line, account, current, plan };
}

/** Now: the old subscription ends and a new one runs to the same period end; the unused part of the
 * old fee is credited and the rest of the new fee charged (net, one journal entry); the line's
 * buckets follow it to the new subscription. At the end of the cycle: a `scheduled` subscription
 * starts when the current period ends (applied by `applyScheduledPlanChange`). */
export async function changePlan(db: Knex, engine: ChargingEngine, cmd: ChangePlanCommand): Promise<ChangePlanResult> {
  const done = await transitionDone(db, cmd.transitionId);
  if (done) return done.details as unknown as ChangePlanResult;
  const { line, account, current, plan } = await loadPlanChange(db, cmd);
  const currency = account.currency.trim();
  const at = new Date(cmd.at);
  if (cmd.when === 'end_of_cycle') {
    const effective: Date = current.current_period_end;
    const result: ChangePlanResult = {
      at: cmd.at, effectiveAt: effective.toISOString(), fromPlanCode: current.plan_code, toPlanCode: plan.code, creditMinor: '0', chargeMinor: '0', netMinor: '0', currency,
    };
    await db.transaction(async (trx) => {
      await liveLine(trx, cmd.subscriberId);
      const ins = await trx('subscriber_transitions')
        .insert({ id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: 'schedule_plan_change', from_state: line.state, to_state: line.state, actor: cmd.actor, details: JSON.stringify(result) })
        .onConflict('id').ignore().returning('id');
      if (!ins.length) return;
      await trx('subscriptions').where({ subscriber_id: cmd.subscriberId, state: 'scheduled' }).update({ state: 'ended', ended_at: at });
      await trx('subscriptions').insert({
        subscriber_id: cmd.subscriberId, plan_id: plan.id, state: 'scheduled', period_anchor: effective, current_period_start: effective,
        current_period_end: addBillingPeriods(effective, plan.billing_period_unit, plan.billing_period_count), next_charge_on: isoDate(effective), started_at: effective,
      });
    });
    return result;
  }
  const p = prorate({ oldFeeMinor: BigInt(current.fee), newFeeMinor: BigInt(plan.recurring_fee_minor), periodStart: current.current_period_start, periodEnd: current.current_period_end, at });
  const result: ChangePlanResult = {
    at: cmd.at, effectiveAt: cmd.at, fromPlanCode: current.plan_code, toPlanCode: plan.code,
    creditMinor: p.creditMinor.toString(), chargeMinor: p.chargeMinor.toString(), netMinor: p.netMinor.toString(), currency,
  };
  const movement = {
    billingAccountId: line.billing_account_id, idempotencyKey: `plan-change:${cmd.transitionId}`, actor: cmd.actor,
    reason: `plan change ${current.plan_code} → ${plan.code} (prorated)`, sourceRef: `subscription:${current.id}:plan-change`,
    details: { transitionId: cmd.transitionId, creditMinor: result.creditMinor, chargeMinor: result.chargeMinor },
  };
  // The wallet first: a refusal (INSUFFICIENT_FUNDS) leaves the line on its plan. A retry after a
  // later failure finds the entry by its key and does not move money twice.
  if (p.netMinor > 0n) await debitWallet(engine, { ...movement, amountMicros: minorToMicros(p.netMinor, currency) });
  if (p.netMinor < 0n) await creditWallet(engine, { ...movement, amountMicros: minorToMicros(-p.netMinor, currency), kind: 'credit_note' });
  await db.transaction(async (trx) => {
    const l = await liveLine(trx, cmd.subscriberId);
    const ins = await trx('subscriber_transitions')
      .insert({ id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: 'change_plan', from_state: l.state, to_state: l.state, actor: cmd.actor, details: JSON.stringify(result) })
      .onConflict('id').ignore().returning('id');
    if (!ins.length) return;
    await switchSubscription(trx, cmd.subscriberId, current, plan.id, at);
  });
  return result;
}

async function switchSubscription(trx: Knex, subscriberId: string, current: { id: string; period_anchor: Date; current_period_end: Date; next_charge_on: string }, planId: string, at: Date): Promise<string> {
  await trx('subscriptions').where({ id: current.id }).update({ state: 'ended', ended_at: at });
  const start = at < current.current_period_end ? at : new Date(current.current_period_end.getTime() - 1);
  const [row] = await trx('subscriptions').insert({
    subscriber_id: subscriberId, plan_id: planId, state: 'active', period_anchor: current.period_anchor, current_period_start: start,
    current_period_end: current.current_period_end, next_charge_on: current.next_charge_on, started_at: at,
  }).returning('id');
  await trx('buckets').where({ subscription_id: current.id }).update({ subscription_id: row.id, updated_at: at });
  return row.id;
}

/** Makes a scheduled plan change the line's subscription (the cycle has ended). Idempotent. */
export async function applyScheduledPlanChange(db: Knex, cmd: { transitionId: string; subscriberId: string; actor: string }): Promise<{ at: string; planCode: string | null }> {
  const done = await transitionDone(db, cmd.transitionId);
  if (done) return { at: done.occurred_at.toISOString(), planCode: (done.details?.toPlanCode as string) ?? null };
  return db.transaction(async (trx) => {
    const line = await trx('subscribers').where({ id: cmd.subscriberId }).forUpdate().first();
    const scheduled = await trx('subscriptions').join('plans', 'plans.id', 'subscriptions.plan_id').where({ 'subscriptions.subscriber_id': cmd.subscriberId, 'subscriptions.state': 'scheduled' }).first('subscriptions.*', 'plans.code as plan_code');
    const current = await trx('subscriptions').join('plans', 'plans.id', 'subscriptions.plan_id').where({ 'subscriptions.subscriber_id': cmd.subscriberId, 'subscriptions.state': 'active' }).first('subscriptions.*', 'plans.code as plan_code');
    const [t] = await trx('subscriber_transitions').insert({
      id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: 'change_plan', from_state: line.state, to_state: line.state, actor: cmd.actor,
      details: JSON.stringify({ scheduled: true, fromPlanCode: current?.plan_code ?? null, toPlanCode: scheduled?.plan_code ?? null }),
    }).returning('occurred_at');
    if (!scheduled || line.state === 'terminated') return { at: t.occurred_at.toISOString(), planCode: null };
    if (current) {
      await trx('subscriptions').where({ id: current.id }).update({ state: 'ended', ended_at: scheduled.current_period_start });
      await trx('buckets').where({ subscription_id: current.id }).update({ subscription_id: scheduled.id, updated_at: t.occurred_at });
    }
    await trx('subscriptions').where({ id: scheduled.id }).update({ state: 'active' });
    return { at: t.occurred_at.toISOString(), planCode: scheduled.plan_code };
  });
}

export interface TransferCommand {
  transitionId: string;
  subscriberId: string;
  toBillingAccountId: string;
  actor: string;
}

/** Moves a line to another billing account (rules at the top of this file). */
export async function transferLine(db: Knex, engine: ChargingEngine, cmd: TransferCommand): Promise<{ at: string; fromBillingAccountId: string; movedBuckets: number }> {
  const done = await transitionDone(db, cmd.transitionId);
  if (done) return { at: done.occurred_at.toISOString(), fromBillingAccountId: String(done.details?.fromBillingAccountId), movedBuckets: Number(done.details?.movedBuckets ?? 0) };
  const held = (): Promise<string[]> => db('charging_sessions').where({ subscriber_id: cmd.subscriberId, state: 'open' })
    .whereRaw(`EXISTS (SELECT 1 FROM jsonb_array_elements(reservations::jsonb) r WHERE jsonb_array_length(coalesce(r->'holds', '[]'::jsonb)) > 0)`)
    .pluck('charging_data_ref');
  const open = await held();
  if (open.length) {
    await engine.expireSessions(open);
    if ((await held()).length) {
      throw new DomainError('OPEN_RESERVATIONS', 'the line has charging reservations held by a live session; transfer it when they are released', ['input', 'subscriberId']);
    }
  }
  return db.transaction(async (trx) => {
    const line = await liveLine(trx, cmd.subscriberId);
    if (line.billing_account_id === cmd.toBillingAccountId) throw new DomainError('SAME_ACCOUNT', 'the line is on this account already', ['input', 'billingAccountId']);
    const [from, to] = await Promise.all([
      trx('billing_accounts').where({ id: line.billing_account_id }).first(),
      trx('billing_accounts').where({ id: cmd.toBillingAccountId }).first(),
    ]);
    if (!to || to.status !== 'active') throw new DomainError('ACCOUNT_NOT_FOUND', 'no active billing account has this id', ['input', 'billingAccountId']);
    if (to.currency.trim() !== from.currency.trim()) throw new DomainError('CURRENCY_MISMATCH', `the target account bills in ${to.currency.trim()}, the line's in ${from.currency.trim()}`, ['input', 'billingAccountId']);
    const subs: string[] = await trx('subscriptions').where({ subscriber_id: cmd.subscriberId }).whereIn('state', ['active', 'scheduled']).pluck('id');
    const buckets: string[] = subs.length ? await trx('buckets').whereIn('subscription_id', subs).pluck('ledger_account_id') : [];
    if (buckets.length) {
      await trx('buckets').whereIn('ledger_account_id', buckets).update({ billing_account_id: cmd.toBillingAccountId, updated_at: trx.fn.now() });
      await trx('ledger_accounts').whereIn('id', buckets).update({ billing_account_id: cmd.toBillingAccountId });
    }
    await trx('subscribers').where({ id: cmd.subscriberId }).update({ billing_account_id: cmd.toBillingAccountId, updated_at: trx.fn.now() });
    const details = { fromBillingAccountId: line.billing_account_id, toBillingAccountId: cmd.toBillingAccountId, movedBuckets: buckets.length };
    const [t] = await trx('subscriber_transitions').insert({
      id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: 'transfer', from_state: line.state, to_state: line.state, actor: cmd.actor, details: JSON.stringify(details),
    }).returning('occurred_at');
    return { at: t.occurred_at.toISOString(), fromBillingAccountId: line.billing_account_id, movedBuckets: buckets.length };
  });
}

export interface SwapSimCommand {
  transitionId: string;
  subscriberId: string;
  /** A SIM reserved for this swap (reserveSim with the swap's holder). */
  newSimId: string;
  actor: string;
  eid?: string;
}

/** Puts the line on its new SIM: the new one takes the line's state, the old one is retired. */
export async function swapSim(db: Knex, cmd: SwapSimCommand): Promise<{ at: string; oldIccid: string | null; newIccid: string }> {
  const done = await transitionDone(db, cmd.transitionId);
  if (done) return { at: done.occurred_at.toISOString(), oldIccid: (done.details?.oldIccid as string) ?? null, newIccid: String(done.details?.newIccid) };
  return db.transaction(async (trx) => {
    const line = await liveLine(trx, cmd.subscriberId);
    const [oldSim, newSim] = await Promise.all([
      line.sim_id ? trx('sims').where({ id: line.sim_id }).forUpdate().first() : undefined,
      trx('sims').where({ id: cmd.newSimId }).forUpdate().first(),
    ]);
    if (!newSim || newSim.state !== 'reserved') throw new DomainError('SIM_TAKEN', 'the new SIM is not reserved for this swap', ['input', 'iccid']);
    const [t] = await trx('subscriber_transitions').insert({
      id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: 'sim_swap', from_state: line.state, to_state: line.state, actor: cmd.actor,
      details: JSON.stringify({ oldIccid: oldSim?.iccid ?? null, newIccid: newSim.iccid, newForm: newSim.form }),
    }).returning('occurred_at');
    const at: Date = t.occurred_at;
    if (oldSim) await setSimState(trx, oldSim.id, 'retired', null, at);
    await setSimState(trx, newSim.id, line.state === 'suspended' ? 'suspended' : 'active', null, at, { eid: cmd.eid });
    await trx('subscribers').where({ id: cmd.subscriberId }).update({ sim_id: newSim.id, updated_at: at });
    return { at: at.toISOString(), oldIccid: oldSim?.iccid ?? null, newIccid: newSim.iccid };
  });
}
