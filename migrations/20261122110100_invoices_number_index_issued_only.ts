import type { Knex } from 'knex';

/**
 * The unique index on invoice numbers covers issued invoices only. An open invoice has no number
 * yet (`invoices_issued_check`), and a b-tree indexes NULLs too: every invoice a billing run opens
 * (one per postpaid and hybrid account a month) added an index entry that could never be looked
 * up. Numbers stay unique where they exist.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE UNIQUE INDEX invoices_number_uq ON invoices (number) WHERE number IS NOT NULL');
  await knex.raw('ALTER TABLE invoices DROP CONSTRAINT invoices_number_key');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE (number)');
  await knex.raw('DROP INDEX invoices_number_uq');
}
