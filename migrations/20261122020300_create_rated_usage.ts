import type { Knex } from 'knex';

/** Rated usage: one row per used-unit container the network reported (or per one-time event), with
 * the columns wholesale reconciliation matches on (IMSI/MSISDN, service, start time, volume, zone)
 * and how it was paid: units from allowance buckets, units priced from money, the amount charged
 * and any overuse the balances could not cover. The journal entry holds the full audit trail
 * (raw request, rating decision, balances before and after). Append-only. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE rated_usage (
      id bigserial PRIMARY KEY,
      journal_entry_id bigint,
      charging_data_ref text NOT NULL,
      invocation_sequence_number bigint NOT NULL,
      rating_group bigint NOT NULL,
      service_id bigint,
      local_sequence_number bigint,
      subscriber_id uuid NOT NULL,
      billing_account_id uuid NOT NULL,
      msisdn text,
      imsi text,
      service text NOT NULL CONSTRAINT rated_usage_service_check CHECK (service IN ('data', 'voice', 'sms')),
      zone text NOT NULL,
      destination text,
      started_at timestamptz NOT NULL,
      ended_at timestamptz NOT NULL,
      used_units bigint NOT NULL,
      uplink_units bigint,
      downlink_units bigint,
      bucket_units bigint NOT NULL,
      priced_units bigint NOT NULL,
      amount_micros bigint NOT NULL,
      uncharged_micros bigint NOT NULL DEFAULT 0,
      currency char(3) NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT rated_usage_units_check CHECK (used_units >= 0 AND bucket_units >= 0 AND priced_units >= 0 AND amount_micros >= 0 AND uncharged_micros >= 0)
    )`);
  await knex.raw(`CREATE INDEX rated_usage_subscriber_idx ON rated_usage (subscriber_id, started_at)`);
  await knex.raw(`CREATE INDEX rated_usage_entry_idx ON rated_usage (journal_entry_id)`);
  // Reconciliation scans a month at a time; a BRIN index costs next to nothing to maintain.
  await knex.raw(`CREATE INDEX rated_usage_started_brin ON rated_usage USING brin (started_at)`);
  await knex.raw(`CREATE TRIGGER rated_usage_append_only BEFORE UPDATE OR DELETE ON rated_usage
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE rated_usage');
}
