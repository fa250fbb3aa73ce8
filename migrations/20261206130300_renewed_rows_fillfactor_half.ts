import type { Knex } from 'knex';

/**
 * Subscriptions and wallets keep half of each page free, room for a new version of every row on it.
 *
 * Why: with time-ordered ids (migration …130200) the rows a billing batch renews (the subscriptions it
 * advances, the payer wallets it debits) are neighbours, so one statement updates every row of a page.
 * A HOT update needs room on the same page, and the versions a statement leaves cannot be pruned
 * before it commits: at fillfactor 80, three updates in four of a 200k billing run went to another
 * page, each with a new entry in every index of the table (the claim's update took three times as
 * long). At 50 the table takes about 1.6 times the space, and every renewal stays HOT. The charging
 * hot path's wallet updates, one row at a time and pruned between, were HOT at 70 already.
 * The fillfactor applies to pages written from now on; `down` restores the earlier ones.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE subscriptions SET (fillfactor = 50)');
  await knex.raw('ALTER TABLE wallets SET (fillfactor = 50)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE subscriptions SET (fillfactor = 80)');
  await knex.raw('ALTER TABLE wallets SET (fillfactor = 70)');
}
