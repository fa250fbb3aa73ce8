import type { Knex } from 'knex';

/** Postpaid invoices: one open invoice per billing account (the top of a family or business) and
 * period, its lines, gapless sequential numbers (a counter row per series, taken under a row lock in
 * the issuing transaction), tax rates, credit notes. An issued invoice and its lines are immutable
 * (triggers); only the payment status columns may still change. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE invoice_number_sequences (
      series text PRIMARY KEY,
      next_value bigint NOT NULL DEFAULT 1 CHECK (next_value >= 1)
    );
    INSERT INTO invoice_number_sequences (series) VALUES ('INV'), ('CN');

    CREATE TABLE tax_rates (
      code text PRIMARY KEY,
      name text NOT NULL,
      rate_ppm integer NOT NULL CHECK (rate_ppm BETWEEN 0 AND 1000000),
      is_default boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX tax_rates_default_uq ON tax_rates (is_default) WHERE is_default;
    INSERT INTO tax_rates (code, name, rate_ppm, is_default) VALUES ('standard', 'VAT 19 %', 190000, true);

    CREATE TABLE invoices (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      billing_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      period_start date NOT NULL,
      period_end date NOT NULL,
      currency char(3) NOT NULL,
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'issued', 'paid', 'void')),
      number text UNIQUE,
      subtotal_minor bigint NOT NULL DEFAULT 0,
      tax_minor bigint NOT NULL DEFAULT 0,
      total_minor bigint NOT NULL DEFAULT 0,
      credited_minor bigint NOT NULL DEFAULT 0,
      paid_minor bigint NOT NULL DEFAULT 0,
      tax_rate_ppm integer,
      issued_at timestamptz,
      due_on date,
      paid_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT invoices_issued_check CHECK ((status = 'open') = (number IS NULL))
    );
    CREATE UNIQUE INDEX invoices_open_uq ON invoices (billing_account_id) WHERE status = 'open';
    CREATE INDEX invoices_account_idx ON invoices (billing_account_id, created_at DESC);

    CREATE TABLE invoice_lines (
      id bigserial PRIMARY KEY,
      invoice_id uuid NOT NULL REFERENCES invoices(id),
      kind text NOT NULL CHECK (kind IN ('recurring_fee', 'usage', 'one_off', 'discount', 'tax', 'credit', 'late_fee')),
      subscriber_id uuid,
      description text NOT NULL,
      service text,
      quantity bigint,
      amount_minor bigint NOT NULL,
      source_ref text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (invoice_id, source_ref)
    );

    CREATE TABLE credit_notes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      number text NOT NULL UNIQUE,
      invoice_id uuid NOT NULL REFERENCES invoices(id),
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      reason text NOT NULL CHECK (length(btrim(reason)) > 0),
      idempotency_key text NOT NULL UNIQUE,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE FUNCTION invoices_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'invoice_lines' THEN
        IF EXISTS (SELECT 1 FROM invoices WHERE id = coalesce(NEW.invoice_id, OLD.invoice_id) AND status <> 'open') THEN
          RAISE EXCEPTION 'invoice % is issued: its lines are immutable; issue a credit note', coalesce(NEW.invoice_id, OLD.invoice_id)
            USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN coalesce(NEW, OLD);
      END IF;
      IF TG_OP = 'DELETE' AND OLD.status <> 'open' THEN
        RAISE EXCEPTION 'invoice % is issued and cannot be deleted', OLD.id USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'UPDATE' AND OLD.status <> 'open' AND (
           NEW.number IS DISTINCT FROM OLD.number OR NEW.billing_account_id <> OLD.billing_account_id
           OR NEW.subtotal_minor <> OLD.subtotal_minor OR NEW.tax_minor <> OLD.tax_minor OR NEW.total_minor <> OLD.total_minor
           OR NEW.issued_at IS DISTINCT FROM OLD.issued_at OR NEW.period_start <> OLD.period_start OR NEW.period_end <> OLD.period_end
           OR NEW.currency <> OLD.currency OR NEW.status = 'open') THEN
        RAISE EXCEPTION 'invoice % is issued: only its payment status may change; issue a credit note', OLD.id
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN coalesce(NEW, OLD);
    END $$;
    CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change();
    CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change();

    CREATE TABLE dunning_policies (
      id text PRIMARY KEY,
      reminder_days integer[] NOT NULL,
      late_fee_minor bigint NOT NULL DEFAULT 0,
      late_fee_after_days integer,
      suspend_after_days integer NOT NULL,
      terminate_after_days integer NOT NULL,
      CHECK (terminate_after_days > suspend_after_days)
    );
    INSERT INTO dunning_policies (id, reminder_days, late_fee_minor, late_fee_after_days, suspend_after_days, terminate_after_days)
      VALUES ('default', '{3,10}', 500, 14, 21, 60);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE dunning_policies; DROP TRIGGER invoice_lines_immutable ON invoice_lines; DROP TRIGGER invoices_immutable ON invoices;
    DROP FUNCTION invoices_refuse_change(); DROP TABLE credit_notes; DROP TABLE invoice_lines; DROP TABLE invoices;
    DROP TABLE tax_rates; DROP TABLE invoice_number_sequences;`);
}
