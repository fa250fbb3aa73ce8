import http from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { Knex } from 'knex';
import { createChargingEngine, type ChargingEngine } from '../domain/charging/charging-engine';
import { cachedApiKeyResolver } from '../domain/access/api-keys.repository';
import type { Config } from '../platform/config';
import { loadConfig } from '../platform/config';
import { createDatabase, createPgPool } from '../platform/database';
import { createLogger, type Logger } from '../platform/logger';
import { createMetrics } from '../platform/metrics';
import { createApp } from './app';

/** The API's own charging engine for the money it moves (balance adjustments): a small pool of its
 * own on the same database, so an adjustment takes the same row locks as the charging hot path. */
function createApiChargingEngine(db: Knex): { engine: ChargingEngine; close(): Promise<void> } {
  const pool = createPgPool(db, { max: 2, applicationName: 'mvno-bss-api-charging' });
  // No line cache: the API moves wallets only, and the cache would hold a LISTEN connection.
  const engine = createChargingEngine({ pool, concurrency: 1, cache: false });
  return { engine, close: async () => { await engine.close(); await pool.end(); } };
}

/** Starts the GraphQL API (and health/metrics) on config.api.host:port. */
export async function startApiServer(deps: { config: Config; db: Knex; temporal: Client; logger: Logger }): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const resolveRole = cachedApiKeyResolver(deps.db);
  const charging = createApiChargingEngine(deps.db);
  const app = createApp({
    ...deps,
    chargingEngine: charging.engine,
    metrics: createMetrics(),
    resolveApiKey: async (key) => {
      const role = await resolveRole(key);
      return role ? { role, actor: `api-key:${key.slice(0, 10)}` } : undefined;
    },
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `GraphQL API: port ${deps.config.api.port} is already in use (set API_PORT)` : `GraphQL API: ${err.message}`)),
    );
    server.listen(deps.config.api.port, deps.config.api.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : deps.config.api.port;
  return {
    url: `http://${deps.config.api.host}:${port}`,
    server,
    close: async () => {
      await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
      await charging.close();
    },
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: 'api' });
  if (!config.databaseUrl || !config.temporal.address) throw new Error('api: DATABASE_URL and TEMPORAL_ADDRESS are required');
  const db = createDatabase(config.databaseUrl, { applicationName: 'mvno-bss-api' });
  const connection = await Connection.connect({ address: config.temporal.address });
  const temporal = new Client({ connection, namespace: config.temporal.namespace });
  const api = await startApiServer({ config, db, temporal, logger });
  logger.info({ url: `${api.url}/graphql` }, 'API listening');
  const stop = async () => {
    await api.close();
    await connection.close();
    await db.destroy();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
