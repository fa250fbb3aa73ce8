import request from 'supertest';
import type { Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { Pool } from 'pg';
import { createApp } from '../../api/app';
import { createApiKey, cachedApiKeyResolver } from '../../domain/access/api-keys.repository';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { ROLES, type Role } from '../../domain/access/roles';
import { loadConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { createMetrics } from '../../platform/metrics';
import { createTestDatabase } from '../support/services';
import { startTestWorker } from '../support/temporal';

/** The real Express app over a real database and Temporal, with one API key per role. */
export async function buildTestApi(
  db: Knex, temporal: Client, taskQueue: string, env: Record<string, string> = {}, options: { chargingEngine?: ChargingEngine } = {},
) {
  const config = loadConfig({ NODE_ENV: 'test', TEMPORAL_TASK_QUEUE: taskQueue, ...env });
  const resolve = cachedApiKeyResolver(db, 0);
  const app = createApp({
    config,
    db,
    temporal,
    chargingEngine: options.chargingEngine,
    logger: createLogger({ level: 'silent' }),
    metrics: createMetrics(),
    resolveApiKey: async (key) => {
      const role = await resolve(key);
      return role ? { role, actor: `test:${role}` } : undefined;
    },
  });
  const keys = {} as Record<Role, string>;
  for (const role of ROLES) keys[role] = (await createApiKey(db, { name: `test ${role}`, role })).key;
  const gql = (role: Role | null, query: string, variables?: Record<string, unknown>) => {
    const r = request(app).post('/graphql').set('Content-Type', 'application/json');
    if (role) r.set('Authorization', `Bearer ${keys[role]}`);
    return r.send({ query, variables });
  };
  return { app, keys, gql, config };
}

/** A database, a worker and the API (with its own charging engine, as `api/server.ts` builds it) for
 * one test file, set up in beforeAll and torn down in afterAll. */
export function useApiTestStack() {
  const stack = {} as {
    t: Awaited<ReturnType<typeof createTestDatabase>>;
    temporal: Awaited<ReturnType<typeof startTestWorker>>;
    pool: Pool;
    engine: ChargingEngine;
    api: Awaited<ReturnType<typeof buildTestApi>>;
  };
  beforeAll(async () => {
    stack.t = await createTestDatabase();
    stack.temporal = await startTestWorker(stack.t.db);
    stack.pool = new Pool({ connectionString: stack.t.url, max: 2 });
    stack.engine = createChargingEngine({ pool: stack.pool, concurrency: 1, cache: false });
    stack.api = await buildTestApi(stack.t.db, stack.temporal.client, stack.temporal.taskQueue, {}, { chargingEngine: stack.engine });
  });
  afterAll(async () => {
    await stack.engine?.close();
    await stack.pool?.end();
    await stack.temporal?.stop();
    await stack.t?.drop();
  });
  return stack;
}
