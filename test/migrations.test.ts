import { createTestDatabase } from './support/services';
import { migrationConfig } from '../platform/database';

/** Every migration has a working `down`: roll all the way back and up again, around seeded data. */
describe('migrations', () => {
  test('roll back to nothing and forward again', async () => {
    const t = await createTestDatabase({ empty: true });
    try {
      const config = migrationConfig();
      await t.db.migrate.latest(config);
      await t.db('customers').insert({ kind: 'individual', name: 'seeded before rollback' });
      await t.db.migrate.rollback(config, true);
      const left = await t.db.raw(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'knex_%'`);
      expect(left.rows).toEqual([]);
      await t.db.migrate.latest(config);
      const [{ count }] = await t.db('knex_migrations').count<{ count: string }[]>('* as count');
      expect(Number(count)).toBeGreaterThanOrEqual(12);
    } finally {
      await t.drop();
    }
  });

  test('the ledger refuses updates and deletes, and unbalanced entries', async () => {
    const t = await createTestDatabase();
    try {
      const [grant] = await t.db('ledger_accounts').where({ code: 'allowance_grant:bytes' }).select('id');
      const [usage] = await t.db('ledger_accounts').where({ code: 'allowance_usage:bytes' }).select('id');
      const [entry] = await t.db('journal_entries').insert({ entry_type: 'adjustment', source_ref: 'test', actor: 'test', reason: 'test', occurred_at: new Date() }).returning('id');
      await expect(
        t.db('postings').insert([{ journal_entry_id: entry.id, ledger_account_id: grant.id, unit: 'bytes', amount: 10 }, { journal_entry_id: entry.id, ledger_account_id: usage.id, unit: 'bytes', amount: -9 }]),
      ).rejects.toThrow(/does not balance/);
      await t.db('postings').insert([{ journal_entry_id: entry.id, ledger_account_id: grant.id, unit: 'bytes', amount: 10 }, { journal_entry_id: entry.id, ledger_account_id: usage.id, unit: 'bytes', amount: -10 }]);
      await expect(t.db('postings').where({ journal_entry_id: entry.id }).update({ amount: 11 })).rejects.toThrow(/append-only/);
      await expect(t.db('journal_entries').where({ id: entry.id }).delete()).rejects.toThrow(/append-only/);
      await expect(t.db.raw('TRUNCATE postings')).rejects.toThrow(/append-only/);
      await expect(t.db('journal_entries').insert({ entry_type: 'adjustment', source_ref: 'x', actor: 'x', reason: ' ', occurred_at: new Date() })).rejects.toThrow(/adjustment_reason/);
    } finally {
      await t.drop();
    }
  });
});
