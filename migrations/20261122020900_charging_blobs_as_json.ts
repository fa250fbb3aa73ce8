import type { Knex } from 'knex';

/** A session's reservations and a stored answer are only ever written and read whole by the
 * charging engine (never queried into on the hot path), so they are kept as `json`: the input is
 * validated and stored as text, without building (and on every read, printing) a jsonb tree. The
 * journal keeps jsonb: it is what people query. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE charging_sessions DROP CONSTRAINT charging_sessions_reservations_check`);
  await knex.raw(`ALTER TABLE charging_sessions ALTER COLUMN reservations DROP DEFAULT, ALTER COLUMN reservations TYPE json USING reservations::json, ALTER COLUMN reservations SET DEFAULT '[]'`);
  await knex.raw(`ALTER TABLE charging_sessions ADD CONSTRAINT charging_sessions_reservations_check CHECK (json_typeof(reservations) = 'array')`);
  await knex.raw(`ALTER TABLE charging_requests ALTER COLUMN response TYPE json USING response::json`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE charging_requests ALTER COLUMN response TYPE jsonb USING response::jsonb`);
  await knex.raw(`ALTER TABLE charging_sessions DROP CONSTRAINT charging_sessions_reservations_check`);
  await knex.raw(`ALTER TABLE charging_sessions ALTER COLUMN reservations DROP DEFAULT, ALTER COLUMN reservations TYPE jsonb USING reservations::jsonb, ALTER COLUMN reservations SET DEFAULT '[]'`);
  await knex.raw(`ALTER TABLE charging_sessions ADD CONSTRAINT charging_sessions_reservations_check CHECK (jsonb_typeof(reservations) = 'array')`);
}
