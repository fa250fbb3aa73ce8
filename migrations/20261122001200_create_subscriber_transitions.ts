import type { Knex } from 'knex';

/** Every lifecycle transition of a line, keyed by the workflow's transition id so a retried
 * activity writes it once; the audit trail behind the subscriber's state. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('subscriber_transitions', (t) => {
    t.text('id').primary();
    t.uuid('subscriber_id').notNullable().references('subscribers.id');
    t.text('action').notNullable();
    t.text('from_state');
    t.text('to_state').notNullable();
    t.text('reason');
    t.text('actor').notNullable();
    t.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['subscriber_id', 'occurred_at']);
  });
  await knex.raw(`CREATE TRIGGER subscriber_transitions_append_only BEFORE UPDATE OR DELETE ON subscriber_transitions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('subscriber_transitions');
}
