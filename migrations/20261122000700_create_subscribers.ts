import type { Knex } from 'knex';

/** A subscriber is one line. Its lifecycle state is written only by the subscriber workflow's
 * activities; a number and a SIM belong to at most one line that is not terminated. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('subscribers', (t) => {
    t.uuid('id').primary();
    t.uuid('billing_account_id').notNullable().references('billing_accounts.id');
    t.text('msisdn').notNullable();
    t.uuid('sim_id').references('sims.id');
    t.text('state').notNullable().checkIn(['pending', 'active', 'suspended', 'terminated'], 'subscribers_state_check');
    t.text('suspend_reason');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('activated_at', { useTz: true });
    t.timestamp('terminated_at', { useTz: true });
    t.index(['billing_account_id']);
  });
  await knex.raw(`ALTER TABLE subscribers
    ADD CONSTRAINT subscribers_msisdn_check CHECK (msisdn ~ '^[1-9][0-9]{6,14}$'),
    ADD CONSTRAINT subscribers_suspend_reason_check CHECK (
      (state = 'suspended') = (suspend_reason IS NOT NULL)
      AND (suspend_reason IS NULL OR suspend_reason IN ('non_payment', 'customer_request', 'fraud', 'lost_sim'))),
    ADD CONSTRAINT subscribers_terminated_at_check CHECK ((state = 'terminated') = (terminated_at IS NOT NULL))`);
  await knex.raw(`CREATE UNIQUE INDEX subscribers_live_msisdn_uq ON subscribers (msisdn) WHERE state <> 'terminated'`);
  await knex.raw(`CREATE UNIQUE INDEX subscribers_live_sim_uq ON subscribers (sim_id) WHERE state <> 'terminated' AND sim_id IS NOT NULL`);
  await knex.raw('CREATE INDEX subscribers_created_at_id_idx ON subscribers (created_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('subscribers');
}
