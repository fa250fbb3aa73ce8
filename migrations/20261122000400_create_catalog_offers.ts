import type { Knex } from 'knex';

/** Promotional offers attached to a plan for a validity window: a discount for N cycles, bonus
 * allowances or a free trial. Parameters per kind live in `terms` and are validated by the catalog. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('offers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('code').notNullable().unique();
    t.uuid('plan_id').notNullable().references('plans.id');
    t.text('name').notNullable();
    t.text('kind').notNullable().checkIn(['discount_percent', 'discount_fixed', 'bonus_allowance', 'free_trial'], 'offers_kind_check');
    t.jsonb('terms').notNullable().defaultTo('{}');
    t.integer('cycles');
    t.timestamp('valid_from', { useTz: true }).notNullable();
    t.timestamp('valid_until', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['plan_id']);
  });
  await knex.raw(`ALTER TABLE offers
    ADD CONSTRAINT offers_code_check CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    ADD CONSTRAINT offers_validity_check CHECK (valid_until > valid_from),
    ADD CONSTRAINT offers_cycles_check CHECK (cycles IS NULL OR cycles > 0),
    ADD CONSTRAINT offers_terms_check CHECK (jsonb_typeof(terms) = 'object')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('offers');
}
