import type { Knex } from 'knex';

/** Plans: how a line pays (payment type), what kind of product it is (category), its recurring fee
 * per billing period, the allowances each period includes, and the overage tariff (rates per
 * service and zone, as the rating engine reads them, in a jsonb document). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('plans', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('code').notNullable().unique();
    t.text('name').notNullable();
    t.text('payment_type').notNullable().checkIn(['prepaid', 'postpaid', 'hybrid'], 'plans_payment_type_check');
    t.text('category').notNullable().checkIn(['standard', 'data_only', 'family', 'promotional'], 'plans_category_check');
    t.specificType('currency', 'char(3)').notNullable();
    t.bigInteger('recurring_fee_minor').notNullable();
    t.text('billing_period_unit').notNullable().checkIn(['day', 'week', 'month'], 'plans_billing_period_unit_check');
    t.integer('billing_period_count').notNullable().defaultTo(1);
    t.jsonb('tariff').notNullable();
    t.text('status').notNullable().defaultTo('active').checkIn(['active', 'retired'], 'plans_status_check');
    t.timestamp('available_from', { useTz: true });
    t.timestamp('available_until', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE plans
    ADD CONSTRAINT plans_code_check CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    ADD CONSTRAINT plans_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    ADD CONSTRAINT plans_recurring_fee_check CHECK (recurring_fee_minor >= 0),
    ADD CONSTRAINT plans_billing_period_count_check CHECK (billing_period_count BETWEEN 1 AND 366),
    ADD CONSTRAINT plans_tariff_check CHECK (jsonb_typeof(tariff) = 'object'),
    ADD CONSTRAINT plans_availability_check CHECK (available_until IS NULL OR available_from IS NULL OR available_until > available_from)`);
  await knex.raw('CREATE INDEX plans_created_at_id_idx ON plans (created_at, id)');

  await knex.schema.createTable('plan_allowances', (t) => {
    t.uuid('plan_id').notNullable().references('plans.id').onDelete('CASCADE');
    t.text('service').notNullable().checkIn(['data', 'voice', 'sms', 'money'], 'plan_allowances_service_check');
    t.bigInteger('units').notNullable();
    t.boolean('shared').notNullable().defaultTo(false);
    t.boolean('rollover').notNullable().defaultTo(false);
    t.integer('priority').notNullable().defaultTo(100);
    t.primary(['plan_id', 'service']);
  });
  await knex.raw(`ALTER TABLE plan_allowances ADD CONSTRAINT plan_allowances_units_check CHECK (units > 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('plan_allowances');
  await knex.schema.dropTable('plans');
}
