import type { Knex } from 'knex';

/** Payments side: saved payment methods per billing account, top-ups (one per idempotency key),
 * payments taken at the gateway, vouchers (only a hash of the PIN is stored), auto top-up settings,
 * and inbound gateway webhook events (the primary key applies each event id once). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE payment_methods (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      billing_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      gateway text NOT NULL,
      customer_ref text NOT NULL,
      payment_method_ref text NOT NULL,
      brand text,
      last4 text,
      is_default boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, payment_method_ref)
    );
    CREATE UNIQUE INDEX payment_methods_default_uq ON payment_methods (billing_account_id) WHERE is_default;

    CREATE TABLE top_ups (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      idempotency_key text NOT NULL UNIQUE,
      billing_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      currency char(3) NOT NULL,
      source text NOT NULL CHECK (source IN ('card', 'auto', 'voucher')),
      status text NOT NULL CHECK (status IN ('pending', 'captured', 'credited', 'declined', 'failed', 'refunded')),
      payment_method_ref text,
      payment_ref text,
      refund_ref text,
      journal_entry_id bigint,
      error_code text,
      error_message text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX top_ups_account_idx ON top_ups (billing_account_id, created_at DESC);

    CREATE TABLE payments (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      gateway text NOT NULL,
      payment_ref text NOT NULL,
      billing_account_id uuid NOT NULL REFERENCES billing_accounts(id),
      purpose text NOT NULL CHECK (purpose IN ('top_up', 'invoice')),
      purpose_ref text NOT NULL,
      amount_minor bigint NOT NULL,
      currency char(3) NOT NULL,
      status text NOT NULL,
      refunded_minor bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (gateway, payment_ref)
    );
    CREATE INDEX payments_account_idx ON payments (billing_account_id, created_at DESC);

    CREATE TABLE voucher_batches (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      currency char(3) NOT NULL,
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      count integer NOT NULL CHECK (count > 0),
      expires_at timestamptz NOT NULL,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE vouchers (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      batch_id uuid NOT NULL REFERENCES voucher_batches(id),
      pin_hash bytea NOT NULL UNIQUE,
      serial text NOT NULL UNIQUE,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'redeemed', 'void')),
      redeemed_by_account_id uuid REFERENCES billing_accounts(id),
      redeemed_at timestamptz,
      journal_entry_id bigint,
      CONSTRAINT vouchers_redeemed_check CHECK ((status = 'redeemed') = (redeemed_at IS NOT NULL))
    );
    CREATE INDEX vouchers_batch_idx ON vouchers (batch_id);

    CREATE TABLE auto_top_up_settings (
      billing_account_id uuid PRIMARY KEY REFERENCES billing_accounts(id),
      enabled boolean NOT NULL DEFAULT true,
      threshold_minor bigint NOT NULL CHECK (threshold_minor >= 0),
      amount_minor bigint NOT NULL CHECK (amount_minor > 0),
      payment_method_id uuid NOT NULL REFERENCES payment_methods(id),
      last_event_id bigint,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE payment_webhook_events (
      gateway text NOT NULL,
      event_id text NOT NULL,
      event_type text NOT NULL,
      payment_ref text,
      payload jsonb NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (gateway, event_id)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE payment_webhook_events; DROP TABLE auto_top_up_settings; DROP TABLE vouchers; DROP TABLE voucher_batches;
    DROP TABLE payments; DROP TABLE top_ups; DROP TABLE payment_methods;`);
}
