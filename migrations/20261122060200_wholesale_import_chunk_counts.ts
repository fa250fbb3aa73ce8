import type { Knex } from 'knex';

/** Records per matching chunk of each import, counted while the file streams in: a run whose period
 * covers the whole file takes its counts from here instead of scanning the records. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE wholesale_imports ADD COLUMN chunk_counts jsonb`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE wholesale_imports DROP COLUMN chunk_counts`);
}
