import type { Knex } from 'knex';

/** Wallets and buckets are the most updated rows of the system (every charge moves a balance or a
 * hold). Leaving room on their pages keeps those updates HOT — the new row version on the same
 * page, no index entries to add — instead of moving rows and growing three indexes. Applies to
 * pages written from now on (a VACUUM FULL or pg_repack applies it to existing ones). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE wallets SET (fillfactor = 70)');
  await knex.raw('ALTER TABLE buckets SET (fillfactor = 70)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE wallets RESET (fillfactor)');
  await knex.raw('ALTER TABLE buckets RESET (fillfactor)');
}
