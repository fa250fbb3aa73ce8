/** A charging engine per database for the money movements billing and payments make outside the
 * network hot path (top-ups, vouchers, recurring fees): its own small pool on the same database, so
 * its large batches never queue behind the charging API's, with the same locks and lock order. */
import type { Knex } from 'knex';
import type { Pool } from 'pg';
import { createPgPool } from '../../platform/database';
import { createChargingEngine, type ChargingEngine } from '../charging/charging-engine';

const engines = new WeakMap<Knex, { engine: ChargingEngine; pool: Pool }>();

export function sharedEngineFor(db: Knex): ChargingEngine {
  let e = engines.get(db);
  if (!e) {
    const pool = createPgPool(db, { max: 3, applicationName: 'mvno-bss-billing' });
    e = { engine: createChargingEngine({ pool, maxBatch: 2000, concurrency: 2 }), pool };
    engines.set(db, e);
  }
  return e.engine;
}

export async function closeSharedEngine(db: Knex): Promise<void> {
  const e = engines.get(db);
  if (!e) return;
  engines.delete(db);
  await e.engine.close();
  await e.pool.end();
}
