import type { Knex } from 'knex';

/**
 * A billing batch's charges whose allowances and invoice lines are still to be written. The batch
 * claims its subscriptions, debits the fees and inserts each charge row with its outcome in one
 * transaction, and records here, in the same transaction, the charges paid (or waived) that it still
 * has to fulfil; the row is deleted in the transaction that writes their invoice lines, the last
 * step. One row per batch instead of a flag updated on every charge row: a crash in between leaves
 * this row, and the lane's next first batch (or the retried batch) fulfils what it names — the
 * buckets and invoice lines are keyed, so nothing is granted or billed twice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE billing_batch_fulfilments (
      id bigserial PRIMARY KEY,
      cycle_date date NOT NULL,
      -- The batch's lowest subscription id: which lane of a run picks the row up after a crash.
      first_subscription_id uuid NOT NULL,
      charge_ids bigint[] NOT NULL CHECK (cardinality(charge_ids) > 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE billing_batch_fulfilments');
}
