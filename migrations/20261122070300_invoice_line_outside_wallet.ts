import type { Knex } from 'knex';

/** A one-off charge or late fee the customer's wallet could not take (past the credit limit) is still
 * billed, but owed in receivables instead of the wallet: collection and credit notes then move only
 * the rest through the wallet (domain/billing/README.md, "Money in the ledger"). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE invoice_lines ADD COLUMN outside_wallet boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT invoice_lines_outside_wallet_check CHECK (NOT outside_wallet OR kind IN ('one_off', 'late_fee'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_outside_wallet_check, DROP COLUMN outside_wallet`);
}
