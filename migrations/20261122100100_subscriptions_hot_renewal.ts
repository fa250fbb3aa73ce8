import type { Knex } from 'knex';

/**
 * Renewing a subscription (the billing run moves its period and next_charge_on) becomes a HOT update:
 * no index covers a column it changes, and the pages keep room for the new row version. Before, the
 * due-date index made every renewal a new row version in all four indexes of the table. The run now
 * walks active subscriptions by id (the primary key) and filters on the due date — a daily run reads
 * every active subscription once, which costs less than the index maintenance it replaces.
 * The fillfactor applies to pages written from now on; `down` restores both.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX subscriptions_due_idx');
  await knex.raw('ALTER TABLE subscriptions SET (fillfactor = 80)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE subscriptions RESET (fillfactor)');
  await knex.raw(`CREATE INDEX subscriptions_due_idx ON subscriptions (next_charge_on, id) WHERE state = 'active'`);
}
