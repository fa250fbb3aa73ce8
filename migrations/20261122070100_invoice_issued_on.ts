import type { Knex } from 'knex';

/** The date an invoice was issued for (the billing run's date, or the day it was issued on demand):
 * the billing run finds the invoices it issued by it and (re)starts their `invoice:<id>`, so a retry
 * after the issue committed still starts them. Invoices issued before this column stay NULL. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE invoices ADD COLUMN issued_on date;
    ALTER TABLE invoices ADD CONSTRAINT invoices_issued_on_check CHECK (issued_on IS NULL OR status <> 'open');
    CREATE INDEX invoices_issued_on_idx ON invoices (issued_on, id) WHERE issued_on IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX invoices_issued_on_idx; ALTER TABLE invoices DROP CONSTRAINT invoices_issued_on_check; ALTER TABLE invoices DROP COLUMN issued_on`);
}
