import type { Knex } from 'knex';

/** The fast-read view of the ledger for what charging decides on: one monetary wallet per billing
 * account and allowance buckets per subscription or per account (shared pools). Balances here are
 * kept in step with the postings in the same transaction; a check recomputes them from the
 * postings. The checks make overspending impossible in the database itself: what is held by open
 * reservations plus what is spent can never pass the balance (and, for wallets, the credit limit). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('wallets', (t) => {
    t.bigInteger('ledger_account_id').primary().references('ledger_accounts.id');
    t.uuid('billing_account_id').notNullable().unique().references('billing_accounts.id');
    t.specificType('currency', 'char(3)').notNullable();
    t.bigInteger('balance_micros').notNullable().defaultTo(0);
    t.bigInteger('reserved_micros').notNullable().defaultTo(0);
    t.bigInteger('credit_limit_micros').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE wallets
    ADD CONSTRAINT wallets_reserved_check CHECK (reserved_micros >= 0),
    ADD CONSTRAINT wallets_credit_limit_check CHECK (credit_limit_micros >= 0),
    ADD CONSTRAINT wallets_no_overspend_check CHECK (balance_micros - reserved_micros >= -credit_limit_micros)`);

  await knex.schema.createTable('buckets', (t) => {
    t.bigInteger('ledger_account_id').primary().references('ledger_accounts.id');
    t.uuid('billing_account_id').notNullable().references('billing_accounts.id');
    t.uuid('subscription_id').references('subscriptions.id');
    t.text('service').notNullable().checkIn(['data', 'voice', 'sms', 'money'], 'buckets_service_check');
    t.text('unit').notNullable();
    t.bigInteger('initial_units').notNullable();
    t.bigInteger('balance_units').notNullable();
    t.bigInteger('reserved_units').notNullable().defaultTo(0);
    t.integer('priority').notNullable().defaultTo(100);
    t.timestamp('valid_from', { useTz: true }).notNullable();
    t.timestamp('valid_until', { useTz: true }).notNullable();
    t.boolean('rollover').notNullable().defaultTo(false);
    t.text('source').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE buckets
    ADD CONSTRAINT buckets_initial_check CHECK (initial_units >= 0),
    ADD CONSTRAINT buckets_reserved_check CHECK (reserved_units >= 0),
    ADD CONSTRAINT buckets_no_overspend_check CHECK (balance_units - reserved_units >= 0),
    ADD CONSTRAINT buckets_validity_check CHECK (valid_until > valid_from),
    ADD CONSTRAINT buckets_unit_check CHECK (unit ~ '^[A-Z]{3}$' OR unit IN ('bytes', 'seconds', 'messages'))`);
  // Charging looks buckets up per subscription and per account pool, in consumption order.
  await knex.raw(`CREATE INDEX buckets_subscription_idx ON buckets (subscription_id, service, priority, valid_until) WHERE subscription_id IS NOT NULL`);
  await knex.raw(`CREATE INDEX buckets_pool_idx ON buckets (billing_account_id, service, priority, valid_until) WHERE subscription_id IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('buckets');
  await knex.schema.dropTable('wallets');
}
