import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('customers', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('kind').notNullable().checkIn(['individual', 'business'], 'customers_kind_check');
    t.text('name').notNullable();
    t.text('email');
    t.text('external_ref').unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE customers ADD CONSTRAINT customers_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 200)`);
  await knex.raw(`ALTER TABLE customers ADD CONSTRAINT customers_email_check CHECK (email IS NULL OR email ~ '^[^@\\s]+@[^@\\s]+$')`);
  await knex.raw('CREATE INDEX customers_created_at_id_idx ON customers (created_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('customers');
}
