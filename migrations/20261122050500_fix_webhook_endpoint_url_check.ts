import type { Knex } from 'knex';

/** The URL check of `webhook_endpoints` was written with a bare `?`, which knex takes for a binding
 * placeholder; this replaces it with the intended check (http or https URLs). */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_url_check`);
  await knex.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_url_check CHECK (url ~ '^https\\?://[^ ]+$')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_url_check`);
  await knex.raw(`ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_url_check CHECK (url ~ '^https\\?://')`);
}
