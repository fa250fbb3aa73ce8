import type { Knex } from 'knex';

/**
 * New customers, billing accounts, subscriptions and invoices take time-ordered ids (`uuid_v7()`,
 * migration …130100) instead of random ones. These are the tables a billing run reads or writes a
 * row of per subscription, walking subscriptions in id order: with ids in creation order, a batch of
 * subscriptions, the accounts they were opened with and their wallets (bigint ids, already in
 * creation order) sit on neighbouring pages, and each new invoice goes to the right edge of its
 * index instead of a random leaf. Existing rows keep their ids; a run's lanes are cut at quantiles
 * of the due ids (billing-run.repository.ts, `lanesAtDueQuantiles`), so any mix of the two splits evenly.
 *
 * Subscribers keep the ids the API derives from the activation's idempotency key (a hash: a retried
 * activation must find the same `subscriber:<id>` workflow).
 */
const TABLES = ['customers', 'billing_accounts', 'subscriptions', 'invoices'];

export async function up(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT uuid_v7()`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) await knex.raw(`ALTER TABLE ${table} ALTER COLUMN id SET DEFAULT gen_random_uuid()`);
}
