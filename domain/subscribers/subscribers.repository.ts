import type { Knex } from 'knex';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError, PG_UNIQUE_VIOLATION, pgConstraint, pgErrorCode } from '../shared/domain-error';
import { addBillingPeriods, isoDate } from '../catalog/billing-period';
import type { SubscriberState, SuspendReason } from './subscriber-lifecycle';

export interface Subscriber {
  id: string;
  billingAccountId: string;
  msisdn: string;
  simId: string | null;
  state: SubscriberState;
  suspendReason: SuspendReason | null;
  createdAt: Date;
  activatedAt: Date | null;
  terminatedAt: Date | null;
}

interface SubscriberRow {
  id: string; billing_account_id: string; msisdn: string; sim_id: string | null; state: SubscriberState;
  suspend_reason: SuspendReason | null; created_at: Date; activated_at: Date | null; terminated_at: Date | null;
}

const toSubscriber = (r: SubscriberRow): Subscriber => ({
  id: r.id, billingAccountId: r.billing_account_id, msisdn: r.msisdn, simId: r.sim_id, state: r.state,
  suspendReason: r.suspend_reason, createdAt: r.created_at, activatedAt: r.activated_at, terminatedAt: r.terminated_at,
});

export interface RegisterSubscriberCommand {
  subscriberId: string;
  billingAccountId: string;
  msisdn: string;
  planCode: string;
  iccid?: string;
}

/** Writes a new line (pending) and its subscription. Idempotent on the subscriber id: a retried
 * activity finds the row it wrote and returns its time. */
export async function registerSubscriber(db: Knex, cmd: RegisterSubscriberCommand): Promise<Date> {
  try {
    return await db.transaction(async (trx) => {
      const existing = await trx('subscribers').where({ id: cmd.subscriberId }).first();
      if (existing) return existing.created_at as Date;
      const account = await trx('billing_accounts').where({ id: cmd.billingAccountId }).first();
      if (!account || account.status !== 'active') {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'no active billing account has this id', ['input', 'billingAccountId']);
      }
      const plan = await trx('plans').where({ code: cmd.planCode, status: 'active' }).first();
      if (!plan) throw new DomainError('PLAN_NOT_FOUND', 'no active plan has this code', ['input', 'planCode']);
      if (plan.currency.trim() !== account.currency.trim()) {
        throw new DomainError('CURRENCY_MISMATCH', `the plan is priced in ${plan.currency.trim()}, the account in ${account.currency.trim()}`, ['input', 'planCode']);
      }
      let simId: string | null = null;
      if (cmd.iccid) {
        const sim = await trx('sims').where({ iccid: cmd.iccid }).forUpdate().first();
        if (!sim) throw new DomainError('SIM_NOT_FOUND', 'no SIM has this ICCID', ['input', 'iccid']);
        if (!(sim.state === 'available' || (sim.state === 'reserved' && sim.reserved_for === cmd.subscriberId))) {
          throw new DomainError('SIM_TAKEN', 'this SIM is not available', ['input', 'iccid']);
        }
        await trx('sims').where({ id: sim.id }).update({ state: 'reserved', reserved_for: cmd.subscriberId, updated_at: trx.fn.now() });
        simId = sim.id;
      }
      // A number from the MVNO's own pool must be free (or reserved for this order); ported-in
      // numbers are not in the pool and are guarded by the live-MSISDN unique index alone.
      const pooled = await trx('msisdns').where({ msisdn: cmd.msisdn }).forUpdate().first();
      if (pooled) {
        if (!(pooled.state === 'available' || (pooled.state === 'reserved' && pooled.reserved_for === cmd.subscriberId))) {
          throw new DomainError('MSISDN_TAKEN', 'this number is not available', ['input', 'msisdn']);
        }
        await trx('msisdns').where({ msisdn: cmd.msisdn }).update({ state: 'assigned', reserved_for: cmd.subscriberId, updated_at: trx.fn.now() });
      }
      const [row] = await trx('subscribers')
        .insert({ id: cmd.subscriberId, billing_account_id: cmd.billingAccountId, msisdn: cmd.msisdn, sim_id: simId, state: 'pending' })
        .returning('*');
      const start: Date = row.created_at;
      const end = addBillingPeriods(start, plan.billing_period_unit, plan.billing_period_count);
      await trx('subscriptions').insert({
        subscriber_id: cmd.subscriberId, plan_id: plan.id, state: 'active', period_anchor: start,
        current_period_start: start, current_period_end: end, next_charge_on: isoDate(end), started_at: start,
      });
      await trx('subscriber_transitions').insert({
        id: `subscriber:${cmd.subscriberId}:register`, subscriber_id: cmd.subscriberId, action: 'register',
        from_state: null, to_state: 'pending', actor: 'workflow', occurred_at: start,
      });
      return start;
    });
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION && pgConstraint(err) === 'subscribers_live_msisdn_uq') {
      throw new DomainError('MSISDN_TAKEN', 'another line uses this number', ['input', 'msisdn']);
    }
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION && pgConstraint(err) === 'subscribers_live_sim_uq') {
      throw new DomainError('SIM_TAKEN', 'another line uses this SIM', ['input', 'iccid']);
    }
    throw err;
  }
}

export interface TransitionCommand {
  transitionId: string;
  subscriberId: string;
  action: string;
  from: SubscriberState;
  to: SubscriberState;
  reason?: SuspendReason;
  actor: string;
}

/** Applies a lifecycle transition to the billing record once per transition id. */
export async function recordTransition(db: Knex, cmd: TransitionCommand): Promise<Date> {
  return db.transaction(async (trx) => {
    const [inserted] = await trx('subscriber_transitions')
      .insert({ id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: cmd.action, from_state: cmd.from, to_state: cmd.to, reason: cmd.reason ?? null, actor: cmd.actor })
      .onConflict('id')
      .ignore()
      .returning('occurred_at');
    if (!inserted) {
      const previous = await trx('subscriber_transitions').where({ id: cmd.transitionId }).first();
      return previous.occurred_at as Date;
    }
    const at: Date = inserted.occurred_at;
    const changes: Record<string, unknown> = { state: cmd.to, updated_at: at, suspend_reason: cmd.to === 'suspended' ? cmd.reason : null };
    if (cmd.to === 'active' && cmd.from === 'pending') changes.activated_at = at;
    if (cmd.to === 'terminated') changes.terminated_at = at;
    const updated = await trx('subscribers').where({ id: cmd.subscriberId, state: cmd.from }).update(changes);
    if (updated !== 1) throw new DomainError('STATE_CONFLICT', `the line is not ${cmd.from} in the billing record`);
    const subscriber = await trx('subscribers').where({ id: cmd.subscriberId }).first();
    if (subscriber.sim_id) {
      const simState = { active: 'active', suspended: 'suspended', terminated: 'retired', pending: 'reserved' }[cmd.to];
      await trx('sims').where({ id: subscriber.sim_id }).update({ state: simState, updated_at: at, reserved_for: simState === 'reserved' ? cmd.subscriberId : null });
    }
    if (cmd.to === 'terminated') {
      await trx('subscriptions').where({ subscriber_id: cmd.subscriberId, state: 'active' }).update({ state: 'ended', ended_at: at });
      // A number rests for 90 days before it can be sold again, so calls for the old owner stop first.
      await trx('msisdns').where({ msisdn: subscriber.msisdn }).update({
        state: 'quarantined', reserved_for: null, quarantined_until: trx.raw(`?::timestamptz + interval '90 days'`, [at]), updated_at: at,
      });
    }
    return at;
  });
}

export async function findSubscriber(db: Knex, id: string): Promise<Subscriber | undefined> {
  const row = await db('subscribers').where({ id }).first();
  return row ? toSubscriber(row) : undefined;
}

export async function listSubscribers(db: Knex, args: PageArgs, filter: { billingAccountId?: string; state?: string; msisdn?: string } = {}): Promise<Page<Subscriber>> {
  const q = db('subscribers').select('subscribers.*');
  if (filter.billingAccountId) q.where('subscribers.billing_account_id', filter.billingAccountId);
  if (filter.state) q.where('subscribers.state', filter.state);
  if (filter.msisdn) q.where('subscribers.msisdn', filter.msisdn);
  const page = await keysetPage<SubscriberRow>(db, q, args, 'subscribers');
  return { ...page, items: page.items.map(toSubscriber) };
}

export async function currentPlanCodes(db: Knex, subscriberIds: readonly string[]): Promise<Map<string, string>> {
  const rows = await db('subscriptions')
    .join('plans', 'plans.id', 'subscriptions.plan_id')
    .whereIn('subscriptions.subscriber_id', subscriberIds as string[])
    .orderBy('subscriptions.started_at', 'asc')
    .select('subscriptions.subscriber_id', 'plans.code');
  return new Map(rows.map((r: { subscriber_id: string; code: string }) => [r.subscriber_id, r.code]));
}
