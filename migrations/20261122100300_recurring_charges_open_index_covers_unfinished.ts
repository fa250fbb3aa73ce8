import type { Knex } from 'knex';

/**
 * The index of open charges covers every charge still to finish: pending, insufficient, suspended,
 * and waived ones whose allowances were not granted yet. Before, it left out `suspended`, so the
 * lookup after a top-up (`openChargesOf`: pending, insufficient or suspended charges of a payer)
 * could not use it and scanned the whole table; and a batch recovering what a crashed attempt left
 * (`strandedCharges`) needs the unfinished waived ones too. Suspended and unfinished waived charges
 * are rare, so the index stays as small as before.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX recurring_charges_open_idx');
  await knex.raw(`CREATE INDEX recurring_charges_open_idx ON recurring_charges (payer_account_id, id)
                  WHERE status IN ('pending', 'insufficient', 'suspended') OR (status = 'waived' AND NOT allowances_granted)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX recurring_charges_open_idx');
  await knex.raw(`CREATE INDEX recurring_charges_open_idx ON recurring_charges (payer_account_id, id) WHERE status IN ('pending', 'insufficient')`);
}
