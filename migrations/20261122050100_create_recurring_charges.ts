import type { Knex } from 'knex';

/** Recurring charges: one row per subscription and billing period, written by the billing run in
 * set-based batches. The unique index on (subscription_id, period_start) is what makes a rerun of a
 * billing run charge nothing twice. `status` follows the money: pending (claimed, not yet debited) →
 * charged | waived (nothing to pay: free trial, 100 % discount) | insufficient (prepaid without the
 * balance: in grace until `grace_until`, retried after a top-up) → charged | suspended. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE recurring_charges (
      id bigserial PRIMARY KEY,
      subscription_id uuid NOT NULL REFERENCES subscriptions(id),
      subscriber_id uuid NOT NULL,
      billing_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      payer_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      plan_id uuid NOT NULL REFERENCES plans(id),
      offer_id uuid REFERENCES offers(id),
      payment_type text NOT NULL CHECK (payment_type IN ('prepaid', 'postpaid', 'hybrid')),
      cycle integer NOT NULL CHECK (cycle >= 1),
      cycle_date date NOT NULL,
      period_start timestamptz NOT NULL,
      period_end timestamptz NOT NULL,
      currency char(3) NOT NULL,
      fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
      discount_minor bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0 AND discount_minor <= fee_minor),
      amount_minor bigint GENERATED ALWAYS AS (fee_minor - discount_minor) STORED,
      status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'charged', 'waived', 'insufficient', 'suspended', 'lapsed')),
      grace_until date,
      journal_entry_id bigint,
      allowances_granted boolean NOT NULL DEFAULT false,
      attempts integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT recurring_charges_period_check CHECK (period_end > period_start)
    )`);
  await knex.raw(`CREATE UNIQUE INDEX recurring_charges_period_uq ON recurring_charges (subscription_id, period_start)`);
  await knex.raw(`CREATE INDEX recurring_charges_open_idx ON recurring_charges (payer_account_id, id) WHERE status IN ('pending', 'insufficient')`);
  await knex.raw(`CREATE INDEX recurring_charges_grace_idx ON recurring_charges (grace_until, id) WHERE status = 'insufficient'`);
  await knex.raw(`CREATE INDEX recurring_charges_cycle_date_idx ON recurring_charges (cycle_date, id)`);

  await knex.raw(`
    CREATE TABLE billing_runs (
      cycle_date date PRIMARY KEY,
      status text NOT NULL CHECK (status IN ('running', 'completed')),
      claimed integer NOT NULL DEFAULT 0,
      charged integer NOT NULL DEFAULT 0,
      waived integer NOT NULL DEFAULT 0,
      insufficient integer NOT NULL DEFAULT 0,
      suspended integer NOT NULL DEFAULT 0,
      started_at timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE billing_runs');
  await knex.raw('DROP TABLE recurring_charges');
}
