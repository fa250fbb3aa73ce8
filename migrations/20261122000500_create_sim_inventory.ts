import type { Knex } from 'knex';

/** SIM inventory, physical and eSIM. The card's secret keys never enter this database: only a
 * reference to where the key is held (an HSM or the vendor's key file). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sims', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('iccid').notNullable().unique();
    t.text('imsi').notNullable().unique();
    t.text('form').notNullable().checkIn(['physical', 'esim'], 'sims_form_check');
    t.text('state').notNullable().defaultTo('available')
      .checkIn(['available', 'reserved', 'active', 'suspended', 'retired'], 'sims_state_check');
    t.text('batch_ref');
    t.text('pin');
    t.text('puk');
    t.text('key_reference');
    t.text('eid');
    t.text('reserved_for');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE sims
    ADD CONSTRAINT sims_iccid_check CHECK (iccid ~ '^89[0-9]{16,18}$'),
    ADD CONSTRAINT sims_imsi_check CHECK (imsi ~ '^[0-9]{14,15}$'),
    ADD CONSTRAINT sims_pin_check CHECK (pin IS NULL OR pin ~ '^[0-9]{4,8}$'),
    ADD CONSTRAINT sims_puk_check CHECK (puk IS NULL OR puk ~ '^[0-9]{8}$'),
    ADD CONSTRAINT sims_eid_check CHECK (eid IS NULL OR eid ~ '^[0-9]{32}$'),
    ADD CONSTRAINT sims_reserved_has_holder_check CHECK (state <> 'reserved' OR reserved_for IS NOT NULL)`);
  await knex.raw(`CREATE INDEX sims_available_idx ON sims (form, created_at) WHERE state = 'available'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sims');
}
