import type { Knex } from 'knex';

/** API keys carry one role. Only a SHA-256 of the key is stored (keys are 256-bit random, so a
 * slow hash adds nothing); the key is shown once when created. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.text('role').notNullable()
      .checkIn(['admin', 'storefront', 'integrator', 'support', 'finance', 'network'], 'api_keys_role_check');
    t.text('key_hash').notNullable().unique();
    t.text('key_prefix').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('revoked_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
