import type { Knex } from 'knex';

/**
 * No query reads recurring charges by cycle date (the billing run finds its charges by id, the API
 * by subscription and period, the grace sweep and settlement through their own partial indexes), and
 * every charge row paid for the index three times: on insert and on each update that moved it off
 * its page. Dropped; `down` builds it again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX recurring_charges_cycle_date_idx');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX recurring_charges_cycle_date_idx ON recurring_charges (cycle_date, id)');
}
