import type { Knex } from 'knex';

/** Charging data resources (TS 32.291 "ChargingDataRef") and their open reservations. One row per
 * session; the reservations of its rating groups live in `reservations` (JSON, bigints as strings)
 * because they are always read and written together with the session, under its row lock.
 *
 * - `held_account_ids` lists the ledger accounts (buckets, wallet) the reservations hold units on,
 *   so the engine can lock exactly those rows in the same statement that locks the session.
 * - `expires_at` is the earliest validity end among the holds (NULL = nothing held); the sweeper
 *   returns abandoned holds through the partial index.
 * - No foreign keys: the hot path resolves subscriber and account in the same transaction, and a
 *   foreign key would take a KEY SHARE lock on the subscriber row per insert.
 * - fillfactor 80 leaves room for HOT updates (the session is rewritten on every update). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE charging_sessions (
      charging_data_ref text PRIMARY KEY,
      subscriber_id uuid NOT NULL,
      billing_account_id uuid NOT NULL,
      subscriber_identifier text NOT NULL,
      msisdn text,
      imsi text,
      nf_consumer text,
      state text NOT NULL CONSTRAINT charging_sessions_state_check CHECK (state IN ('open', 'released')),
      last_sequence_number bigint NOT NULL,
      reservations jsonb NOT NULL DEFAULT '[]',
      held_account_ids bigint[] NOT NULL DEFAULT '{}',
      expires_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      released_at timestamptz,
      CONSTRAINT charging_sessions_released_check CHECK ((state = 'released') = (released_at IS NOT NULL)),
      CONSTRAINT charging_sessions_reservations_check CHECK (jsonb_typeof(reservations) = 'array')
    ) WITH (fillfactor = 80)`);
  await knex.raw(`CREATE INDEX charging_sessions_expiry_idx ON charging_sessions (expires_at) WHERE expires_at IS NOT NULL`);
  await knex.raw(`CREATE INDEX charging_sessions_open_subscriber_idx ON charging_sessions (subscriber_id) WHERE state = 'open'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE charging_sessions');
}
