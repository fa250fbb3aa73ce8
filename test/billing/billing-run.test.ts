/**
 * Billing runs across 13 monthly cycles for every plan type (prepaid with rollover, postpaid,
 * hybrid, family with a shared pool, promotional with a discount and a bonus, free trials that
 * convert or lapse). The Java time-skipping test server is not set up on this machine, so the test
 * drives `billing-run:<date>` on the real dev server once per cycle date (the workflow takes the date
 * as input) — the same code path the daily Schedule takes. Every run is started twice: the rerun
 * must charge nothing. The ledger must verify after every cycle.
 */
import crypto from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase } from '../support/services';
import { startBillingWorker } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { creditWallet } from '../../domain/ledger/wallet-operations';
import { openWallet } from '../../domain/ledger/ledger.repository';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';
import type { BillingRunInput, BillingRunTotals } from '../../domain/billing/billing-run.types';
import { createBillingActivities } from '../../activities/billing.activities';
import { createLogger } from '../../platform/logger';
import { FIRST_CURSOR } from '../../domain/billing/billing-run.types';
import { claimAndDebitBatch, runBillingBatch } from '../../domain/billing/billing-run.service';

jest.setTimeout(240_000);

const GB = 1_000_000_000n;
const ANCHOR = new Date('2026-01-15T00:00:00Z');

describe('billing run over 13 monthly cycles', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let w: Awaited<ReturnType<typeof startBillingWorker>>;
  let pool: Pool;
  let engine: ChargingEngine;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 4 });
    engine = createChargingEngine({ pool });
    w = await startBillingWorker(t.db, { chargingEngine: engine });
  });
  afterAll(async () => {
    await w?.stop();
    await engine?.close();
    await pool?.end();
    await t?.drop();
  });

  let n = 0;
  async function plan(code: string, paymentType: string, fee: number, allowances: { service: string; units: bigint; shared?: boolean; rollover?: boolean }[], category = 'standard') {
    const [p] = await t.db('plans').insert({
      code: `${code}-${n++}`, name: code, payment_type: paymentType, category, currency: 'EUR', recurring_fee_minor: fee,
      billing_period_unit: 'month', billing_period_count: 1, tariff: JSON.stringify(PREPAID_EXAMPLE_TARIFF),
    }).returning('id');
    for (const a of allowances) {
      await t.db('plan_allowances').insert({ plan_id: p.id, service: a.service, units: a.units.toString(), shared: a.shared ?? false, rollover: a.rollover ?? false });
    }
    return p.id as string;
  }
  async function offer(planId: string, kind: string, cycles: number, terms: object) {
    const [o] = await t.db('offers').insert({
      code: `offer-${n++}`, plan_id: planId, name: kind, kind, cycles, terms: JSON.stringify(terms),
      valid_from: new Date('2025-01-01'), valid_until: new Date('2030-01-01'),
    }).returning('id');
    return o.id as string;
  }
  async function line(planId: string, accountId: string, offerId?: string) {
    const id = crypto.randomUUID();
    const msisdn = `49170${String(n++).padStart(7, '0')}`;
    await t.db('subscribers').insert({ id, billing_account_id: accountId, msisdn, state: 'active', activated_at: ANCHOR });
    const end = new Date('2026-02-15T00:00:00Z');
    const [s] = await t.db('subscriptions').insert({
      subscriber_id: id, plan_id: planId, offer_id: offerId ?? null, state: 'active', period_anchor: ANCHOR, current_period_start: ANCHOR,
      current_period_end: end, next_charge_on: '2026-02-15', started_at: ANCHOR,
    }).returning('id');
    return { subscriberId: id, subscriptionId: s.id as string, accountId };
  }
  const topUp = (accountId: string, minor: bigint) =>
    creditWallet(engine, { billingAccountId: accountId, amountMicros: minor * 10_000n, idempotencyKey: `test-top-up:${crypto.randomUUID()}`, actor: 'test' });

  /** Starts `billingRunWorkflow` under this id (the date's own id, or a suffixed one per test). */
  const startRun = (workflowId: string, input: BillingRunInput) =>
    w.client.workflow.start('billingRunWorkflow', { workflowId, taskQueue: w.taskQueue, args: [input] });
  const totalsOf = async (handle: Awaited<ReturnType<typeof startRun>>) => (await handle.result()) as BillingRunTotals;
  const run = async (cycleDate: string) => totalsOf(await startRun(`billing-run:${cycleDate}`, { cycleDate, batchSize: 3, graceDays: 3 }));
  const charges = (subscriptionId: string) => t.db('recurring_charges').where({ subscription_id: subscriptionId }).orderBy('period_start');
  const walletMinor = async (accountId: string) => BigInt((await t.db('wallets').where({ billing_account_id: accountId }).first()).balance_micros) / 10_000n;

  it('charges each line once per period, with grace, suspension, reactivation, promotions and rollover', async () => {
    const prepaidPlan = await plan('prepaid', 'prepaid', 1000, [{ service: 'data', units: 2n * GB, rollover: true }]);
    const postpaidPlan = await plan('postpaid', 'postpaid', 2500, [{ service: 'voice', units: 3600n }]);
    const hybridPlan = await plan('hybrid', 'hybrid', 1500, [{ service: 'sms', units: 100n }]);
    const familyPlan = await plan('family', 'postpaid', 2000, [{ service: 'data', units: 10n * GB, shared: true }], 'family');
    const promoPlan = await plan('promo', 'prepaid', 2000, [{ service: 'data', units: GB }], 'promotional');
    const discount = await offer(promoPlan, 'discount_percent', 3, { percent: 50 });
    const bonus = await offer(promoPlan, 'bonus_allowance', 2, { service: 'data', units: '500000000' });
    const trialConverts = await offer(promoPlan, 'free_trial', 2, { convert: true });
    const trialLapses = await offer(promoPlan, 'free_trial', 1, { convert: false });

    const prepaid = await line(prepaidPlan, await seedAccount(t.db, { paymentType: 'prepaid' }));
    const postpaid = await line(postpaidPlan, await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 100_000n }));
    const hybrid = await line(hybridPlan, await seedAccount(t.db, { paymentType: 'hybrid', creditLimitMinor: 5_000n }));
    const parent = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 200_000n });
    const kidA = await line(familyPlan, await seedAccount(t.db, { paymentType: 'postpaid', parentAccountId: parent }));
    const kidB = await line(familyPlan, await seedAccount(t.db, { paymentType: 'postpaid', parentAccountId: parent }));
    const promoAccount = await seedAccount(t.db, { paymentType: 'prepaid' });
    const promoDiscount = await line(promoPlan, promoAccount, discount);
    const promoBonus = await line(promoPlan, promoAccount, bonus);
    const promoTrial = await line(promoPlan, promoAccount, trialConverts);
    const promoLapse = await line(promoPlan, promoAccount, trialLapses);

    await topUp(prepaid.accountId, 5_000n); // five renewals, then grace
    await topUp(hybrid.accountId, 100_000n);
    await topUp(promoAccount, 200_000n);

    for (let m = 1; m <= 13; m++) {
      const month = new Date(Date.UTC(2026, m, 15));
      const day = month.toISOString().slice(0, 10);
      const first = await run(day);
      expect(first.claimed).toBeGreaterThan(0);
      const again = await run(day);
      expect(again).toMatchObject({ claimed: 0, charged: 0, waived: 0, insufficient: 0 });
      const graceDay = new Date(month.getTime() + 3 * 86_400_000).toISOString().slice(0, 10);
      await run(graceDay);
      if (m === 9) {
        // The customer comes back: a top-up pays the arrears, oldest first, and the line is resumed.
        expect((await t.db('subscribers').where({ id: prepaid.subscriberId }).first()).state).toBe('suspended');
        await topUp(prepaid.accountId, 20_000n);
        const settled = await createBillingActivities({ db: t.db, logger: createLogger({ level: 'silent' }), chargingEngine: engine, lifecycle: w.lifecycle })
          .billingSettleAccount({ billingAccountId: prepaid.accountId, cycleDate: graceDay });
        expect(settled).toEqual({ collected: 4, resumed: 1 });
      }
      expect((await verifyBalances(t.db)).problems).toEqual([]);
    }

    // Postpaid, hybrid, family: 13 renewals, each charged once.
    for (const l of [postpaid, hybrid, kidA, kidB]) {
      const rows = await charges(l.subscriptionId);
      expect(rows).toHaveLength(13);
      expect(rows.every((r) => r.status === 'charged' && r.journal_entry_id)).toBe(true);
    }
    expect(await walletMinor(postpaid.accountId)).toBe(-13n * 2500n);
    expect(await walletMinor(parent)).toBe(-26n * 2000n);

    // Family: one shared pool per period on the parent account, not one per member.
    const pools = await t.db('buckets').where({ billing_account_id: parent }).whereNull('subscription_id');
    expect(pools).toHaveLength(13);
    // Every member's fee is on the parent's bill: one invoice per month, issued when its month ends.
    const invoices = await t.db('invoices').where({ billing_account_id: parent }).orderBy('period_start');
    expect(invoices.filter((i) => i.status === 'open')).toHaveLength(1);
    expect(invoices.filter((i) => i.status !== 'open').every((i) => /^INV-\d{8}$/.test(i.number))).toBe(true);
    expect(invoices.length).toBeGreaterThanOrEqual(12);
    const feeLines = await t.db('invoice_lines').whereIn('invoice_id', invoices.map((i) => i.id)).where({ kind: 'recurring_fee' });
    expect(feeLines).toHaveLength(26);

    // Prepaid: 5 paid, then insufficient → suspended after grace; the top-up in month 9 paid all arrears.
    const pre = await charges(prepaid.subscriptionId);
    expect(pre).toHaveLength(13);
    expect(pre.every((r) => r.status === 'charged')).toBe(true);
    const calls = w.lifecycle.calls.filter((c) => c.subscriberId === prepaid.subscriberId).map((c) => c.action);
    expect(calls[0]).toBe('suspend');
    expect(calls[calls.length - 1]).toBe('resume');
    expect((await t.db('subscribers').where({ id: prepaid.subscriberId }).first()).state).toBe('active');
    expect(await walletMinor(prepaid.accountId)).toBe(5_000n + 20_000n - 13n * 1000n);
    // Rollover: the renewed data bucket carries the unused allowance, capped at one period's.
    const dataBuckets = await t.db('buckets').where({ subscription_id: prepaid.subscriptionId, service: 'data' }).orderBy('valid_from');
    expect(BigInt(dataBuckets[1].initial_units)).toBe(4n * GB);

    // Promotions: 50 % for cycles ≤ 3 (renewals in Feb and Mar), then full price.
    const disc = await charges(promoDiscount.subscriptionId);
    expect(disc.map((r) => Number(r.amount_minor)).slice(0, 4)).toEqual([1000, 1000, 2000, 2000]);
    expect(await t.db('buckets').where({ subscription_id: promoBonus.subscriptionId }).where('source', 'like', 'offer:%')).toHaveLength(1);
    const trial = await charges(promoTrial.subscriptionId);
    expect(trial.map((r) => r.status).slice(0, 3)).toEqual(['waived', 'charged', 'charged']);
    const lapse = await charges(promoLapse.subscriptionId);
    expect(lapse.map((r) => r.status)).toEqual(['lapsed']);
    expect((await t.db('subscriptions').where({ id: promoLapse.subscriptionId }).first()).state).toBe('ended');

    // Every charged row has exactly one fee posting, named by the charge, in the entry the row names.
    const fees = await t.db.raw(`SELECT rc.id, rc.journal_entry_id::text AS entry, array_agg(p.journal_entry_id::text) AS postings
                                   FROM recurring_charges rc LEFT JOIN postings p ON p.source_ref = 'recurring-charge:' || rc.id
                                  WHERE rc.status = 'charged' GROUP BY rc.id, rc.journal_entry_id`);
    expect(fees.rows.length).toBeGreaterThan(0);
    for (const r of fees.rows) expect(r.postings).toEqual([r.entry]);
  });

  it('renews its lanes concurrently and carries every lane through continue-as-new', async () => {
    const planId = await plan('lanes', 'prepaid', 500, [{ service: 'sms', units: 50n }]);
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(account, 100_000n);
    const lines = [];
    for (let i = 0; i < 11; i++) lines.push(await line(planId, account));
    const cycleDate = '2026-02-15';
    // Lines of the other tests are due that day too: they are renewed alongside, once each.
    const due = Number((await t.db('subscriptions').where('next_charge_on', '<=', cycleDate).andWhere({ state: 'active' }).count('* as n').first())!.n);
    const handle = await startRun(`billing-run:${cycleDate}:lanes`, { cycleDate, batchSize: 2, graceDays: 3, lanes: 3, batchesPerRun: 2 });
    const totals = await totalsOf(handle);
    expect(totals.claimed).toBe(due);
    // Two batches a run over 3 lanes of ≥ 11 lines: it continued as new, several times.
    expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
    for (const l of lines) {
      const rows = await charges(l.subscriptionId);
      expect(rows.map((r) => r.status)).toEqual(['charged']);
    }
    expect(await walletMinor(account)).toBe(100_000n - 11n * 500n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('catches up a line several periods behind in one run, one charge per period', async () => {
    const planId = await plan('behind', 'prepaid', 700, [{ service: 'sms', units: 20n }]);
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(account, 100_000n);
    // Due since 15 February; the run of 15 May renews February, March, April and May.
    const lines = [];
    for (let i = 0; i < 3; i++) lines.push(await line(planId, account));
    const cycleDate = '2026-05-15';
    const start = (suffix: string) => startRun(`billing-run:${cycleDate}:${suffix}`, { cycleDate, batchSize: 2, graceDays: 3, lanes: 2 });
    await totalsOf(await start('behind'));
    for (const l of lines) {
      const rows = await charges(l.subscriptionId);
      expect(rows.map((r) => [r.status, new Date(r.period_start).toISOString().slice(0, 10)])).toEqual([
        ['charged', '2026-02-15'], ['charged', '2026-03-15'], ['charged', '2026-04-15'], ['charged', '2026-05-15'],
      ]);
      expect((await t.db.raw(`SELECT next_charge_on::text AS d FROM subscriptions WHERE id = ?`, [l.subscriptionId])).rows[0].d).toBe('2026-06-15');
    }
    const rerun = await totalsOf(await start('behind-again'));
    expect(rerun).toMatchObject({ claimed: 0, charged: 0 });
    expect(await walletMinor(account)).toBe(100_000n - 12n * 700n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('a subscription changed while a claim reads it is charged once, as it is after the change', async () => {
    const before = await plan('changing-from', 'prepaid', 800, [{ service: 'sms', units: 10n }]);
    const after = await plan('changing-to', 'prepaid', 1200, [{ service: 'sms', units: 40n }]);
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(account, 10_000n);
    const l = await line(before, account);
    const lane = { fromId: l.subscriptionId, toId: l.subscriptionId };
    // A plan change holds the subscription (uncommitted) while the claim reads the old plan, prices it
    // and comes to advance it; the change commits, so the claim must not charge the old plan.
    const change = await t.db.transaction();
    await change('subscriptions').where({ id: l.subscriptionId }).update({ plan_id: after });
    const batch = runBillingBatch({ db: t.db, engine }, { cycleDate: '2026-02-15', after: FIRST_CURSOR, limit: 10, graceDays: 3, lane });
    await new Promise((r) => setTimeout(r, 300));
    await change.commit();
    expect(await batch).toMatchObject({ claimed: 1, charged: 1 });
    expect((await charges(l.subscriptionId)).map((r) => [r.plan_id, Number(r.fee_minor), r.status])).toEqual([[after, 1200, 'charged']]);
    expect(await walletMinor(account)).toBe(10_000n - 1200n);
    expect((await t.db('buckets').where({ subscription_id: l.subscriptionId })).map((b) => Number(b.initial_units))).toEqual([40]);
  });

  it('finishes what a batch that died after its charges committed still owes: allowances and invoice lines, once', async () => {
    const planId = await plan('died-after-charges', 'prepaid', 900, [{ service: 'sms', units: 30n }]);
    const postpaidPlan = await plan('died-after-charges-postpaid', 'postpaid', 1500, [{ service: 'voice', units: 600n }]);
    const trial = await offer(planId, 'free_trial', 2, { convert: true });
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    const billed = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 100_000n });
    await topUp(account, 10_000n);
    const paying = [await line(planId, account), await line(planId, account)];
    const free = await line(planId, account, trial);
    const postpaid = await line(postpaidPlan, billed);
    const cycleDate = '2026-02-15';
    // A batch's first transaction commits (subscriptions advanced, fees debited, charge rows written
    // with their outcome, the fulfilment row), then the process dies before allowances and invoice lines.
    const batch = await claimAndDebitBatch({ db: t.db, engine }, { cycleDate, after: FIRST_CURSOR, limit: 100, graceDays: 3 });
    const mine = batch.claim.charges.filter((c) => [...paying, free, postpaid].some((l) => l.subscriptionId === c.subscriptionId));
    expect(mine).toHaveLength(4);
    expect(await t.db('billing_batch_fulfilments').where({ id: batch.fulfilmentId })).toHaveLength(1);
    for (const l of paying) {
      const [row] = await charges(l.subscriptionId);
      expect([row.status, row.allowances_granted]).toEqual(['charged', true]);
      // The entry the claim named on the row is the one the debit wrote the fee's posting in.
      const posting = await t.db('postings').where({ source_ref: `recurring-charge:${row.id}` }).first();
      expect([String(posting.journal_entry_id), Number(posting.amount)]).toEqual([String(row.journal_entry_id), -900 * 10_000]);
    }
    expect(await walletMinor(account)).toBe(10_000n - 2n * 900n);
    expect(await t.db('buckets').whereIn('subscription_id', [...paying, free, postpaid].map((l) => l.subscriptionId))).toHaveLength(0);
    const [postpaidCharge] = await charges(postpaid.subscriptionId);
    expect(postpaidCharge.status).toBe('charged');
    expect(await t.db('invoice_lines').where({ source_ref: `recurring-charge:${postpaidCharge.id}` })).toHaveLength(0);

    // Its subscriptions are no longer due; the run's first batch of the lane finishes the batch.
    await totalsOf(await startRun(`billing-run:${cycleDate}:died-after-charges`, { cycleDate, batchSize: 2, graceDays: 3 }));
    expect(await t.db('billing_batch_fulfilments').where({ id: batch.fulfilmentId })).toHaveLength(0);
    for (const l of [...paying, free]) expect(await t.db('buckets').where({ subscription_id: l.subscriptionId, service: 'sms' })).toHaveLength(1);
    expect(await t.db('buckets').where({ subscription_id: postpaid.subscriptionId, service: 'voice' })).toHaveLength(1);
    expect((await t.db('invoice_lines').where({ source_ref: `recurring-charge:${postpaidCharge.id}` })).map((r) => Number(r.amount_minor))).toEqual([1500]);
    expect(await walletMinor(account)).toBe(10_000n - 2n * 900n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('a fee that does not fit is written insufficient by its batch: grace date, no entry, no allowances owed', async () => {
    const planId = await plan('batch-insufficient', 'prepaid', 800, [{ service: 'sms', units: 10n }]);
    const rich = await seedAccount(t.db, { paymentType: 'prepaid' });
    const poor = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(rich, 5_000n);
    await topUp(poor, 500n);
    const paid = await line(planId, rich);
    const unpaid = await line(planId, poor);
    const [fromId, toId] = [paid.subscriptionId, unpaid.subscriptionId].sort();
    const r = await runBillingBatch({ db: t.db, engine }, { cycleDate: '2026-02-15', after: FIRST_CURSOR, limit: 100, graceDays: 3, lane: { fromId, toId } });
    expect(r.insufficientSubscriberIds).toContain(unpaid.subscriberId);
    const [unpaidRow] = await charges(unpaid.subscriptionId);
    const grace = (await t.db.raw(`SELECT to_char(grace_until, 'YYYY-MM-DD') AS d FROM recurring_charges WHERE id = ?`, [unpaidRow.id])).rows[0].d;
    expect([unpaidRow.status, unpaidRow.journal_entry_id, unpaidRow.allowances_granted, unpaidRow.attempts, grace]).toEqual(['insufficient', null, false, 1, '2026-02-18']);
    expect(await t.db('buckets').where({ subscription_id: unpaid.subscriptionId })).toHaveLength(0);
    expect(await walletMinor(poor)).toBe(500n);
    const [paidRow] = await charges(paid.subscriptionId);
    expect([paidRow.status, paidRow.allowances_granted, paidRow.attempts]).toEqual(['charged', true, 1]);
    expect(await t.db('buckets').where({ subscription_id: paid.subscriptionId })).toHaveLength(1);
    expect(await t.db('billing_batch_fulfilments')).toEqual([]);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('a fee posted under another entry than the claim named (a wallet in another currency) is corrected on its row', async () => {
    const planId = await plan('other-currency-wallet', 'prepaid', 600, [{ service: 'sms', units: 10n }]);
    // A USD account and wallet on a EUR plan: the debit books the fee in the wallet's currency, under
    // an entry of its own, not the EUR entry the claim named on the row.
    const [customer] = await t.db('customers').insert({ kind: 'individual', name: 'USD customer' }).returning('id');
    const [usd] = await t.db('billing_accounts').insert({ customer_id: customer.id, payment_type: 'prepaid', currency: 'USD', credit_limit_minor: '0' }).returning('id');
    await openWallet(t.db, { billingAccountId: usd.id, currency: 'USD', creditLimitMinor: 0n });
    await topUp(usd.id, 5_000n);
    const l = await line(planId, usd.id);
    const lane = { fromId: l.subscriptionId, toId: l.subscriptionId };
    const r = await runBillingBatch({ db: t.db, engine }, { cycleDate: '2026-02-15', after: FIRST_CURSOR, limit: 10, graceDays: 3, lane });
    expect(r).toMatchObject({ claimed: 1, charged: 1 });
    const [row] = await charges(l.subscriptionId);
    const posting = await t.db('postings').where({ source_ref: `recurring-charge:${row.id}` }).first();
    expect([row.status, String(row.journal_entry_id), posting.unit]).toEqual(['charged', String(posting.journal_entry_id), 'USD']);
    expect(await t.db('buckets').where({ subscription_id: l.subscriptionId })).toHaveLength(1);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('a batch that fails before its commit leaves nothing: no subscription advanced, no debit, no charge row', async () => {
    const planId = await plan('fails-before-commit', 'prepaid', 700, [{ service: 'sms', units: 10n }]);
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(account, 10_000n);
    const l = await line(planId, account);
    const lane = { fromId: l.subscriptionId, toId: l.subscriptionId };
    // A charge row for the period, written behind the claim's back, makes the batch's insert fail on the
    // (subscription, period) index after the claim advanced the subscription and the debit moved the wallet.
    const claimPeriod = await t.db('subscriptions').where({ id: l.subscriptionId }).first();
    await t.db.raw(`CREATE FUNCTION test_charge_behind_claim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO recurring_charges (subscription_id, subscriber_id, billing_account_id, payer_account_id, plan_id, payment_type, cycle, cycle_date,
                                       period_start, period_end, currency, fee_minor, status)
        SELECT s.id, s.subscriber_id, '${account}', '${account}', s.plan_id, 'prepaid', 99, '2026-02-15', s.current_period_start, s.current_period_end, 'EUR', 1, 'waived'
          FROM subscriptions s WHERE s.id = '${l.subscriptionId}';
        RETURN NULL;
      END $$`);
    await t.db.raw(`CREATE TRIGGER test_charge_behind_claim AFTER INSERT ON postings FOR EACH STATEMENT EXECUTE FUNCTION test_charge_behind_claim()`);
    try {
      await expect(runBillingBatch({ db: t.db, engine }, { cycleDate: '2026-02-15', after: FIRST_CURSOR, limit: 10, graceDays: 3, lane }))
        .rejects.toMatchObject({ code: '23505' });
    } finally {
      await t.db.raw('DROP TRIGGER test_charge_behind_claim ON postings');
      await t.db.raw('DROP FUNCTION test_charge_behind_claim()');
    }
    const after = await t.db('subscriptions').where({ id: l.subscriptionId }).first();
    expect([after.current_period_end, after.next_charge_on]).toEqual([claimPeriod.current_period_end, claimPeriod.next_charge_on]);
    expect(await charges(l.subscriptionId)).toEqual([]);
    expect(await walletMinor(account)).toBe(10_000n);
    // Retried, it charges the period once.
    expect(await runBillingBatch({ db: t.db, engine }, { cycleDate: '2026-02-15', after: FIRST_CURSOR, limit: 10, graceDays: 3, lane })).toMatchObject({ claimed: 1, charged: 1 });
    expect((await charges(l.subscriptionId)).map((r) => [Number(r.fee_minor), r.status])).toEqual([[700, 'charged']]);
    expect(await walletMinor(account)).toBe(10_000n - 700n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  it('finishes charges an earlier version left pending (claimed in their own transaction, then debited), charging none twice', async () => {
    const planId = await plan('stranded', 'prepaid', 900, [{ service: 'sms', units: 30n }]);
    const trial = await offer(planId, 'free_trial', 2, { convert: true });
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await topUp(account, 10_000n);
    const paying = [await line(planId, account), await line(planId, account)];
    const free = await line(planId, account, trial);
    const cycleDate = '2026-02-15';
    const lines = [...paying, free].map((l) => l.subscriptionId);
    // The state that version left when it died after its debits: pending rows whose fees are posted,
    // waived ones without their allowances, and no fulfilment row.
    const batch = await claimAndDebitBatch({ db: t.db, engine }, { cycleDate, after: FIRST_CURSOR, limit: 100, graceDays: 3 });
    await t.db('billing_batch_fulfilments').where({ id: batch.fulfilmentId }).delete();
    const debited = await Promise.all(paying.map(async (l) => (await charges(l.subscriptionId))[0].id));
    await t.db('recurring_charges').whereIn('subscription_id', lines).andWhere('status', 'charged')
      .update({ status: 'pending', allowances_granted: false, journal_entry_id: null, attempts: 0 });
    await t.db('recurring_charges').whereIn('subscription_id', lines).andWhere('status', 'waived').update({ allowances_granted: false });
    expect(await walletMinor(account)).toBe(10_000n - 2n * 900n);

    const totals = await totalsOf(await startRun(`billing-run:${cycleDate}:stranded`, { cycleDate, batchSize: 2, graceDays: 3 }));
    expect(totals.charged).toBeGreaterThanOrEqual(2);
    for (const l of paying) expect((await charges(l.subscriptionId)).map((r) => [r.status, r.allowances_granted, Boolean(r.journal_entry_id)])).toEqual([['charged', true, true]]);
    for (const id of debited) expect(await t.db('postings').where({ source_ref: `recurring-charge:${id}` })).toHaveLength(1);
    expect((await charges(free.subscriptionId)).map((r) => [r.status, r.allowances_granted])).toEqual([['waived', true]]);
    for (const l of [...paying, free]) expect(await t.db('buckets').where({ subscription_id: l.subscriptionId, service: 'sms' })).toHaveLength(1);
    expect(await walletMinor(account)).toBe(10_000n - 2n * 900n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });
});
