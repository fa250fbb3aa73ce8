import type { Knex } from 'knex';

/** Charging data refs are opaque ASCII keys: compare them bytewise ("C"), not through the
 * database's libc collation, on the two busiest primary keys of the hot path. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE charging_sessions ALTER COLUMN charging_data_ref TYPE text COLLATE "C"`);
  await knex.raw(`ALTER TABLE charging_requests ALTER COLUMN charging_data_ref TYPE text COLLATE "C"`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE charging_requests ALTER COLUMN charging_data_ref TYPE text COLLATE "default"`);
  await knex.raw(`ALTER TABLE charging_sessions ALTER COLUMN charging_data_ref TYPE text COLLATE "default"`);
}
