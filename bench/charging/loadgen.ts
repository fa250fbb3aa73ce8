/**
 * Load generator for the charging benchmark, run as a separate process (child_process.fork):
 * `connections` keep-alive connections, each a closed loop of realistic scenarios:
 *  - 60 % data sessions: create (5 MB asked) → 3 updates reporting 50–100 % of the grant → release;
 *  - 20 % voice calls: create (120 s) → update (60 s used) → release;
 *  - 20 % SMS: one immediate event.
 * Subscribers are drawn uniformly from the population, except `hotShare` of the sessions, which go
 * to the members of the first `hotFamilies` families (contention on their shared pools). 90 % of
 * usage is at home, 10 % roaming in the EU; identifiers are IMSI (70 %) or MSISDN (30 %).
 * An error is any answer >= 400, a connection failure, or a malformed answer. Reports
 * throughput and latency (from write to complete answer) over the measured window.
 */
import { Connection } from './http-client';
import { imsiOf, msisdnOf, type Population } from './seed';
import { dataCreate, dataRelease, dataUpdate, smsEvent, voiceCreate, voiceUpdate } from '../../api/charging/testing/nchf-requests';

export interface LoadConfig {
  host: string;
  port: number;
  apiKey: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
  population: Population;
  hotFamilies: number;
  hotShare: number;
  label: string;
}

export interface LoadReport {
  label: string;
  ops: number;
  opsPerSec: number;
  errors: number;
  errorSamples: string[];
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  byKind: Record<string, number>;
  resultCodes: Record<string, number>;
  /** All requests sent (warm-up included) and the CPU the load generator used for them. */
  totalOps: number;
  cpuMicros: number;
}

const BASE = '/nchf-convergedcharging/v3/chargingdata';
/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read loosely, as a network element would */

export async function runLoad(cfg: LoadConfig): Promise<LoadReport> {
  const headers = `Host: ${cfg.host}:${cfg.port}\r\nAuthorization: Bearer ${cfg.apiKey}\r\nContent-Type: application/json\r\n`;
  const p = cfg.population;
  let latencies = new Float64Array(1 << 20);
  let n = 0;
  let errors = 0;
  const errorSamples: string[] = [];
  const byKind: Record<string, number> = {};
  const resultCodes: Record<string, number> = {};
  const start = performance.now();
  const measureFrom = start + cfg.warmupMs;
  const stopAt = measureFrom + cfg.durationMs;
  let measuredOps = 0;
  let totalOps = 0;
  const cpu0 = process.cpuUsage();

  const record = (kind: string, t0: number, ok: boolean, detail?: string) => {
    totalOps++;
    const t1 = performance.now();
    if (t0 < measureFrom || t1 > stopAt) return;
    measuredOps++;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    if (n === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[n++] = t1 - t0;
    if (!ok) {
      errors++;
      if (errorSamples.length < 10 && detail) errorSamples.push(detail);
    }
  };

  const subscriber = (): { id: string; family: boolean } => {
    let i: number;
    if (Math.random() < cfg.hotShare && p.families > 0) i = p.individuals + 1 + Math.floor(Math.random() * Math.min(cfg.hotFamilies, p.families) * 4);
    else i = 1 + Math.floor(Math.random() * p.subscribers);
    const id = Math.random() < 0.7 ? `imsi-${imsiOf(p, i)}` : `msisdn-${msisdnOf(p, i)}`;
    return { id, family: i > p.individuals };
  };
  const where = () => (Math.random() < 0.1 ? { mcc: '208', mnc: '10' } : undefined);
  const called = () => {
    const x = Math.random();
    const digits = String(Math.floor(Math.random() * 1e9)).padStart(9, '0');
    return x < 0.85 ? `4915${digits}` : x < 0.95 ? `44207${digits.slice(0, 7)}` : `1212${digits.slice(0, 7)}`;
  };

  async function call(conn: Connection, kind: string, path: string, body: unknown, expect: number): Promise<{ status: number; location: string | null; json: any }> {
    const t0 = performance.now();
    let res;
    try {
      res = await conn.request(path, JSON.stringify(body));
    } catch (err) {
      record(kind, t0, false, `${kind}: ${(err as Error).message}`);
      throw err;
    }
    let json: any = null;
    let ok = res.status === expect;
    if (ok && res.body) {
      try {
        json = JSON.parse(res.body);
        for (const m of json.multipleUnitInformation ?? []) resultCodes[m.resultCode] = (resultCodes[m.resultCode] ?? 0) + 1;
      } catch {
        ok = false;
      }
    }
    if (ok && expect === 201 && !res.location) ok = false;
    record(kind, t0, ok, ok ? undefined : `${kind}: ${res.status} ${res.body.slice(0, 200)}`);
    return { status: res.status, location: res.location, json };
  }

  const granted = (json: any): number => {
    const g = json?.multipleUnitInformation?.[0]?.grantedUnit;
    return g?.totalVolume ?? g?.time ?? 0;
  };
  const pathOf = (location: string | null) => {
    if (!location) return `${BASE}/missing`;
    const i = location.indexOf(BASE);
    return i === -1 ? location : location.slice(i);
  };

  async function loop(conn: Connection): Promise<void> {
    while (performance.now() < stopAt) {
      const x = Math.random();
      const sub = subscriber();
      if (x < 0.6) {
        const w = where();
        const c = await call(conn, 'data.create', BASE, dataCreate(sub.id, { requested: 5_000_000, chargingId: Math.floor(Math.random() * 4e9), where: w }), 201);
        const path = pathOf(c.location);
        let g = granted(c.json);
        for (let s = 1; s <= 3 && g > 0; s++) {
          const used = Math.floor(g * (0.5 + Math.random() * 0.5));
          const u = await call(conn, 'data.update', `${path}/update`, dataUpdate(s, used, { requested: 5_000_000 }), 200);
          g = granted(u.json);
        }
        await call(conn, 'data.release', `${path}/release`, dataRelease(4, Math.floor(g * 0.3)), 204);
      } else if (x < 0.8) {
        const c = await call(conn, 'voice.create', BASE, voiceCreate(sub.id, called(), { requested: 120, where: where() }), 201);
        const path = pathOf(c.location);
        const g = granted(c.json);
        if (g > 0) await call(conn, 'voice.update', `${path}/update`, voiceUpdate(1, Math.min(60, g), 120), 200);
        await call(conn, 'voice.release', `${path}/release`, voiceUpdate(2, g > 0 ? 30 + Math.floor(Math.random() * 60) : 0, null), 204);
      } else {
        await call(conn, 'sms.event', BASE, smsEvent(sub.id, called(), { where: where() }), 201);
      }
    }
  }

  const conns = Array.from({ length: cfg.connections }, () => new Connection(cfg.host, cfg.port, headers));
  await Promise.all(conns.map(async (c) => {
    for (;;) {
      try {
        await loop(c);
        return;
      } catch {
        if (performance.now() >= stopAt) return;
        await new Promise((r) => setTimeout(r, 10));
        return; // a broken connection stops its loop; its failure was counted
      }
    }
  }));
  for (const c of conns) c.close();

  const sorted = latencies.subarray(0, n).sort();
  const pct = (q: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]);
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    label: cfg.label, ops: measuredOps, opsPerSec: Math.round(measuredOps / (cfg.durationMs / 1000)), errors, errorSamples,
    p50: round(pct(0.5)), p90: round(pct(0.9)), p99: round(pct(0.99)), p999: round(pct(0.999)), max: round(n ? sorted[n - 1] : 0),
    byKind, resultCodes, totalOps, cpuMicros: (() => { const c = process.cpuUsage(cpu0); return c.user + c.system; })(),
  };
}

if (require.main === module || process.send) {
  process.on('message', (cfg: LoadConfig) => {
    runLoad(cfg).then(
      (report) => process.send!({ report }, () => process.exit(0)),
      (err) => process.send!({ error: String(err?.stack ?? err) }, () => process.exit(1)),
    );
  });
}
