/**
 * The reservation sweeper: returns the units of reservations whose validity time has passed
 * without the network reporting (a crashed SMF, a lost release, a killed charging process).
 * It finds them among open sessions old enough to have an expired hold (index on created_at of
 * open sessions: a hold expires a validity time after its grant, which is after the session's
 * creation) and releases them
 * through the engine, so it takes the same locks in the same order as the hot path. Several
 * sweepers (one per process) may run at once: each session is released once, under its lock.
 */
import type { Pool } from 'pg';
import type { ChargingEngine } from './charging-engine';

export interface SweeperOptions {
  engine: ChargingEngine;
  pool: Pool;
  intervalMs?: number;
  batchSize?: number;
  clock?: () => number;
  onError?: (err: unknown) => void;
}

export interface Sweeper {
  /** One pass: returns how many sessions had holds returned. */
  sweepOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function startSweeper(options: SweeperOptions): Sweeper {
  const { engine, pool } = options;
  const batchSize = options.batchSize ?? 500;
  const clock = options.clock ?? Date.now;
  const graceMs = engine.policy.sweepGraceSec * 1000;
  const validityMs = engine.policy.validityTimeSec * 1000;
  let running: Promise<number> | null = null;
  let stopped = false;

  const pass = async (): Promise<number> => {
    let total = 0;
    for (;;) {
      const cutoffMs = clock() - graceMs;
      const res = await pool.query({
        name: 'charging_sweep_v2',
        text: `SELECT charging_data_ref FROM charging_sessions
                WHERE state = 'open' AND created_at <= $2::timestamptz AND expires_at <= $1::timestamptz
                ORDER BY created_at LIMIT $3`,
        values: [new Date(cutoffMs).toISOString(), new Date(cutoffMs - validityMs).toISOString(), batchSize],
      });
      const refs = (res.rows as { charging_data_ref: string }[]).map((r) => r.charging_data_ref);
      if (refs.length === 0) break;
      const released = await engine.expireSessions(refs);
      total += released;
      if (refs.length < batchSize || released === 0 || stopped) break;
    }
    return total;
  };

  const sweepOnce = (): Promise<number> => {
    if (!running) running = pass().finally(() => { running = null; });
    return running;
  };

  const timer = setInterval(() => {
    sweepOnce().catch((err) => options.onError?.(err));
  }, options.intervalMs ?? 5_000);
  timer.unref();

  return {
    sweepOnce,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      if (running) await running.catch(() => undefined);
    },
  };
}
