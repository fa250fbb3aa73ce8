import type { Knex } from 'knex';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError, PG_UNIQUE_VIOLATION, pgConstraint, pgErrorCode } from '../shared/domain-error';
import { addBillingPeriods, isoDate, type BillingPeriodUnit } from '../catalog/billing-period';
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
  /** The device's EID, when known (recorded on the eSIM order). */
  eid?: string;
}

export interface Registration {
  at: Date;
  msisdn: string;
  iccid?: string;
  simId?: string;
  simForm?: SimForm;
}

/** Writes a new line (pending) and its subscription, reserving its number and SIM; for an eSIM, its
 * order (`esim_orders`, id = the subscriber id) too, so the order exists once the line does.
 * Idempotent on the subscriber id: a retried activity finds the row it wrote and returns the same
 * registration. Five round trips in one transaction: the checks, the SIM, the number, the rows. */
export async function registerSubscriber(db: Knex, cmd: RegisterSubscriberCommand): Promise<Registration> {
  try {
    return await db.transaction(async (trx) => {
      // One look at everything the checks need; now() is the transaction's time, the line's created_at.
      const { rows: [seen] } = await trx.raw<{ rows: { now: Date; existing: SubscriberRow | null; existing_sim: { id: string; iccid: string; form: SimForm } | null; account: { status: string; currency: string } | null; plan: PlanRow | null }[] }>(
        `SELECT now() AS now,
                (SELECT row_to_json(s) FROM subscribers s WHERE s.id = :id) AS existing,
                (SELECT json_build_object('id', sims.id, 'iccid', sims.iccid, 'form', sims.form) FROM subscribers s JOIN sims ON sims.id = s.sim_id WHERE s.id = :id) AS existing_sim,
                (SELECT json_build_object('status', a.status, 'currency', a.currency) FROM billing_accounts a WHERE a.id = :account) AS account,
                (SELECT json_build_object('id', p.id, 'currency', p.currency, 'billing_period_unit', p.billing_period_unit, 'billing_period_count', p.billing_period_count)
                   FROM plans p WHERE p.code = :plan AND p.status = 'active') AS plan`,
        { id: cmd.subscriberId, account: cmd.billingAccountId, plan: cmd.planCode },
      );
      if (seen.existing) {
        const sim = seen.existing_sim;
        return { at: new Date(seen.existing.created_at), msisdn: seen.existing.msisdn, iccid: sim?.iccid, simId: sim?.id, simForm: sim?.form };
      }
      const { account, plan } = seen;
      if (!account || account.status !== 'active') {
        throw new DomainError('ACCOUNT_NOT_FOUND', 'no active billing account has this id', ['input', 'billingAccountId']);
      }
      if (!plan) throw new DomainError('PLAN_NOT_FOUND', 'no active plan has this code', ['input', 'planCode']);
      if (plan.currency.trim() !== account.currency.trim()) {
        throw new DomainError('CURRENCY_MISMATCH', `the plan is priced in ${plan.currency.trim()}, the account in ${account.currency.trim()}`, ['input', 'planCode']);
      }
      // No line with this id exists, so nothing is reserved for it yet (reservations commit with the line).
      let sim: Sim | undefined;
      if (cmd.iccid || cmd.simForm) sim = await reserveSim(trx, cmd.subscriberId, { iccid: cmd.iccid, form: cmd.simForm }, { fresh: true });
      const { msisdn } = await reserveMsisdn(trx, cmd.subscriberId, cmd.msisdn, { fresh: true });
      const start = seen.now;
      const end = addBillingPeriods(start, plan.billing_period_unit, plan.billing_period_count);
      // The line, its subscription, the first transition (and the eSIM order) in one statement; the
      // foreign keys are checked at its end, when the line exists.
      await trx.raw(
        `WITH line AS (
           INSERT INTO subscribers (id, billing_account_id, msisdn, sim_id, state, created_at, updated_at)
           VALUES (:id, :account, :msisdn, :simId, 'pending', :start, :start) RETURNING id
         ), subscription AS (
           INSERT INTO subscriptions (subscriber_id, plan_id, state, period_anchor, current_period_start, current_period_end, next_charge_on, started_at)
           SELECT id, CAST(:planId AS uuid), 'active', CAST(:start AS timestamptz), CAST(:start AS timestamptz), CAST(:end AS timestamptz), CAST(:nextChargeOn AS date), CAST(:start AS timestamptz) FROM line
         ), transition AS (
           INSERT INTO subscriber_transitions (id, subscriber_id, action, from_state, to_state, actor, occurred_at, details)
           SELECT CAST(:transitionId AS text), id, 'register', NULL, 'pending', 'workflow', CAST(:start AS timestamptz), CAST(:details AS jsonb) FROM line
         ), esim_order AS (
           INSERT INTO esim_orders (id, subscriber_id, sim_id, iccid, purpose, eid)
           SELECT id, id, CAST(:simId AS uuid), CAST(:iccid AS text), 'activation', CAST(:eid AS text) FROM line WHERE CAST(:esim AS boolean)
         )
         SELECT 1`,
        {
          id: cmd.subscriberId, account: cmd.billingAccountId, msisdn, simId: sim?.id ?? null, start, planId: plan.id, end, nextChargeOn: isoDate(end),
          transitionId: `subscriber:${cmd.subscriberId}:register`, details: JSON.stringify({ msisdn, iccid: sim?.iccid ?? null, planCode: cmd.planCode }),
          iccid: sim?.iccid ?? null, eid: cmd.eid ?? null, esim: sim?.form === 'esim',
        },
      );
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

interface PlanRow { id: string; currency: string; billing_period_unit: BillingPeriodUnit; billing_period_count: number }

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
    const [subscriber] = await trx('subscribers').where({ id: cmd.subscriberId, state: cmd.from }).update(changes).returning(['sim_id', 'msisdn', 'billing_account_id']);
    if (!subscriber) throw new DomainError('STATE_CONFLICT', `the line is not ${cmd.from} in the billing record`);
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
