import type { Knex } from 'knex';

/** The MVNO's number range: numbers are reserved on order, assigned on activation and quarantined
 * for a while after termination before they can be sold again. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('msisdns', (t) => {
    t.text('msisdn').primary();
    t.text('state').notNullable().defaultTo('available')
      .checkIn(['available', 'reserved', 'assigned', 'quarantined'], 'msisdns_state_check');
    t.text('reserved_for');
    t.timestamp('quarantined_until', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE msisdns
    ADD CONSTRAINT msisdns_msisdn_check CHECK (msisdn ~ '^[1-9][0-9]{6,14}$'),
    ADD CONSTRAINT msisdns_reserved_has_holder_check CHECK (state NOT IN ('reserved', 'assigned') OR reserved_for IS NOT NULL),
    ADD CONSTRAINT msisdns_quarantine_check CHECK (state <> 'quarantined' OR quarantined_until IS NOT NULL)`);
  await knex.raw(`CREATE INDEX msisdns_available_idx ON msisdns (msisdn) WHERE state = 'available'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('msisdns');
}
