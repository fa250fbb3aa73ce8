import type { Knex } from 'knex';

/** The answer given to every charging request, keyed by (ChargingDataRef, invocationSequenceNumber):
 * a retransmitted request gets exactly the stored first answer and charges nothing twice. Written in
 * the same transaction as the charge it answers. Append-only (a stored answer never changes). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE charging_requests (
      charging_data_ref text NOT NULL,
      invocation_sequence_number bigint NOT NULL,
      operation text NOT NULL CONSTRAINT charging_requests_operation_check CHECK (operation IN ('create', 'update', 'release', 'event')),
      http_status smallint NOT NULL,
      response jsonb,
      journal_entry_id bigint,
      received_at timestamptz NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (charging_data_ref, invocation_sequence_number)
    )`);
  await knex.raw(`CREATE TRIGGER charging_requests_append_only BEFORE UPDATE OR DELETE ON charging_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE charging_requests');
}
