import { Pool } from 'pg';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { fundWallet } from '../../domain/charging/testing/fixtures';
import { subscriberSnapshotQuery, subscriberWorkflowId } from '../../workflows/subscriber.messages';
import { seedAccount, seedNumbers, seedPhysicalSims, seedPlanWithFee, startLifecycleStack } from './harness';

const LINE = `subscriber { id msisdn state suspendReason planCode iccid billingAccount { id } lifecycle { action from to reason } } userErrors { field message code }`;
const ACTIVATE = `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} esimOrder { id status activationCode } } }`;
const SUSPEND = `mutation($input: SubscriberSuspendInput!) { subscriberSuspend(input: $input) { ${LINE} } }`;
const RESUME = `mutation($input: SubscriberResumeInput!) { subscriberResume(input: $input) { ${LINE} } }`;
const TERMINATE = `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { ${LINE} } }`;
const TRANSFER = `mutation($input: SubscriberTransferInput!) { subscriberTransfer(input: $input) { ${LINE} } }`;
const CHANGE_PLAN = `mutation($input: SubscriberChangePlanInput!) { subscriberChangePlan(input: $input) { ${LINE} } }`;
const SIM_SWAP = `mutation($input: SimSwapInput!) { simSwap(input: $input) { ${LINE} esimOrder { id status activationCode } } }`;

describe('subscriber lifecycle through GraphQL and Temporal (physical SIM)', () => {
  let s: Awaited<ReturnType<typeof startLifecycleStack>>;
  let pool: Pool;
  let engine: ChargingEngine;
  beforeAll(async () => {
    s = await startLifecycleStack();
    pool = new Pool({ connectionString: s.t.url, max: 2 });
    engine = createChargingEngine({ pool });
  });
  afterAll(async () => {
    await engine.close();
    await pool.end();
    await s.stop();
  });

  test('activate → suspend (charging refuses) → resume → change plan (prorated) → transfer → swap → terminate (final bill)', async () => {
    const account = await seedAccount(s.db);
    const other = await seedAccount(s.db);
    const basic = await seedPlanWithFee(s.db, 1000);
    const premium = await seedPlanWithFee(s.db, 3000);
    const [number] = await seedNumbers(s.db, 1);
    const [iccid, iccid2] = await seedPhysicalSims(s.db, 2);
    await fundWallet(s.db, account, 100_000_000n); // 100 EUR

    const act = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: basic, simType: 'physical', iccid, msisdn: number, idempotencyKey: 'lifecycle-physical-1' } });
    expect(act.body.data.subscriberActivate.userErrors).toEqual([]);
    const line = act.body.data.subscriberActivate.subscriber;
    expect(line).toMatchObject({ msisdn: number, state: 'active', iccid, planCode: basic });
    // Same key: same line, no second one.
    const again = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: basic, simType: 'physical', iccid, msisdn: number, idempotencyKey: 'lifecycle-physical-1' } });
    expect(again.body.data.subscriberActivate.subscriber.id).toBe(line.id);
    expect(await s.db('msisdns').where({ msisdn: number }).first()).toMatchObject({ state: 'assigned', reserved_for: line.id });

    // storefront may not suspend; support may.
    expect((await s.api.gql('storefront', SUSPEND, { input: { subscriberId: line.id, reason: 'fraud' } })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const sus = await s.api.gql('support', SUSPEND, { input: { subscriberId: line.id, reason: 'lost_sim' } });
    expect(sus.body.data.subscriberSuspend.subscriber).toMatchObject({ state: 'suspended', suspendReason: 'lost_sim' });
    expect(await s.db('sims').where({ iccid }).first()).toMatchObject({ state: 'suspended' });

    // A suspended line is refused service by the charging engine (it reads the line's state).
    const imsi = (await s.db('sims').where({ iccid }).first()).imsi;
    const denied = await engine.charge({
      kind: 'create', ref: `lc-${line.id}`, sequenceNumber: 0, invocationTime: new Date(), raw: {}, context: { zone: 'home' },
      units: [{ ratingGroup: 10, requested: 1_000_000n, used: [] }], subscriber: { kind: 'imsi', value: imsi }, subscriberIdentifier: `imsi-${imsi}`, nfConsumer: 'smf-test',
    });
    expect(denied).toMatchObject({ kind: 'problem', problem: { status: 403 } });

    // A second suspend is a refusal in userErrors, not a fault.
    const twice = await s.api.gql('support', SUSPEND, { input: { subscriberId: line.id, reason: 'fraud' } });
    expect(twice.body.data.subscriberSuspend.userErrors[0]).toMatchObject({ code: 'INVALID_STATE' });

    const res = await s.api.gql('support', RESUME, { input: { subscriberId: line.id } });
    expect(res.body.data.subscriberResume.subscriber).toMatchObject({ state: 'active', suspendReason: null });

    // Change plan now: the unused part of 10.00 back, the rest of 30.00 charged — one journal entry.
    const before = BigInt((await s.db('wallets').where({ billing_account_id: account }).first()).balance_micros);
    const cp = await s.api.gql('integrator', CHANGE_PLAN, { input: { subscriberId: line.id, planCode: premium, when: 'now' } });
    expect(cp.body.data.subscriberChangePlan.userErrors).toEqual([]);
    expect(cp.body.data.subscriberChangePlan.subscriber.planCode).toBe(premium);
    const after = BigInt((await s.db('wallets').where({ billing_account_id: account }).first()).balance_micros);
    const charged = before - after;
    // Just activated: almost the whole period remains, so close to 20.00 EUR net.
    expect(charged).toBeGreaterThan(19_900_000n);
    expect(charged).toBeLessThanOrEqual(20_000_000n);
    const entry = await s.db('journal_entries').where('idempotency_key', 'like', 'plan-change:%').first();
    expect(entry).toBeTruthy();
    expect(await s.db('subscriptions').where({ subscriber_id: line.id }).orderBy('started_at').pluck('state')).toEqual(['ended', 'active']);
    // Same plan: refused by the validator.
    const same = await s.api.gql('integrator', CHANGE_PLAN, { input: { subscriberId: line.id, planCode: premium, when: 'now' } });
    expect(same.body.data.subscriberChangePlan.userErrors[0]).toMatchObject({ code: 'SAME_PLAN', field: ['input', 'planCode'] });

    // End of cycle: a scheduled subscription.
    const eoc = await s.api.gql('integrator', CHANGE_PLAN, { input: { subscriberId: line.id, planCode: basic, when: 'end_of_cycle' } });
    expect(eoc.body.data.subscriberChangePlan.userErrors).toEqual([]);
    expect(await s.db('subscriptions').where({ subscriber_id: line.id, state: 'scheduled' }).first()).toBeTruthy();

    // Transfer: the line moves, the balance stays.
    const balanceBefore = (await s.db('wallets').where({ billing_account_id: account }).first()).balance_micros;
    const tr = await s.api.gql('integrator', TRANSFER, { input: { subscriberId: line.id, billingAccountId: other } });
    expect(tr.body.data.subscriberTransfer.userErrors).toEqual([]);
    expect(tr.body.data.subscriberTransfer.subscriber.billingAccount.id).toBe(other);
    expect((await s.db('wallets').where({ billing_account_id: account }).first()).balance_micros).toBe(balanceBefore);

    // Physical SIM swap: the old SIM is retired.
    const sw = await s.api.gql('integrator', SIM_SWAP, { input: { subscriberId: line.id, simType: 'physical', iccid: iccid2 } });
    expect(sw.body.data.simSwap.userErrors).toEqual([]);
    expect(sw.body.data.simSwap.subscriber.iccid).toBe(iccid2);
    expect(await s.db('sims').whereIn('iccid', [iccid, iccid2]).orderBy('iccid').select('iccid', 'state')).toEqual(
      [{ iccid, state: 'retired' }, { iccid: iccid2, state: 'active' }].sort((a, b) => a.iccid.localeCompare(b.iccid)),
    );

    // Terminate: SIM retired, number quarantined, final bill requested; the workflow ends.
    const term = await s.api.gql('integrator', TERMINATE, { input: { subscriberId: line.id } });
    expect(term.body.data.subscriberTerminate.subscriber.state).toBe('terminated');
    expect(await s.db('msisdns').where({ msisdn: number }).first()).toMatchObject({ state: 'quarantined', reserved_for: null });
    expect(await s.db('sims').where({ iccid: iccid2 }).first()).toMatchObject({ state: 'retired' });
    expect(await s.db('final_bill_requests').where({ subscriber_id: line.id })).toHaveLength(1);
    expect(await s.db('subscriptions').where({ subscriber_id: line.id }).whereNot({ state: 'ended' })).toHaveLength(0);

    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(line.id)).query(subscriberSnapshotQuery);
    expect(snap.history.map((h) => h.action)).toEqual(['register', 'activate', 'suspend', 'resume', 'change_plan', 'schedule_plan_change', 'transfer', 'sim_swap', 'terminate']);
    expect(snap.finalBillRequested).toBe(true);
    const transitions = await s.db('subscriber_transitions').where({ subscriber_id: line.id }).orderBy('occurred_at').pluck('action');
    expect(transitions).toEqual(['register', 'activate', 'suspend', 'resume', 'change_plan', 'schedule_plan_change', 'transfer', 'sim_swap', 'terminate']);
    // After termination the line takes no more changes.
    const late = await s.api.gql('support', RESUME, { input: { subscriberId: line.id } });
    expect(late.body.data.subscriberResume.userErrors[0].code).toBe('INVALID_STATE');
  });

  /** A funded, activated physical-SIM line, suspended (lost SIM). */
  async function suspendedLine(idempotencyKey: string): Promise<{ id: string }> {
    const account = await seedAccount(s.db);
    const plan = await seedPlanWithFee(s.db, 1000);
    const [number] = await seedNumbers(s.db, 1);
    const [iccid] = await seedPhysicalSims(s.db, 1);
    await fundWallet(s.db, account, 100_000_000n);
    const act = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'physical', iccid, msisdn: number, idempotencyKey } });
    const line = act.body.data.subscriberActivate.subscriber;
    expect((await s.api.gql('support', SUSPEND, { input: { subscriberId: line.id, reason: 'lost_sim' } })).body.data.subscriberSuspend.userErrors).toEqual([]);
    return line;
  }

  test('updates sent at once run one at a time: each transition starts where the one before it ended', async () => {
    const line = await suspendedLine('lifecycle-queue-1');
    const other = await seedAccount(s.db);

    // Three changes at once, each valid from "suspended": run together, all three would start from it.
    await Promise.all([
      s.api.gql('integrator', TRANSFER, { input: { subscriberId: line.id, billingAccountId: other } }),
      s.api.gql('support', RESUME, { input: { subscriberId: line.id } }),
      s.api.gql('integrator', TERMINATE, { input: { subscriberId: line.id } }),
    ]);
    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(line.id)).query(subscriberSnapshotQuery);
    const steps = snap.history.filter((h) => h.from !== null);
    for (let i = 1; i < steps.length; i++) expect([steps[i].action, steps[i].from]).toEqual([steps[i].action, steps[i - 1].to]);
    expect(steps.map((h) => h.action)).toContain('terminate');
    expect((await s.db('subscribers').where({ id: line.id }).first()).state).toBe(snap.state);
  });

  test('a resume queued behind a terminate is refused with INVALID_STATE once the line is terminated', async () => {
    const line = await suspendedLine('lifecycle-queue-2');
    // The terminate's billing-record step waits on the line's row, held here; meanwhile the resume is
    // validated on "suspended" and queues behind it. Once it runs, the line is terminated: it must be
    // refused (before the re-check, nextState's plain error failed the workflow task instead).
    const hold = await s.db.transaction();
    await hold.raw('SELECT 1 FROM subscribers WHERE id = ? FOR UPDATE', [line.id]);
    const terminate = s.api.gql('integrator', TERMINATE, { input: { subscriberId: line.id } });
    await new Promise((r) => setTimeout(r, 400));
    const resume = s.api.gql('support', RESUME, { input: { subscriberId: line.id } });
    await new Promise((r) => setTimeout(r, 400));
    await hold.rollback();
    expect((await terminate).body.data.subscriberTerminate.userErrors).toEqual([]);
    const refused = (await resume).body.data.subscriberResume.userErrors;
    expect(refused.map((e: { code: string }) => e.code)).toEqual(['INVALID_STATE']);
    expect(refused[0].message).toContain('terminated');
    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(line.id)).query(subscriberSnapshotQuery);
    expect(snap.history.filter((h) => h.from !== null).map((h) => h.action)).toEqual(['activate', 'suspend', 'terminate']);
  }, 30_000);

  test('a plan change the wallet cannot pay is refused and changes nothing', async () => {
    const account = await seedAccount(s.db);
    const cheap = await seedPlanWithFee(s.db, 100);
    const dear = await seedPlanWithFee(s.db, 100_000);
    await seedNumbers(s.db, 1);
    await seedPhysicalSims(s.db, 1);
    const act = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: cheap, simType: 'physical', idempotencyKey: `poor-${account}` } });
    const line = act.body.data.subscriberActivate.subscriber;
    expect(line.state).toBe('active');
    const cp = await s.api.gql('integrator', CHANGE_PLAN, { input: { subscriberId: line.id, planCode: dear, when: 'now' } });
    expect(cp.body.data.subscriberChangePlan.userErrors[0].code).toBe('INSUFFICIENT_FUNDS');
    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(line.id)).query(subscriberSnapshotQuery);
    expect(snap.planCode).toBe(cheap);
    expect(await s.db('subscriptions').where({ subscriber_id: line.id, state: 'active' }).count('* as c')).toEqual([{ c: '1' }]);
  });

  test('continue-as-new carries the plain-JSON snapshot: a new run goes on where the old one stopped', async () => {
    const account = await seedAccount(s.db);
    const plan = await seedPlanWithFee(s.db, 0);
    await seedNumbers(s.db, 1);
    await seedPhysicalSims(s.db, 1);
    const act = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'physical', idempotencyKey: `can-${account}` } });
    const line = act.body.data.subscriberActivate.subscriber;
    const handle = s.temporal.client.workflow.getHandle(subscriberWorkflowId(line.id));
    const snap = await handle.query(subscriberSnapshotQuery);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
    // What continueAsNew does: a new run of the same id with (input, snapshot).
    await handle.terminate('test: simulate continue-as-new');
    const input = { subscriberId: line.id, billingAccountId: account, planCode: plan, simForm: 'physical' as const, actor: 'test' };
    await s.temporal.client.workflow.start('subscriberWorkflow', { workflowId: subscriberWorkflowId(line.id), taskQueue: s.temporal.taskQueue, args: [input, snap] });
    const sus = await s.api.gql('support', SUSPEND, { input: { subscriberId: line.id, reason: 'customer_request' } });
    expect(sus.body.data.subscriberSuspend.subscriber.state).toBe('suspended');
    const after = await handle.query(subscriberSnapshotQuery);
    expect(after.history.map((h) => h.action)).toEqual(['register', 'activate', 'suspend']);
    expect(after.seq).toBe((snap.seq ?? 0) + 1);
    expect(await s.db('subscriber_transitions').where({ subscriber_id: line.id }).count('* as c')).toEqual([{ c: '3' }]);
  });
});
