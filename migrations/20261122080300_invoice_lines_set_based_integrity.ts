import type { Knex } from 'knex';

/**
 * Invoice lines are checked once per INSERT statement instead of once per row: the billing run
 * writes thousands of fee and discount lines in one statement, and each paid a row trigger (an SPI
 * lookup of its invoice's status) and a foreign key check (another lookup and a KEY SHARE lock).
 *
 * - INSERT: a statement trigger locks the distinct invoices of the new lines `FOR KEY SHARE` (the
 *   lock the foreign key took, once per invoice instead of once per line: issuing an invoice locks
 *   it `FOR UPDATE`, so a line insert and the issuing of its invoice still serialize), then, with a
 *   fresh snapshot, refuses the statement if an invoice does not exist or is no longer open.
 * - UPDATE and DELETE of lines keep the row trigger (refused on issued invoices); moving a line to
 *   another invoice checks that it exists.
 * - DELETE of an invoice that still has lines is refused (what the foreign key did; issued invoices
 *   refuse DELETE anyway), and an invoice's id never changes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION invoice_lines_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      bad record;
    BEGIN
      PERFORM 1 FROM invoices i WHERE i.id IN (SELECT DISTINCT invoice_id FROM new_rows) ORDER BY i.id FOR KEY SHARE OF i;
      SELECT n.invoice_id, i.status INTO bad
        FROM (SELECT DISTINCT invoice_id FROM new_rows) n LEFT JOIN invoices i ON i.id = n.invoice_id
       WHERE i.id IS NULL OR i.status <> 'open' LIMIT 1;
      IF FOUND AND bad.status IS NULL THEN
        RAISE EXCEPTION 'invoice line refers to invoice % (invoice_id), which does not exist in invoices', bad.invoice_id
          USING ERRCODE = 'foreign_key_violation', TABLE = 'invoice_lines', COLUMN = 'invoice_id';
      ELSIF FOUND THEN
        RAISE EXCEPTION 'invoice % is issued: its lines are immutable; issue a credit note', bad.invoice_id
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$;
    CREATE FUNCTION invoice_lines_check_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM invoices i WHERE i.id = NEW.invoice_id) THEN
        RAISE EXCEPTION 'invoice line refers to invoice % (invoice_id), which does not exist in invoices', NEW.invoice_id
          USING ERRCODE = 'foreign_key_violation', TABLE = 'invoice_lines', COLUMN = 'invoice_id';
      END IF;
      RETURN NULL;
    END $$;
    CREATE FUNCTION invoices_refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      used record;
    BEGIN
      SELECT o.id INTO used FROM old_rows o WHERE EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = o.id) LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'invoice % is still referenced from invoice_lines.invoice_id', used.id
          USING ERRCODE = 'foreign_key_violation', TABLE = 'invoice_lines', COLUMN = 'invoice_id';
      END IF;
      RETURN NULL;
    END $$;

    DROP TRIGGER invoice_lines_immutable ON invoice_lines;
    CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change();
    CREATE TRIGGER invoice_lines_refs_insert AFTER INSERT ON invoice_lines REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION invoice_lines_check_insert();
    CREATE TRIGGER invoice_lines_refs_update AFTER UPDATE OF invoice_id ON invoice_lines
      FOR EACH ROW WHEN (OLD.invoice_id IS DISTINCT FROM NEW.invoice_id) EXECUTE FUNCTION invoice_lines_check_moved();
    CREATE TRIGGER invoices_referenced_delete AFTER DELETE ON invoices REFERENCING OLD TABLE AS old_rows
      FOR EACH STATEMENT EXECUTE FUNCTION invoices_refuse_referenced_delete();
    CREATE TRIGGER invoices_key_fixed BEFORE UPDATE OF id ON invoices
      FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION billing_refuse_key_change();
    ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_id_fkey;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices (id);
    DROP TRIGGER invoices_key_fixed ON invoices;
    DROP TRIGGER invoices_referenced_delete ON invoices;
    DROP TRIGGER invoice_lines_refs_update ON invoice_lines;
    DROP TRIGGER invoice_lines_refs_insert ON invoice_lines;
    DROP TRIGGER invoice_lines_immutable ON invoice_lines;
    CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change();
    DROP FUNCTION invoices_refuse_referenced_delete();
    DROP FUNCTION invoice_lines_check_moved();
    DROP FUNCTION invoice_lines_check_insert();
  `);
}
