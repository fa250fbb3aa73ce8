import type { Knex } from 'knex';

/**
 * `uuid_v7()`: time-ordered UUIDs (RFC 9562, version 7), the layout PostgreSQL 18's built-in
 * `uuidv7()` has, for PostgreSQL 17: 48 bits of Unix time in milliseconds, the version, 12 bits of
 * sub-millisecond time (where PostgreSQL 18 puts them too, so one session's ids ascend), the variant,
 * and 62 random bits from `gen_random_uuid()`.
 *
 * Why (migration …130200 makes it the default id of the tables that grow with the subscriber base):
 * a random (v4) key puts every new row's index entry on a random leaf page, and rows created
 * together — a customer, its billing account, its subscription — end up at ids unrelated to each
 * other's. Work that walks ids in order (the billing run's keyset over subscriptions) then lands on
 * a different page of every table and index for almost every row. Time-ordered ids keep what was
 * created together close in each index, as the heap already does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION uuid_v7() RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
    DECLARE
      us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    BEGIN
      -- Bytes 0–5 the milliseconds, byte 6 the version (7) and with byte 7 the sub-millisecond
      -- fraction in 4096ths; bytes 8–15 stay gen_random_uuid()'s (its variant bits included).
      RETURN encode(overlay(uuid_send(gen_random_uuid())
                            PLACING int8send(((us / 1000) << 16) | 28672 | ((us % 1000) * 4096 / 1000)) FROM 1 FOR 8), 'hex')::uuid;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION uuid_v7()');
}
