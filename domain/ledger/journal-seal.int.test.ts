import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createTestDatabase } from '../../test/support/services';
import { fundWallet, seedBucket, seedLine, seedPlan } from '../charging/testing/fixtures';
import { sealJournal, verifyJournalSeals } from './journal-seal';
import { verifyBalances } from './ledger-verify';
import { debitRecurringCharges } from './recurring-debits.repository';

const run = promisify(execFile);

async function ledgerVerify(url: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '../../scripts/ledger-verify.ts'), ...args], {
      env: { ...process.env, DATABASE_URL: url }, cwd: path.resolve(__dirname, '../..'),
    });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

describe('journal seals and the ledger check (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => { t = await createTestDatabase(); });
  afterAll(async () => { await t.drop(); });

  test('seals chain the journal; changes made behind the triggers’ back are named', async () => {
    const planId = await seedPlan(t.db);
    const lines = [];
    for (let i = 0; i < 5; i++) {
      const l = await seedLine(t.db, { planId });
      await fundWallet(t.db, l.accountId, 1_000_000n * BigInt(i + 1));
      await seedBucket(t.db, { accountId: l.accountId, subscriptionId: l.subscriptionId, service: 'data', units: 1_000_000n });
      lines.push(l);
    }
    const first = await sealJournal(t.db, { maxEntries: 4 });
    expect(first.entries).toBe(10);
    expect(first.seals).toBe(3);
    expect((await sealJournal(t.db)).seals).toBe(0); // nothing new
    const clean = await verifyJournalSeals(t.db, { expectHead: first.head!.hash });
    expect(clean).toMatchObject({ seals: 3, sealedEntries: 10, unsealedEntries: 0, problems: [] });
    expect((await ledgerVerify(t.url, '--json')).code).toBe(0);

    // New entries are sealed by the next run, chained to the head.
    await fundWallet(t.db, lines[0].accountId, 5n);
    const second = await sealJournal(t.db);
    expect(second.seals).toBe(1);
    expect((await verifyJournalSeals(t.db, { expectHead: second.head!.hash })).problems).toEqual([]);

    // A superuser edits a posting and the wallet to match, with the append-only triggers off.
    const wallet = await t.db('wallets').where({ billing_account_id: lines[1].accountId }).first();
    const posting = await t.db('postings').where({ ledger_account_id: wallet.ledger_account_id }).first();
    await t.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx('postings').where({ id: posting.id }).update({ amount: 9_000_000 });
      await trx('postings').where({ journal_entry_id: posting.journal_entry_id }).whereNot({ id: posting.id }).update({ amount: -9_000_000 });
      await trx('wallets').where({ ledger_account_id: wallet.ledger_account_id }).update({ balance_micros: 9_000_000 });
    });
    expect((await verifyBalances(t.db)).problems).toEqual([]); // balances alone cannot tell
    const tampered = await verifyJournalSeals(t.db);
    expect(tampered.problems).toEqual([expect.objectContaining({ kind: 'entry_changed', entryId: String(posting.journal_entry_id) })]);

    // … deletes an entry, and slips one into a sealed range.
    const victim = await t.db('journal_entries').where('entry_type', 'allowance_grant').orderBy('id').first();
    await t.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx('postings').where({ journal_entry_id: victim.id }).delete();
      await trx('journal_entries').where({ id: victim.id }).delete();
      await trx('journal_entries').insert({ id: victim.id, entry_type: 'adjustment', source_ref: 'x', actor: 'mallory', reason: 'gift', occurred_at: new Date(), details: '{}' });
    });
    const worse = await verifyJournalSeals(t.db);
    expect(worse.problems.map((p) => [p.kind, p.entryId])).toEqual(expect.arrayContaining([['entry_changed', String(victim.id)]]));

    // Rewriting the seals to match is caught by the chain and the recorded head.
    await t.db.raw('ALTER TABLE journal_seals DISABLE TRIGGER journal_seals_append_only');
    await t.db('journal_seals').where('seal_no', 1).update({ hash: 'f'.repeat(64) });
    await t.db.raw('ALTER TABLE journal_seals ENABLE TRIGGER journal_seals_append_only');
    const chain = await verifyJournalSeals(t.db, { expectHead: second.head!.hash });
    expect(chain.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['seal_hash_mismatch', 'chain_broken']));

    const script = await ledgerVerify(t.url);
    expect(script.code).toBe(1);
    expect(script.out).toContain(`entry_changed: journal entry ${posting.journal_entry_id}`);
    expect(script.out).toContain('ledger NOT OK');
  }, 60_000);
});

describe('journal seals over a batch of recurring fees (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => { t = await createTestDatabase(); });
  afterAll(async () => { await t.drop(); });

  test('a fee posting moved to another charge (its source_ref changed) is named', async () => {
    const planId = await seedPlan(t.db);
    const lines = [await seedLine(t.db, { planId }), await seedLine(t.db, { planId })];
    for (const l of lines) await fundWallet(t.db, l.accountId, 10_000_000n);
    const rs = await debitRecurringCharges(t.db, lines.map((l, i) => ({ key: `recurring-charge:seal-${i}`, billingAccountId: l.accountId, amountMicros: 1_000_000n })),
      { actor: 'billing-run', sourceRef: 'billing-run', lowWalletThresholdMicros: 0n });
    expect(rs.map((r) => r.status)).toEqual(['charged', 'charged']);
    const sealed = await sealJournal(t.db);
    expect((await verifyJournalSeals(t.db, { expectHead: sealed.head!.hash })).problems).toEqual([]);

    const entryId = (rs[0] as { journalEntryId: string }).journalEntryId;
    await t.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica');
      await trx('postings').where({ source_ref: 'recurring-charge:seal-0' }).update({ source_ref: 'recurring-charge:seal-9' });
    });
    expect((await verifyBalances(t.db)).problems).toEqual([]); // the amounts still add up
    expect((await verifyJournalSeals(t.db)).problems).toEqual([expect.objectContaining({ kind: 'entry_changed', entryId })]);
  }, 60_000);
});
