import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config';
import { loadConfig } from './config';
import { createDatabase, migrateToLatest, type Database } from './database';
import { ensureDatabase, startEmbeddedPostgres } from './embedded-postgres';
import { ensureTemporalCli } from './temporal-cli';
import { startTemporalDevServer } from './temporal-dev-server';
import type { Logger } from './logger';

export const EMBEDDED_DATABASE = 'mvno';

export function embeddedDatabaseUrl(config: Config = loadConfig()): string {
  return `postgres://postgres:postgres@127.0.0.1:${config.embedded.postgresPort}/${EMBEDDED_DATABASE}`;
}

export interface Stack {
  db: Database;
  databaseUrl: string;
  temporal: Client;
  temporalAddress: string;
  temporalUiUrl?: string;
  nativeConnection: NativeConnection;
  /** Stops what was started, newest first. */
  stop(): Promise<void>;
  onStop(fn: () => Promise<void>): void;
}

export class ComponentStartError extends Error {
  constructor(readonly component: string, cause: unknown) {
    super(`${component} failed to start: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

async function step<T>(component: string, logger: Logger, fn: () => Promise<T>): Promise<T> {
  logger.info(`starting ${component}…`);
  try {
    return await fn();
  } catch (err) {
    throw err instanceof ComponentStartError ? err : new ComponentStartError(component, err);
  }
}

/** Database and Temporal: embedded unless DATABASE_URL / TEMPORAL_ADDRESS point at real servers. */
export async function startInfrastructure(config: Config, logger: Logger): Promise<Stack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.error({ err }, 'error while stopping');
      }
    }
    stops.length = 0;
  };
  try {
    fs.mkdirSync(config.embedded.dataDir, { recursive: true });
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      const pg = await step('PostgreSQL (embedded)', logger, () =>
        startEmbeddedPostgres({ dataDir: path.join(config.embedded.dataDir, 'postgres'), port: config.embedded.postgresPort, onLog: (l) => logger.debug({ component: 'postgres' }, l) }),
      );
      stops.push(() => pg.stop());
      await ensureDatabase(pg.url, EMBEDDED_DATABASE);
      databaseUrl = embeddedDatabaseUrl(config);
    }
    const db = createDatabase(databaseUrl, { poolMax: 20 });
    stops.push(() => db.destroy());
    const applied = await step('database migrations', logger, () => migrateToLatest(db));
    if (applied.length) logger.info(`applied ${applied.length} migrations`);

    let temporalAddress = config.temporal.address;
    let temporalUiUrl: string | undefined;
    if (!temporalAddress) {
      const cliPath = await step('Temporal CLI', logger, () => ensureTemporalCli((line) => logger.info(line)));
      const server = await step('Temporal dev server', logger, () =>
        startTemporalDevServer({
          cliPath,
          port: config.embedded.temporalPort,
          uiPort: config.embedded.temporalUiPort,
          dbFile: path.join(config.embedded.dataDir, 'temporal.db'),
          pidFile: path.join(config.embedded.dataDir, 'temporal.pid'),
          namespace: config.temporal.namespace,
          onLog: (l) => logger.debug({ component: 'temporal' }, l),
        }),
      );
      stops.push(() => server.stop());
      temporalAddress = server.address;
      temporalUiUrl = server.uiUrl;
    }
    const connection = await step('Temporal client', logger, () => Connection.connect({ address: temporalAddress! }));
    stops.push(() => connection.close());
    const nativeConnection = await step('Temporal worker connection', logger, () => NativeConnection.connect({ address: temporalAddress! }));
    stops.push(() => nativeConnection.close());
    const temporal = new Client({ connection, namespace: config.temporal.namespace });
    return { db, databaseUrl, temporal, temporalAddress, temporalUiUrl, nativeConnection, stop, onStop: (fn) => stops.push(fn) };
  } catch (err) {
    await stop();
    throw err;
  }
}
