import type { Knex } from 'knex';

/** One row per SIM batch import: what was taken and which rows were refused, and why. Transitions
 * of lines also carry details now (plan change, transfer, SIM swap). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sim_import_batches', (t) => {
    t.text('batch_ref').primary();
    t.text('form').notNullable().checkIn(['physical', 'esim'], 'sim_import_batches_form_check');
    t.integer('imported').notNullable();
    t.jsonb('rejected').notNullable().defaultTo('[]');
    t.text('actor').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.alterTable('subscriber_transitions', (t) => {
    t.jsonb('details');
  });
  await knex.raw(`CREATE INDEX sims_available_form_idx ON sims (form, iccid) WHERE state = 'available'`);
  await knex.raw(`CREATE INDEX msisdns_quarantine_idx ON msisdns (quarantined_until) WHERE state = 'quarantined'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS msisdns_quarantine_idx');
  await knex.raw('DROP INDEX IF EXISTS sims_available_form_idx');
  await knex.schema.alterTable('subscriber_transitions', (t) => {
    t.dropColumn('details');
  });
  await knex.schema.dropTable('sim_import_batches');
}
