import type { Knex } from 'knex';

/** Every update rewrites a charging session and moves its `expires_at`; with that column indexed no
 * update could be HOT (each one inserted into every index of the table). The sweeper finds
 * candidates through open sessions by creation time instead (a hold can only have expired on a
 * session older than its validity time), an index that updates never touch. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX charging_sessions_expiry_idx');
  await knex.raw(`CREATE INDEX charging_sessions_open_created_idx ON charging_sessions (created_at) WHERE state = 'open'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX charging_sessions_open_created_idx');
  await knex.raw(`CREATE INDEX charging_sessions_expiry_idx ON charging_sessions (expires_at) WHERE expires_at IS NOT NULL`);
}
