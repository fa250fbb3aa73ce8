import type { Knex } from 'knex';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError, PG_UNIQUE_VIOLATION, pgConstraint, pgErrorCode } from '../shared/domain-error';
import { addBillingPeriods, isoDate } from '../catalog/billing-period';
import type { SubscriberState, SuspendReason } from './subscriber-lifecycle';
import { reserveMsisdn, reserveSim, setMsisdnState, setSimState, type Sim } from '../sims/inventory.repository';
import type { SimForm, SimState } from '../sims/inventory';

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
  /** A chosen number; the first free one of the pool when omitted. */
  msisdn?: string;
  planCode: string;
  /** A chosen SIM; with simForm 'esim' and no ICCID, the first free eSIM profile is reserved. */
  iccid?: string;
  simForm?: SimForm;
}

export interface Registration {
  at: Date;
  msisdn: string;
  iccid?: string;
  simId?: string;
  simForm?: SimForm;
}

/** Writes a new line (pending) and its subscription, reserving its number and SIM. Idempotent on the
 * subscriber id: a retried activity finds the row it wrote and returns the same registration. */
export async function registerSubscriber(db: Knex, cmd: RegisterSubscriberCommand): Promise<Registration> {
  try {
    return await db.transaction(async (trx) => {
      const existing = await trx('subscribers').where({ id: cmd.subscriberId }).first();
      if (existing) {
        const sim = existing.sim_id ? await trx('sims').where({ id: existing.sim_id }).first() : undefined;
        return { at: existing.created_at as Date, msisdn: existing.msisdn, iccid: sim?.iccid, simId: sim?.id, simForm: sim?.form };
      }
      const account = await trx('billing_accounts').where({ id: cmd.billingAccountId }).first();
      if (!account || account.status !== 'active') {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'no active billing account has this id', ['input', 'billingAccountId']);
      }
      const plan = await trx('plans').where({ code: cmd.planCode, status: 'active' }).first();
      if (!plan) throw new DomainError('PLAN_NOT_FOUND', 'no active plan has this code', ['input', 'planCode']);
      if (plan.currency.trim() !== account.currency.trim()) {
        throw new DomainError('CURRENCY_MISMATCH', `the plan is priced in ${plan.currency.trim()}, the account in ${account.currency.trim()}`, ['input', 'planCode']);
      }
      let sim: Sim | undefined;
      if (cmd.iccid || cmd.simForm) sim = await reserveSim(trx, cmd.subscriberId, { iccid: cmd.iccid, form: cmd.simForm });
      const { msisdn } = await reserveMsisdn(trx, cmd.subscriberId, cmd.msisdn);
      const [row] = await trx('subscribers')
        .insert({ id: cmd.subscriberId, billing_account_id: cmd.billingAccountId, msisdn, sim_id: sim?.id ?? null, state: 'pending' })
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
        details: JSON.stringify({ msisdn, iccid: sim?.iccid ?? null, planCode: cmd.planCode }),
      });
      return { at: start, msisdn, iccid: sim?.iccid, simId: sim?.id, simForm: sim?.form };
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
  reason?: string;
  actor: string;
  /** The eSIM's EID when an activation follows a download. */
  eid?: string;
  /** For a line given up before it went live: where its SIM goes (default back to the pool). */
  simDisposition?: 'available' | 'retired';
}

const SIM_STATE_OF: Record<SubscriberState, SimState> = { active: 'active', suspended: 'suspended', terminated: 'retired', pending: 'reserved' };

/** Applies a lifecycle transition to the billing record once per transition id, in one transaction:
 * the line, its SIM, its number, its subscription, and on termination of a line that was live the
 * final-bill request (table `final_bill_requests`, consumed by billing). A line given up before it
 * was ever active returns its SIM and number to the inventory instead. */
export async function recordTransition(db: Knex, cmd: TransitionCommand): Promise<Date> {
  return db.transaction(async (trx) => {
    const [inserted] = await trx('subscriber_transitions')
      .insert({
        id: cmd.transitionId, subscriber_id: cmd.subscriberId, action: cmd.action, from_state: cmd.from, to_state: cmd.to, reason: cmd.reason ?? null, actor: cmd.actor,
        details: cmd.eid ? JSON.stringify({ eid: cmd.eid }) : null,
      })
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
    const givenUp = cmd.to === 'terminated' && cmd.from === 'pending';
    if (subscriber.sim_id) {
      await setSimState(trx, subscriber.sim_id, givenUp ? (cmd.simDisposition ?? 'available') : SIM_STATE_OF[cmd.to], cmd.subscriberId, at, { eid: cmd.eid });
    }
    if (cmd.to === 'active' && cmd.from === 'pending') await setMsisdnState(trx, subscriber.msisdn, 'assigned', cmd.subscriberId, at);
    if (cmd.to === 'terminated') {
      const live = await trx('subscriptions').where({ subscriber_id: cmd.subscriberId, state: 'active' }).first();
      await trx('subscriptions').where({ subscriber_id: cmd.subscriberId }).whereIn('state', ['active', 'scheduled']).update({ state: 'ended', ended_at: at });
      // A number that was live rests before it can be sold again, so calls for the old owner stop
      // first; one that never went live goes straight back to the pool.
      await setMsisdnState(trx, subscriber.msisdn, givenUp ? 'available' : 'quarantined', null, at);
      if (!givenUp) {
        await trx('final_bill_requests').insert({
          id: cmd.transitionId, subscriber_id: cmd.subscriberId, billing_account_id: subscriber.billing_account_id,
          subscription_id: live?.id ?? null, terminated_at: at, actor: cmd.actor,
        }).onConflict('id').ignore();
      }
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
