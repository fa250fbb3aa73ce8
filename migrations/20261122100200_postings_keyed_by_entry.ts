import type { Knex } from 'knex';

/**
 * Postings are keyed by (journal_entry_id, id) instead of id alone, and the separate index on
 * journal_entry_id goes: the key serves every read of an entry's postings (explain, seal, verify,
 * in id order), nothing looks a posting up by id alone, and nothing references postings. One index
 * entry less per posting — three per subscription renewed by a billing run, one per charge on the
 * hot path. Rebuilding the key takes a lock on postings for as long as it runs; `down` restores both.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE postings DROP CONSTRAINT postings_pkey');
  await knex.raw('ALTER TABLE postings ADD CONSTRAINT postings_pkey PRIMARY KEY (journal_entry_id, id)');
  await knex.raw('DROP INDEX postings_journal_entry_id_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX postings_journal_entry_id_index ON postings (journal_entry_id)');
  await knex.raw('ALTER TABLE postings DROP CONSTRAINT postings_pkey');
  await knex.raw('ALTER TABLE postings ADD CONSTRAINT postings_pkey PRIMARY KEY (id)');
}
