/**
 * Crash safety: a charging server in a child process is killed with SIGKILL under load. Every
 * request it acknowledged must be in the database (its stored answer and its rated usage), and
 * the sweeper must return every reservation left open, leaving the ledger consistent.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine } from '../../domain/charging/charging-engine';
import { startSweeper } from '../../domain/charging/sweeper';
import { fundWallet, seedAccount, seedBucket, seedLine, seedPlan, type Line } from '../../domain/charging/testing/fixtures';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { NCHF_BASE } from './nchf-charging.server';
import { dataCreate, dataRelease, dataUpdate } from './testing/nchf-requests';

interface Ack {
  ref: string;
  seq: number;
  status: number;
  used: number;
}

function startServer(url: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'main.ts')], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, DATABASE_URL: url, CHARGING_PORT: '0', CHARGING_VALIDITY_SEC: '30', CHARGING_SWEEP_INTERVAL_MS: '3600000', LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /charging listening on [^:]+:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.stderr!.on('data', (d) => { err += d; });
    child.on('exit', (code) => reject(new Error(`charging server exited (${code}) before listening: ${err}`)));
  });
}

describe('SIGKILL of the charging server under load', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => { t = await createTestDatabase(); });
  afterAll(async () => { await t.drop(); });

  test('no acknowledged charge is lost and the sweeper returns every open reservation', async () => {
    const planId = await seedPlan(t.db);
    const family = await seedAccount(t.db, { paymentType: 'postpaid' });
    await seedBucket(t.db, { accountId: family, subscriptionId: null, service: 'data', units: 2_000_000_000n });
    const lines: Line[] = [];
    for (let i = 0; i < 16; i++) {
      const l = await seedLine(t.db, { planId, parentAccountId: i % 2 === 0 ? family : undefined });
      await fundWallet(t.db, l.accountId, 5_000_000n);
      lines.push(l);
    }
    const key = crypto.randomBytes(16).toString('hex');
    await t.db('api_keys').insert({ name: 'crash test', role: 'network', key_hash: crypto.createHash('sha256').update(key).digest('hex'), key_prefix: key.slice(0, 8) });

    const { child, port } = await startServer(t.url);
    const base = `http://127.0.0.1:${port}${NCHF_BASE}`;
    const acks: Ack[] = [];
    let dead = false;
    const post = async (url: string, body: unknown) => {
      const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, location: res.headers.get('location'), json: text ? JSON.parse(text) : null };
    };
    const worker = async (w: number) => {
      for (let n = 0; !dead; n++) {
        try {
          const line = lines[(w + n) % lines.length];
          const c = await post(base, dataCreate(`imsi-${line.imsi}`, { requested: 2_000_000, chargingId: w * 100_000 + n }));
          if (c.status !== 201) throw new Error(`create answered ${c.status}`);
          const ref = decodeURIComponent(c.location!.split('/').pop()!);
          acks.push({ ref, seq: 0, status: 201, used: 0 });
          for (let s = 1; s <= 3 && !dead; s++) {
            const used = 100_000 * (1 + ((w + s) % 7));
            const r = s < 3 ? await post(`${c.location}/update`, dataUpdate(s, used, { requested: 2_000_000 })) : await post(`${c.location}/release`, dataRelease(s, used));
            if (r.status >= 300) throw new Error(`answered ${r.status}: ${JSON.stringify(r.json)}`);
            acks.push({ ref, seq: s, status: r.status, used });
          }
        } catch (err) {
          if (!dead) throw err;
        }
      }
    };
    const workers = Array.from({ length: 24 }, (_, w) => worker(w));
    // Kill once enough charges are acknowledged (the machine may be loaded), never waiting forever.
    for (const deadline = Date.now() + 30_000; acks.length < 150 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    dead = true;
    child.kill('SIGKILL');
    await Promise.allSettled(workers);
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
    expect(child.signalCode).toBe('SIGKILL');
    expect(acks.length).toBeGreaterThan(100);

    // Every acknowledged answer and every acknowledged usage report is durable.
    const stored = await t.db('charging_requests').select('charging_data_ref', 'invocation_sequence_number', 'http_status');
    const answers = new Map(stored.map((r) => [`${r.charging_data_ref}#${r.invocation_sequence_number}`, r.http_status]));
    const lost = acks.filter((a) => answers.get(`${a.ref}#${a.seq}`) !== a.status);
    expect(lost).toEqual([]);
    const usage = await t.db('rated_usage').select('charging_data_ref', 'invocation_sequence_number', 'used_units');
    const used = new Map(usage.map((r) => [`${r.charging_data_ref}#${r.invocation_sequence_number}`, Number(r.used_units)]));
    expect(acks.filter((a) => a.used > 0 && used.get(`${a.ref}#${a.seq}`) !== a.used)).toEqual([]);

    // Sessions left open hold units until the sweeper returns them after their validity.
    const open = await t.db('charging_sessions').whereNotNull('expires_at').count({ n: '*' }).first();
    expect(Number(open!.n)).toBeGreaterThan(0);
    const pool = new Pool({ connectionString: t.url, max: 4 });
    const engine = createChargingEngine({ pool, clock: () => Date.now() + 120_000, policy: { validityTimeSec: 30, sweepGraceSec: 30 } });
    const sweeper = startSweeper({ engine, pool, clock: () => Date.now() + 120_000, intervalMs: 3_600_000 });
    try {
      expect(await sweeper.sweepOnce()).toBe(Number(open!.n));
    } finally {
      await sweeper.stop();
      await engine.close();
      await pool.end();
    }
    expect(await t.db('charging_sessions').whereNotNull('expires_at').count({ n: '*' }).first()).toEqual({ n: '0' });
    const held = await t.db.raw(`SELECT (SELECT coalesce(sum(reserved_units), 0) FROM buckets) + (SELECT coalesce(sum(reserved_micros), 0) FROM wallets) AS held`);
    expect(held.rows[0].held).toBe('0');
    const report = await verifyBalances(t.db);
    expect(report.problems).toEqual([]);
  }, 60_000);
});
