import { createTestDatabase } from '../../test/support/services';

/** Postings' references are checked once per statement (migration 20261122021000) instead of by
 * per-row foreign keys: the same refusals, set-based. */
describe('ledger integrity without per-row foreign keys', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => { t = await createTestDatabase(); });
  afterAll(async () => { await t.drop(); });

  test('a posting must refer to an existing journal entry and ledger account; accounts cannot be deleted', async () => {
    const [grant] = await t.db('ledger_accounts').where({ code: 'allowance_grant:bytes' }).select('id');
    const [usage] = await t.db('ledger_accounts').where({ code: 'allowance_usage:bytes' }).select('id');
    const [entry] = await t.db('journal_entries').insert({ entry_type: 'allowance_grant', source_ref: 't', actor: 't', occurred_at: new Date() }).returning('id');
    await expect(t.db('postings').insert([
      { journal_entry_id: 987654321, ledger_account_id: grant.id, unit: 'bytes', amount: 5 },
      { journal_entry_id: 987654321, ledger_account_id: usage.id, unit: 'bytes', amount: -5 },
    ])).rejects.toThrow(/journal entry 987654321, which does not exist/);
    await expect(t.db('postings').insert([
      { journal_entry_id: entry.id, ledger_account_id: grant.id, unit: 'bytes', amount: 5 },
      { journal_entry_id: entry.id, ledger_account_id: 987654321, unit: 'bytes', amount: -5 },
    ])).rejects.toThrow(/ledger account 987654321, which does not exist/);
    await expect(t.db('postings').insert([
      { journal_entry_id: entry.id, ledger_account_id: grant.id, unit: 'seconds', amount: 5 },
      { journal_entry_id: entry.id, ledger_account_id: usage.id, unit: 'seconds', amount: -5 },
    ])).rejects.toThrow(/unit differs/);
    await t.db('postings').insert([
      { journal_entry_id: entry.id, ledger_account_id: grant.id, unit: 'bytes', amount: 5 },
      { journal_entry_id: entry.id, ledger_account_id: usage.id, unit: 'bytes', amount: -5 },
    ]);
    const [spare] = await t.db('ledger_accounts').insert({ code: 'adjustments:CHF', kind: 'adjustments', unit: 'CHF' }).returning('id');
    await expect(t.db('ledger_accounts').where({ id: spare.id }).delete()).rejects.toThrow(/append-only/);
    await expect(t.db.raw('TRUNCATE ledger_accounts CASCADE')).rejects.toThrow(/append-only/);
  });
});
