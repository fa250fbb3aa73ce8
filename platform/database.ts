import knexFactory, { type Knex } from 'knex';
import path from 'node:path';
import { Pool } from 'pg';

export type Database = Knex;

/** Knex is used for migrations and most queries; the charging hot path takes raw pg clients from
 * the same pool. int8 and numeric stay strings from pg; repository mappers convert them to bigint. */
export function createDatabase(url: string, options: { poolMax?: number; applicationName?: string } = {}): Database {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: options.applicationName ?? 'mvno-bss' },
    pool: { min: 0, max: options.poolMax ?? 10 },
    migrations: migrationConfig(),
  });
}

/** A plain pg pool (the charging engine takes raw clients) on the database `database` talks to, or on
 * a URL. The server may drop an idle client (a restart, a shutdown, pg_terminate_backend): pg-pool
 * discards it and emits 'error', which, with no listener, ends the process — so every pool gets one;
 * `onIdleError` only reports it. */
export function createPgPool(database: Database | string, options: { max: number; applicationName: string; onIdleError?: (err: Error) => void }): Pool {
  const connectionString = typeof database === 'string'
    ? database
    : (database.client.config as { connection: { connectionString: string } }).connection.connectionString;
  const pool = new Pool({ connectionString, max: options.max, application_name: options.applicationName });
  pool.on('error', options.onIdleError ?? (() => undefined));
  return pool;
}

export function migrationConfig(): Knex.MigratorConfig {
  return {
    directory: path.resolve(__dirname, '..', 'migrations'),
    loadExtensions: ['.ts', '.js'],
    tableName: 'knex_migrations',
  };
}

export async function migrateToLatest(db: Database): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig())) as [number, string[]];
  return applied;
}

/** Readiness probe: a round trip, not just a pooled connection. */
export async function databaseReachable(db: Database): Promise<boolean> {
  try {
    await db.raw('select 1');
    return true;
  } catch {
    return false;
  }
}
