import type { Knex } from 'knex';

/** A billing account pays for one or more lines. Family and business accounts are parents whose
 * child accounts share its pools and its bill. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('billing_accounts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('customer_id').notNullable().references('customers.id');
    t.uuid('parent_account_id').references('billing_accounts.id');
    t.text('payment_type').notNullable().checkIn(['prepaid', 'postpaid', 'hybrid'], 'billing_accounts_payment_type_check');
    t.specificType('currency', 'char(3)').notNullable();
    t.bigInteger('credit_limit_minor').notNullable().defaultTo(0);
    t.smallint('billing_day').notNullable().defaultTo(1);
    t.text('status').notNullable().defaultTo('active').checkIn(['active', 'closed'], 'billing_accounts_status_check');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['customer_id']);
    t.index(['parent_account_id']);
  });
  await knex.raw(`ALTER TABLE billing_accounts
    ADD CONSTRAINT billing_accounts_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    ADD CONSTRAINT billing_accounts_credit_limit_check CHECK (credit_limit_minor >= 0),
    ADD CONSTRAINT billing_accounts_prepaid_no_credit_check CHECK (payment_type <> 'prepaid' OR credit_limit_minor = 0),
    ADD CONSTRAINT billing_accounts_billing_day_check CHECK (billing_day BETWEEN 1 AND 28),
    ADD CONSTRAINT billing_accounts_not_own_parent_check CHECK (parent_account_id IS NULL OR parent_account_id <> id)`);
  await knex.raw('CREATE INDEX billing_accounts_created_at_id_idx ON billing_accounts (created_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('billing_accounts');
}
