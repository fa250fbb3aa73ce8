import type { Knex } from 'knex';

/**
 * A posting may name what caused it (`source_ref`), unique where set. The billing run books each
 * batch of recurring fees as one journal entry per currency: one wallet posting per fee, named by
 * its charge (`recurring-charge:<id>`), and one revenue posting for the batch. The unique index is
 * the fee's idempotency guard (one debit per charge, ever) that the entry's idempotency key was
 * when every fee had its own entry. Postings without a reference (every other entry) are not in
 * the index. Adding a nullable column without a default rewrites nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE postings ADD COLUMN source_ref text');
  await knex.raw('CREATE UNIQUE INDEX postings_source_ref_uq ON postings (source_ref) WHERE source_ref IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX postings_source_ref_uq');
  await knex.raw('ALTER TABLE postings DROP COLUMN source_ref');
}
