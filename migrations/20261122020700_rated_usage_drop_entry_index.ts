import type { Knex } from 'knex';

/** A charge is explained from its journal entry (whose details carry every rated line), so rated
 * usage needs no index by journal entry; one index less on the busiest insert of the hot path. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX rated_usage_entry_idx');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX rated_usage_entry_idx ON rated_usage (journal_entry_id)');
}
