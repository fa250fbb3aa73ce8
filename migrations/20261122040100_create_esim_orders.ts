import type { Knex } from 'knex';

/** eSIM orders placed with the SM-DP+ (ES2+), one per `esim-order:<id>` workflow. The row is the
 * billing-side mirror of the workflow: the ES2+ notification endpoint finds the order of an ICCID
 * here, and the inventory check compares it with the SIM and the line. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('esim_orders', (t) => {
    t.uuid('id').primary();
    t.uuid('subscriber_id').notNullable().references('subscribers.id');
    t.uuid('sim_id').notNullable().references('sims.id');
    t.text('iccid').notNullable();
    t.text('purpose').notNullable().checkIn(['activation', 'swap'], 'esim_orders_purpose_check');
    t.text('state').notNullable().defaultTo('ordering')
      .checkIn(['ordering', 'confirmed', 'downloaded', 'installed', 'completed', 'failed'], 'esim_orders_state_check');
    t.text('eid');
    t.text('matching_id');
    t.text('activation_code');
    t.text('failure_code');
    t.text('failure_message');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`CREATE INDEX esim_orders_iccid_idx ON esim_orders (iccid, created_at DESC)`);
  await knex.raw(`CREATE INDEX esim_orders_subscriber_idx ON esim_orders (subscriber_id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('esim_orders');
}
