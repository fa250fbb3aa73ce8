/**
 * Runs the Nchf charging endpoint as its own process (it scales separately from the GraphQL API):
 *
 *   DATABASE_URL=postgres://… npx tsx api/charging/main.ts
 *
 * Environment: CHARGING_HOST (127.0.0.1), CHARGING_PORT (4100; 0 = any free port),
 * CHARGING_POOL_MAX (8), CHARGING_CONCURRENCY (parallel batches, 4), CHARGING_MAX_BATCH (256),
 * CHARGING_VALIDITY_SEC (grant validity, 3600), CHARGING_SWEEP_GRACE_SEC (30),
 * CHARGING_SWEEP_INTERVAL_MS (5000), CHARGING_HOME_MCCS (comma separated, 262),
 * CHARGING_SEAL_INTERVAL_MS (journal sealing, 60000; 0 = off — run it in one process only if you
 * prefer, concurrent sealers are safe).
 * API keys are checked against the `api_keys` table (SHA-256 of the key, role network or admin).
 * Prints `charging listening on <host>:<port>` when ready; SIGTERM/SIGINT drain and exit.
 */
import crypto from 'node:crypto';
import type { Pool } from 'pg';
import { createLogger } from '../../platform/logger';
import { createDatabase, createPgPool } from '../../platform/database';
import { startJournalSealer } from '../../domain/ledger/journal-seal';
import { createChargingEngine } from '../../domain/charging/charging-engine';
import { startSweeper } from '../../domain/charging/sweeper';
import { createChargingServer } from './nchf-charging.server';

/** `Authorization: Bearer <key>` → the key's role from the api_keys table (SHA-256 of the key). */
export function apiKeyAuthenticator(pool: Pool): (header: string | undefined) => Promise<string | undefined> {
  return async (header) => {
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) return undefined;
    const hash = crypto.createHash('sha256').update(m[1], 'utf8').digest('hex');
    const res = await pool.query({ name: 'charging_api_key_v1', text: 'SELECT role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL', values: [hash] });
    return res.rows[0]?.role;
  };
}

export interface ChargingServiceOptions {
  databaseUrl: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  env?: NodeJS.ProcessEnv;
  log?: ReturnType<typeof createLogger>;
}

export interface ChargingService {
  url: string;
  port: number;
  /** Stops taking requests, drains the engine, stops the sweeper and the sealer, ends the pool. */
  close(): Promise<void>;
}

/** The Nchf endpoint with its engine, sweeper and journal sealer: run standalone by `main` below and
 * in-process by `npm start`. Settings come from the CHARGING_* variables (see the header). */
export async function startChargingService(options: ChargingServiceOptions): Promise<ChargingService> {
  const e = options.env ?? process.env;
  const log = options.log ?? createLogger({ name: 'charging' });
  const env = (name: string, fallback: number) => (e[name] ? Number(e[name]) : fallback);
  const url = options.databaseUrl;
  const pool = createPgPool(url, { max: env('CHARGING_POOL_MAX', 8), applicationName: 'mvno-bss-charging', onIdleError: (err) => log.error({ err }, 'idle database connection failed') });
  const engine = createChargingEngine({
    pool,
    concurrency: env('CHARGING_CONCURRENCY', 4),
    maxBatch: env('CHARGING_MAX_BATCH', 256),
    policy: { validityTimeSec: env('CHARGING_VALIDITY_SEC', 3600), sweepGraceSec: env('CHARGING_SWEEP_GRACE_SEC', 30) },
  });
  const sweeper = startSweeper({ engine, pool, intervalMs: env('CHARGING_SWEEP_INTERVAL_MS', 5000), onError: (err) => log.error({ err }, 'sweep failed') });
  const sealInterval = env('CHARGING_SEAL_INTERVAL_MS', 60_000);
  const sealDb = sealInterval > 0 ? createDatabase(url, { poolMax: 2, applicationName: 'mvno-bss-journal-sealer' }) : null;
  const sealer = sealDb ? startJournalSealer(sealDb, {
    intervalMs: sealInterval,
    onSeal: (r) => log.info({ seals: r.seals, entries: r.entries, head: r.head }, 'journal sealed'),
    onError: (err) => log.error({ err }, 'journal sealing failed'),
  }) : null;
  const server = createChargingServer({
    engine,
    authenticate: apiKeyAuthenticator(pool),
    homeMccs: (e.CHARGING_HOME_MCCS ?? '262').split(',').map((x) => x.trim()).filter(Boolean),
    onError: (err) => log.error({ err }, 'charging request failed'),
  });
  const host = options.host ?? e.CHARGING_HOST ?? '127.0.0.1';
  let port: number;
  try {
    port = await server.listen(options.port ?? env('CHARGING_PORT', 4100), host);
  } catch (err) {
    await sweeper.stop();
    await sealer?.stop();
    await sealDb?.destroy();
    await engine.close();
    await pool.end();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () => (closing ??= (async () => {
      await server.close();
      await sweeper.stop();
      await sealer?.stop();
      await sealDb?.destroy();
      await engine.close();
      await pool.end();
    })()),
  };
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is required');
  const service = await startChargingService({ databaseUrl: url });
  process.stdout.write(`charging listening on ${service.url.replace('http://', '')}\n`);
  const stop = async () => {
    await service.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`charging: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
