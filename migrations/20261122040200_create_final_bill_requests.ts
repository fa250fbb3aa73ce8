import type { Knex } from 'knex';

/** The final-bill trigger: terminating a line that was ever active writes one row here in the same
 * transaction as the termination (keyed by the lifecycle transition id, so a retried activity writes
 * it once). Billing consumes rows with `consumed_at IS NULL` (e.g. `FOR UPDATE SKIP LOCKED`), bills
 * the line's last partial period and open usage, and sets `consumed_at` and `invoice_ref`. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('final_bill_requests', (t) => {
    t.text('id').primary();
    t.uuid('subscriber_id').notNullable().references('subscribers.id');
    t.uuid('billing_account_id').notNullable().references('billing_accounts.id');
    t.uuid('subscription_id').references('subscriptions.id');
    t.timestamp('terminated_at', { useTz: true }).notNullable();
    t.text('actor').notNullable();
    t.timestamp('requested_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('consumed_at', { useTz: true });
    t.text('invoice_ref');
  });
  await knex.raw(`CREATE UNIQUE INDEX final_bill_requests_subscriber_uq ON final_bill_requests (subscriber_id)`);
  await knex.raw(`CREATE INDEX final_bill_requests_open_idx ON final_bill_requests (requested_at) WHERE consumed_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('final_bill_requests');
}
