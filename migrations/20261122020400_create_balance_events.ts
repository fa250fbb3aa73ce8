import type { Knex } from 'knex';

/** Outbox of balance events (a bucket crossing 50/80/100 % used, a wallet falling below the low
 * balance threshold), written in the same transaction as the charge that caused them, for the
 * notification and auto top-up work to consume and mark published. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE balance_events (
      id bigserial PRIMARY KEY,
      event_type text NOT NULL CONSTRAINT balance_events_type_check CHECK (event_type IN ('bucket_threshold', 'wallet_low')),
      billing_account_id uuid NOT NULL,
      subscriber_id uuid,
      ledger_account_id bigint NOT NULL,
      threshold_percent integer,
      journal_entry_id bigint,
      payload jsonb NOT NULL DEFAULT '{}',
      occurred_at timestamptz NOT NULL,
      published_at timestamptz
    )`);
  await knex.raw(`CREATE INDEX balance_events_unpublished_idx ON balance_events (id) WHERE published_at IS NULL`);
  await knex.raw(`CREATE INDEX balance_events_account_idx ON balance_events (billing_account_id, id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE balance_events');
}
