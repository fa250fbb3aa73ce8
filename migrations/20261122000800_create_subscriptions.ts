import type { Knex } from 'knex';

/** A subscription puts a line on a plan. `period_anchor` fixes the day cycles start from;
 * `current_period_*` is the cycle in force and `next_charge_at` when the billing run renews it. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('subscriptions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('subscriber_id').notNullable().references('subscribers.id');
    t.uuid('plan_id').notNullable().references('plans.id');
    t.uuid('offer_id').references('offers.id');
    t.text('state').notNullable().checkIn(['scheduled', 'active', 'ended'], 'subscriptions_state_check');
    t.timestamp('period_anchor', { useTz: true }).notNullable();
    t.timestamp('current_period_start', { useTz: true }).notNullable();
    t.timestamp('current_period_end', { useTz: true }).notNullable();
    t.date('next_charge_on').notNullable();
    t.timestamp('started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('ended_at', { useTz: true });
    t.index(['subscriber_id']);
  });
  await knex.raw(`ALTER TABLE subscriptions
    ADD CONSTRAINT subscriptions_period_check CHECK (current_period_end > current_period_start),
    ADD CONSTRAINT subscriptions_ended_check CHECK ((state = 'ended') = (ended_at IS NOT NULL))`);
  await knex.raw(`CREATE UNIQUE INDEX subscriptions_one_active_uq ON subscriptions (subscriber_id) WHERE state = 'active'`);
  await knex.raw(`CREATE INDEX subscriptions_due_idx ON subscriptions (next_charge_on, id) WHERE state = 'active'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('subscriptions');
}
