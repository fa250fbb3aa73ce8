import crypto from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine, type ChargingEngine } from '../charging/charging-engine';
import type { CreateOp, ReleaseOp } from '../charging/charging.types';
import { fundWallet, seedAccount, seedBucket, seedLine, seedPlan, type Line } from '../charging/testing/fixtures';
import { DomainError } from '../shared/domain-error';
import { verifyBalances } from './ledger-verify';
import { debitRecurringCharges, type RecurringDebit, type RecurringDebitResult } from './recurring-debits.repository';
import { debitWallet } from './wallet-operations';

const EUR = 1_000_000n; // micros
const MB = 1_000_000n;

describe('set-based recurring debits (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let engine: ChargingEngine;
  let planId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 6 });
    engine = createChargingEngine({ pool, maxBatch: 16, concurrency: 3 });
    planId = await seedPlan(t.db);
  });
  afterAll(async () => {
    await engine?.close();
    await pool?.end();
    await t?.drop();
  });
  afterEach(async () => {
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  const options = () => ({ actor: 'billing-run', sourceRef: 'billing-run', lowWalletThresholdMicros: engine.policy.lowWalletThresholdMicros });
  const debit = (accountId: string, micros: bigint): RecurringDebit => ({ key: `recurring-charge:test-${crypto.randomUUID()}`, billingAccountId: accountId, amountMicros: micros });
  const walletOf = async (accountId: string) => {
    const w = await t.db('wallets').where({ billing_account_id: accountId }).first();
    return { id: String(w.ledger_account_id), balance: BigInt(w.balance_micros), reserved: BigInt(w.reserved_micros), creditLimit: BigInt(w.credit_limit_micros) };
  };
  const entryCount = async () => Number((await t.db('journal_entries').count('* as n').first())!.n);
  /** Wallet postings of fees (named by their key). */
  const feePostings = async () => Number((await t.db('postings').whereNotNull('source_ref').count('* as n').first())!.n);
  const postingsOf = (entryId: string) => t.db('postings').join('ledger_accounts', 'ledger_accounts.id', 'postings.ledger_account_id')
    .where({ journal_entry_id: entryId }).orderBy('postings.id').select('code', 'postings.unit', 'amount', 'postings.source_ref');
  const statuses = (rs: RecurringDebitResult[]) => rs.map((r) => r.status);

  test('pays oldest first per wallet while the running sum fits; later charges on that wallet stay insufficient', async () => {
    const prepaid = await seedAccount(t.db, { paymentType: 'prepaid' });
    await fundWallet(t.db, prepaid, 30n * EUR);
    const postpaid = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 5_000n }); // 50.00
    // Money held by an open data session counts against what a fee may take.
    const line = await seedLine(t.db, { planId });
    await fundWallet(t.db, line.accountId, 1n * EUR);
    const held = await engine.charge(dataSession(line, 100n * MB)); // 0.5 cent/MB: 0.50 held
    expect(held).toMatchObject({ kind: 'response', httpStatus: 201 });
    expect((await walletOf(line.accountId)).reserved).toBe(EUR / 2n);
    const [customer] = await t.db('customers').insert({ kind: 'individual', name: 'No wallet' }).returning('id');
    const [noWallet] = await t.db('billing_accounts').insert({ customer_id: customer.id, payment_type: 'prepaid', currency: 'EUR', credit_limit_minor: 0 }).returning('id');

    const batch = [
      debit(prepaid, 10n * EUR), debit(postpaid, 30n * EUR), debit(prepaid, 15n * EUR), debit(line.accountId, EUR / 2n + 1n),
      debit(prepaid, 10n * EUR), debit(postpaid, 30n * EUR), debit(prepaid, 1n * EUR), debit(noWallet.id, 1n * EUR), debit(line.accountId, EUR / 2n),
    ];
    const before = await entryCount();
    const first = await debitRecurringCharges(t.db, batch, options());
    expect(statuses(first)).toEqual(['charged', 'charged', 'charged', 'insufficient', 'insufficient', 'insufficient', 'insufficient', 'insufficient', 'insufficient']);
    expect(first[7]).toMatchObject({ status: 'insufficient', reason: 'no_wallet' });
    expect(await entryCount()).toBe(before + 1); // one entry for the batch's EUR fees
    expect((await walletOf(prepaid)).balance).toBe(5n * EUR);
    expect((await walletOf(postpaid)).balance).toBe(-30n * EUR);
    expect((await walletOf(line.accountId)).balance).toBe(1n * EUR);

    // One entry for the batch: a wallet posting per fee, named by its key, in the order decided (so
    // each wallet's balance after each fee follows from its postings), and the revenue of them all.
    const je = first[2] as Extract<RecurringDebitResult, { status: 'charged' }>;
    expect(first.slice(0, 3).map((r) => (r as typeof je).journalEntryId)).toEqual([je.journalEntryId, je.journalEntryId, je.journalEntryId]);
    const entry = await t.db('journal_entries').where({ id: je.journalEntryId }).first();
    expect(entry).toMatchObject({ entry_type: 'recurring_charge', idempotency_key: null, source_ref: 'billing-run', actor: 'billing-run', reason: null });
    expect(entry.details).toEqual({ kind: 'recurring_charges', currency: 'EUR', charges: 3, amountMicros: (-55n * EUR).toString() });
    expect(await postingsOf(je.journalEntryId)).toEqual([
      { code: `wallet:${prepaid}`, unit: 'EUR', amount: (-10n * EUR).toString(), source_ref: batch[0].key },
      { code: `wallet:${postpaid}`, unit: 'EUR', amount: (-30n * EUR).toString(), source_ref: batch[1].key },
      { code: `wallet:${prepaid}`, unit: 'EUR', amount: (-15n * EUR).toString(), source_ref: batch[2].key },
      { code: 'revenue:EUR', unit: 'EUR', amount: (55n * EUR).toString(), source_ref: null },
    ]);

    // A rerun charges nothing again and answers with the first entries.
    const beforeRerun = await entryCount();
    const again = await debitRecurringCharges(t.db, batch, options());
    expect(await entryCount()).toBe(beforeRerun);
    expect(again.map((r) => (r.status === 'charged' ? r.journalEntryId : r.status))).toEqual(first.map((r) => (r.status === 'charged' ? r.journalEntryId : r.status)));
    expect(again.filter((r) => r.status === 'charged').every((r) => r.status === 'charged' && r.replayed)).toBe(true);
    expect((await walletOf(prepaid)).balance).toBe(5n * EUR);
  });

  test('a wallet that changes under the lock-free attempt sends the batch the locked way, decided on the fresh balance', async () => {
    const account = await seedAccount(t.db, { paymentType: 'prepaid' });
    await fundWallet(t.db, account, 10n * EUR);
    const wallet = await walletOf(account);
    const before = await entryCount();
    // A top-up holds the wallet's row lock (uncommitted) while the debit reads 10.00 and decides on it.
    const topUp = await t.db.transaction();
    await fundWallet(topUp, account, 5n * EUR);
    const retries: string[] = [];
    const pending = debitRecurringCharges(t.db, [{ ...debit(account, 8n * EUR), currency: 'EUR' }], { ...options(), onLockedRetry: (why) => retries.push(why) });
    await new Promise((r) => setTimeout(r, 300));
    await topUp.commit();
    const [result] = await pending;
    expect(result).toMatchObject({ status: 'charged', replayed: false });
    expect(retries).toEqual(['wallet_changed']); // 10.00 → 15.00 crosses the low mark: not a change without effect
    // The first attempt (on 10.00) was rolled back; the entry is the locked path's, on 15.00.
    const postings = await postingsOf((result as { journalEntryId: string }).journalEntryId);
    expect(postings.map((p) => p.amount)).toEqual([String(-8n * EUR), String(8n * EUR)]);
    expect((await t.db('postings').where({ ledger_account_id: wallet.id }).sum('amount as s').first())!.s).toBe(String(7n * EUR));
    expect((await walletOf(account)).balance).toBe(7n * EUR);
    expect(await entryCount()).toBe(before + 2); // the top-up and one debit
  });

  test('a wallet changed meanwhile to no effect on the decision (all paid, below the low mark) stays on the lock-free path; one that would decide otherwise does not', async () => {
    // A family's shared postpaid wallet: balance 0.00, below the 2.00 mark; another lane's fee on it
    // (here a 1.00 credit, uncommitted) holds its row while this batch reads and decides.
    const family = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 5_000n }); // 50.00
    const other = await t.db.transaction();
    await fundWallet(other, family, 1n * EUR);
    const retries: string[] = [];
    const pending = debitRecurringCharges(t.db, [debit(family, 8n * EUR), debit(family, 2n * EUR)].map((d) => ({ ...d, currency: 'EUR' })),
      { ...options(), onLockedRetry: (why) => retries.push(why) });
    await new Promise((r) => setTimeout(r, 300));
    await other.commit();
    expect(statuses(await pending)).toEqual(['charged', 'charged']);
    expect(retries).toEqual([]);
    expect((await walletOf(family)).balance).toBe(1n * EUR - 10n * EUR);

    // Read: 0.00 with a 10.00 limit pays the 8.00 fee, not the next one; meanwhile the limit is raised to
    // 20.00, on which both fit. The lock-free decision would differ, so the batch goes the locked way.
    const tight = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 1_000n });
    const raise = await t.db.transaction();
    await raise('wallets').where({ billing_account_id: tight }).update({ credit_limit_micros: String(20n * EUR) });
    const again: string[] = [];
    const both = debitRecurringCharges(t.db, [debit(tight, 8n * EUR), debit(tight, 8n * EUR)].map((d) => ({ ...d, currency: 'EUR' })),
      { ...options(), onLockedRetry: (why) => again.push(why) });
    await new Promise((r) => setTimeout(r, 300));
    await raise.commit();
    expect(statuses(await both)).toEqual(['charged', 'charged']);
    expect(again).toEqual(['wallet_changed']);
    expect((await walletOf(tight)).balance).toBe(-16n * EUR);
  });

  test('two attempts at the same batch at once (a retried activity while the first still runs) charge each debit once', async () => {
    const accounts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await seedAccount(t.db, { paymentType: 'prepaid' });
      await fundWallet(t.db, a, 100n * EUR);
      accounts.push(a);
    }
    const batch = Array.from({ length: 12 }, (_x, i) => ({ ...debit(accounts[i % 3], BigInt(i + 1) * EUR), currency: 'EUR' }));
    const before = await entryCount();
    const feesBefore = await feePostings();
    const [a, b] = await Promise.all([debitRecurringCharges(t.db, batch, options()), debitRecurringCharges(t.db, batch, options())]);
    expect(statuses(a)).toEqual(batch.map(() => 'charged'));
    expect(statuses(b)).toEqual(batch.map(() => 'charged'));
    const ids = (rs: RecurringDebitResult[]) => rs.map((r) => (r.status === 'charged' ? r.journalEntryId : null));
    expect(ids(b)).toEqual(ids(a));
    expect(await entryCount()).toBe(before + 1);
    expect(await feePostings()).toBe(feesBefore + 12);
    expect((await walletOf(accounts[0])).balance).toBe(100n * EUR - (1n + 4n + 7n + 10n) * EUR);
  });

  test('raises wallet_low exactly as the engine does when a debit crosses the low mark', async () => {
    const mark = engine.policy.lowWalletThresholdMicros; // 2.00
    const setBased = await seedAccount(t.db, { paymentType: 'prepaid' });
    const viaEngine = await seedAccount(t.db, { paymentType: 'prepaid' });
    await fundWallet(t.db, setBased, 3n * EUR);
    await fundWallet(t.db, viaEngine, 3n * EUR);
    // 3.00 → 2.50 (no) → 1.90 (crosses) → 1.80 (already below: no)
    const batch = [debit(setBased, EUR / 2n), debit(setBased, 60n * EUR / 100n), debit(setBased, 10n * EUR / 100n)];
    const rs = await debitRecurringCharges(t.db, batch, options());
    expect(statuses(rs)).toEqual(['charged', 'charged', 'charged']);
    await debitWallet(engine, { billingAccountId: viaEngine, amountMicros: EUR / 2n, idempotencyKey: `e-${crypto.randomUUID()}`, actor: 'test' });
    const crossing = await debitWallet(engine, { billingAccountId: viaEngine, amountMicros: 60n * EUR / 100n, idempotencyKey: `e-${crypto.randomUUID()}`, actor: 'test' });
    await debitWallet(engine, { billingAccountId: viaEngine, amountMicros: 10n * EUR / 100n, idempotencyKey: `e-${crypto.randomUUID()}`, actor: 'test' });

    const events = async (accountId: string) => t.db('balance_events').where({ billing_account_id: accountId }).orderBy('id')
      .select('event_type', 'subscriber_id', 'ledger_account_id', 'threshold_percent', 'journal_entry_id', 'payload', 'published_at');
    const mine = await events(setBased);
    const theirs = await events(viaEngine);
    expect(mine).toHaveLength(1);
    expect(theirs).toHaveLength(1);
    const strip = (e: Record<string, unknown>) => ({ ...e, ledger_account_id: undefined, journal_entry_id: undefined });
    expect(strip(mine[0])).toEqual(strip(theirs[0]));
    expect(mine[0]).toMatchObject({
      event_type: 'wallet_low', subscriber_id: null, threshold_percent: null, ledger_account_id: (await walletOf(setBased)).id,
      journal_entry_id: (rs[1] as Extract<RecurringDebitResult, { status: 'charged' }>).journalEntryId,
      payload: { currency: 'EUR', balanceMicros: (190n * EUR / 100n).toString(), thresholdMicros: mark.toString() },
    });
    expect(theirs[0].journal_entry_id).toBe(crossing.journalEntryId);
  });

  test('concurrent engine charging and wallet debits on the same wallets: no overspend, no deadlock, balances equal the postings', async () => {
    const lines: Line[] = [];
    for (let i = 0; i < 24; i++) {
      const line = await seedLine(t.db, { planId });
      await fundWallet(t.db, line.accountId, 5n * EUR);
      await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 2n * MB });
      lines.push(line);
    }
    const postpaid = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 800n });
    const accounts = [...lines.map((l) => l.accountId), postpaid];
    const failedBefore = engine.stats().failedBatches;
    const before = await entryCount();

    // Eight set-based batches over every wallet in different orders (0.40 and 0.30 per wallet each:
    // 5.60 in all, more than a 5.00 wallet holds), spread over the time the engine charges data
    // sessions (bucket → wallet holds), SMS events and wallet debits on the same wallets.
    const shuffled = (xs: string[]) => [...xs].sort(() => Math.random() - 0.5);
    const batches = Array.from({ length: 8 }, () => shuffled(accounts).flatMap((a) => [debit(a, 4n * EUR / 10n), debit(a, 3n * EUR / 10n)]));
    const engineWork = async () => {
      const out = { applied: 0, refused: 0 };
      for (let round = 0; round < 6; round++) {
        await Promise.all(lines.map(async (line, i) => {
          const session = dataSession(line, 40n * MB);
          await engine.charge(session);
          await engine.charge(release(session.ref, 30n * MB));
          await engine.charge(sms(line));
          try {
            await debitWallet(engine, { billingAccountId: i % 2 === 0 ? line.accountId : postpaid, amountMicros: EUR / 2n, idempotencyKey: `engine-debit:${crypto.randomUUID()}`, actor: 'test' });
            out.applied++;
          } catch (err) {
            if (!(err instanceof DomainError) || err.code !== 'INSUFFICIENT_FUNDS') throw err;
            out.refused++;
          }
        }));
      }
      return out;
    };
    const [engineOut, ...results] = await Promise.all([
      engineWork(),
      ...batches.map(async (b, i) => {
        await new Promise((r) => setTimeout(r, 40 * i));
        return debitRecurringCharges(t.db, b, options());
      }),
    ]);
    expect(engine.stats().failedBatches).toBe(failedBefore); // a deadlock would fail (and retry) an engine batch
    expect(engineOut.applied + engineOut.refused).toBe(6 * lines.length);
    const all = results.flat();
    const charged = all.filter((r) => r.status === 'charged');
    expect(charged.length).toBeGreaterThan(0);
    expect(all.some((r) => r.status === 'insufficient')).toBe(true);

    for (const a of accounts) {
      const w = await walletOf(a);
      expect(w.balance - w.reserved).toBeGreaterThanOrEqual(-w.creditLimit);
    }
    const report = await verifyBalances(t.db);
    expect(report.problems).toEqual([]);
    expect(report.overspend).toEqual({ bucketUnits: 0n, walletMicros: 0n });

    // Rerun every batch: what was charged is answered with its first entry; nothing is charged twice.
    const afterFirst = await entryCount();
    const feesAfterFirst = await feePostings();
    // One wallet posting per charged fee, none for the others.
    const keys = batches.flat().map((d) => d.key);
    expect(Number((await t.db('postings').whereIn('source_ref', keys).count('* as n').first())!.n)).toBe(charged.length);
    const rerun = (await Promise.all(batches.map((b) => debitRecurringCharges(t.db, b, options())))).flat();
    const newlyCharged = rerun.filter((r, i) => r.status === 'charged' && all[i].status === 'insufficient').length;
    expect(await feePostings()).toBe(feesAfterFirst + newlyCharged);
    rerun.forEach((r, i) => {
      const f = all[i];
      if (f.status === 'charged') expect(r).toEqual({ ...f, replayed: true });
    });
    expect(afterFirst).toBeGreaterThan(before);
  });

  let seq = 0;
  function dataSession(line: Line, units: bigint): CreateOp {
    return {
      kind: 'create', ref: `test-${crypto.randomUUID()}`, sequenceNumber: 0, invocationTime: new Date(), raw: { test: seq++ }, context: { zone: 'home' },
      units: [{ ratingGroup: 10, requested: units, used: [] }], subscriber: { kind: 'imsi', value: line.imsi }, subscriberIdentifier: `imsi-${line.imsi}`, nfConsumer: 'smf-test',
    };
  }
  function release(ref: string, used: bigint): ReleaseOp {
    return {
      kind: 'release', ref, sequenceNumber: 1, invocationTime: new Date(), raw: { test: seq++ }, context: {},
      units: [{ ratingGroup: 10, used: [{ units: used, localSequenceNumber: 1 }] }],
    };
  }
  function sms(line: Line): CreateOp {
    return { ...dataSession(line, 1n), units: [{ ratingGroup: 30, requested: 1n, used: [] }], oneTimeEvent: 'IEC', nfConsumer: 'smsf-test' };
  }
});
