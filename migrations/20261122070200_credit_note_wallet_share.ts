import type { Knex } from 'knex';

/** The part of a credit note that goes back to the customer's wallet (its pre-tax part: the wallet
 * carries what a postpaid account owes before tax), fixed when the note is made, so a retry credits
 * exactly that. Notes made before this column stay NULL: they never credited the wallet. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE credit_notes ADD COLUMN wallet_minor bigint,
    ADD CONSTRAINT credit_notes_wallet_minor_check CHECK (wallet_minor IS NULL OR (wallet_minor >= 0 AND wallet_minor <= amount_minor))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE credit_notes DROP CONSTRAINT credit_notes_wallet_minor_check, DROP COLUMN wallet_minor`);
}
