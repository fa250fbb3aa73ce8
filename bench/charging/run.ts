/**
 * The charging benchmark (`npm run bench:charging` → `tsx bench/charging/run.ts`).
 *
 * 1. PostgreSQL: the one at DATABASE_URL, or an embedded server started in a temporary directory
 *    (synchronous_commit on, fsync on: every acknowledged charge is durable).
 * 2. Migrates, then loads BENCH_SUBSCRIBERS (100,000) subscribers with realistic balances.
 * 3. Starts the Nchf charging server (engine, sweeper) and drives it from a separate process
 *    (bench/charging/loadgen.ts, forked) on loopback over keep-alive connections with a realistic
 *    mix: data sessions, voice calls, SMS, some contention on shared family pools.
 * 4. Measures a plain node:http echo server with the same load generator: the machine's ceiling.
 * 5. Recomputes balances and overspend from the ledger.
 * 6. Prints one JSON line on stdout:
 *    {"bench":"charging","ops_per_s":…,"p50_ms":…,"p99_ms":…,"errors":…,"overspend":…,"echo_ops_per_s":…}
 *    `overspend` = units spent beyond any bucket plus micros spent beyond any wallet's limit,
 *    recomputed from the postings (0 when nothing was overspent). Details go to stderr.
 *
 * Knobs: BENCH_SUBSCRIBERS, BENCH_DURATION_S (20), BENCH_WARMUP_S (5), BENCH_ECHO_DURATION_S (10),
 * BENCH_CONNECTIONS (128), BENCH_CONCURRENCY (parallel batches, 4), BENCH_MAX_BATCH (256),
 * BENCH_HOT_FAMILIES (20), BENCH_HOT_SHARE (0.05), BENCH_KEEP_DATA (keep the embedded data dir),
 * BENCH_REUSE_RUN (with DATABASE_URL: reuse the population of an earlier run instead of loading),
 * BENCH_PROFILE (write a CPU profile of the server process during the charging run to this file).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execSync, fork } from 'node:child_process';
import inspector from 'node:inspector';
import { Client, Pool } from 'pg';
import { createDatabase, migrateToLatest } from '../../platform/database';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../platform/embedded-postgres';
import { freePort } from '../../platform/ports';
import { createChargingEngine } from '../../domain/charging/charging-engine';
import { startSweeper } from '../../domain/charging/sweeper';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { createChargingServer, NCHF_BASE } from '../../api/charging/nchf-charging.server';
import { apiKeyAuthenticator } from '../../api/charging/main';
import { population, seedPopulation } from './seed';
import type { LoadConfig, LoadReport } from './loadgen';
import { pgCpuMs, postmasterPid } from '../process-cpu';

/** CPU (ms) per kind of PostgreSQL process (backend, walwriter, checkpointer, autovacuum…). */
function pgCpuByKind(postmasterPid: number | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!postmasterPid) return out;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== postmasterPid) continue;
      const title = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const kind = /postgres: (\S+ \S+ \S+)/.exec(title)?.[1]?.includes('127.0.0.1') ? 'backend' : (title.replace(/^postgres: /, '').split(' ').slice(0, 2).join(' ') || 'other');
      out[kind] = (out[kind] ?? 0) + (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      /* gone */
    }
  }
  return out;
}

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const log = (m: string) => process.stderr.write(`${m}\n`);
const uptime = () => {
  try {
    return execSync('uptime').toString().trim();
  } catch {
    return `loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  }
};

function runLoadgen(cfg: LoadConfig): Promise<LoadReport> {
  const child = fork(path.join(__dirname, 'loadgen.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { report?: LoadReport; error?: string }) => (m.report ? resolve(m.report) : reject(new Error(m.error))));
    child.once('exit', (code) => { if (code !== 0) reject(new Error(`load generator exited with ${code}`)); });
    child.send(cfg);
  });
}

/** A plain node:http server answering like the charging API does (same status codes and sizes). */
function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const created = JSON.stringify({ invocationTimeStamp: new Date().toISOString(), invocationSequenceNumber: 0, multipleUnitInformation: [{ resultCode: 'SUCCESS', ratingGroup: 10, grantedUnit: { totalVolume: 5000000 }, validityTime: 3600 }] });
  const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const url = req.url ?? '';
      if (url.endsWith('/release')) {
        res.writeHead(204);
        res.end();
      } else {
        const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(created) };
        if (url === NCHF_BASE) headers.Location = `http://${req.headers.host}${NCHF_BASE}/echo`;
        res.writeHead(url === NCHF_BASE ? 201 : 200, headers);
        res.end(created);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  })));
}

async function main(): Promise<void> {
  const subscribers = env('BENCH_SUBSCRIBERS', 100_000);
  const durationMs = env('BENCH_DURATION_S', 20) * 1000;
  const warmupMs = env('BENCH_WARMUP_S', 5) * 1000;
  const echoMs = env('BENCH_ECHO_DURATION_S', 10) * 1000;
  const connections = env('BENCH_CONNECTIONS', 128);
  log(`bench:charging — ${os.cpus().length} cores; load before: ${uptime()}`);

  let embedded: EmbeddedPostgresHandle | undefined;
  let dataDir: string | undefined;
  let url = process.env.DATABASE_URL;
  let run = '10';
  if (url) {
    run = process.env.BENCH_REUSE_RUN ?? String(10 + crypto.randomInt(90));
    log(`using the PostgreSQL at DATABASE_URL (run ${run})`);
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvno-bench-pg-'));
    fs.chmodSync(dataDir, 0o755);
    const port = await freePort();
    // Durability stays at PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on);
    // only sizing is tuned as a production server would be: more shared buffers, checkpoints
    // spaced out (which changes recovery time, not what survives a crash).
    const settings = { shared_buffers: '1GB', max_wal_size: '8GB', checkpoint_timeout: '30min' };
    log(`starting embedded PostgreSQL on ${port} in ${dataDir} (durability defaults; ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ')})`);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'data'), port, settings });
    await ensureDatabase(embedded.url, 'mvno_bench');
    url = embedded.databaseUrl('mvno_bench');
  }

  const db = createDatabase(url, { applicationName: 'mvno-bss-bench' });
  let exitCode = 0;
  try {
    await migrateToLatest(db);
    const settings = await db.raw(`SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'full_page_writes', 'shared_buffers', 'wal_sync_method', 'max_wal_size', 'checkpoint_timeout')`);
    log(`postgres: ${settings.rows.map((r: { name: string; setting: string }) => `${r.name}=${r.setting}`).join(' ')}`);
    const p = population(subscribers, run);
    log(`loading ${p.subscribers} subscribers (${p.individuals} individual lines, ${p.families} families of 4)…`);
    const t0 = Date.now();
    if (process.env.BENCH_REUSE_RUN && process.env.DATABASE_URL) {
      log(`reusing the population of run ${run}`);
    } else {
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await seedPopulation(client, p, log);
      } finally {
        await client.end();
      }
      log(`loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const apiKey = `bench_${crypto.randomBytes(24).toString('base64url')}`;
    await db('api_keys').insert({ name: `bench ${run}`, role: 'network', key_hash: crypto.createHash('sha256').update(apiKey).digest('hex'), key_prefix: apiKey.slice(0, 10) });

    const pool = new Pool({ connectionString: url, max: env('BENCH_CONCURRENCY', 4) + 4, application_name: 'mvno-bss-charging' });
    const batches = { n: 0, ops: 0, ms: 0 };
    const engine = createChargingEngine({
      pool, concurrency: env('BENCH_CONCURRENCY', 4), maxBatch: env('BENCH_MAX_BATCH', 256),
      onBatch: (b) => { batches.n++; batches.ops += b.size; batches.ms += b.ms; },
    });
    const sweeper = startSweeper({ engine, pool, intervalMs: 5_000 });
    const t1 = Date.now();
    log(`engine: preloaded ${await engine.preload()} lines into its cache in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    const server = createChargingServer({ engine, authenticate: apiKeyAuthenticator(pool), onError: (err) => log(`server error: ${String(err)}`) });
    const port = await server.listen(0);
    const load: Omit<LoadConfig, 'port' | 'label' | 'durationMs'> = {
      host: '127.0.0.1', apiKey, connections, warmupMs, population: p,
      hotFamilies: env('BENCH_HOT_FAMILIES', 20), hotShare: env('BENCH_HOT_SHARE', 0.05),
    };
    log(`charging: ${connections} connections, ${warmupMs / 1000} s warm-up, ${durationMs / 1000} s measured…`);
    const pgPid = await postmasterPid(db); // remote server or no permission: PostgreSQL's CPU is not reported
    const walStats = async () => (await db.raw('SELECT wal_records::bigint AS r, wal_fpi::bigint AS f, wal_bytes::bigint AS b FROM pg_stat_wal')).rows[0] as { r: string; f: string; b: string };
    const wal0 = await walStats();
    const kinds0 = pgCpuByKind(pgPid);
    const cpu0 = process.cpuUsage();
    const pg0 = pgCpuMs(pgPid);
    const ops0 = engine.stats().operations;
    const profiler = process.env.BENCH_PROFILE ? new inspector.Session() : null;
    if (profiler) {
      profiler.connect();
      await new Promise<void>((r) => profiler.post('Profiler.enable', () => profiler.post('Profiler.start', () => r())));
    }
    const charging = await runLoadgen({ ...load, port, durationMs, label: 'charging' });
    const cpu = process.cpuUsage(cpu0);
    if (profiler) {
      await new Promise<void>((r) => profiler.post('Profiler.stop', (err, res) => {
        if (!err) fs.writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(res.profile));
        r();
      }));
      profiler.disconnect();
    }
    const ops = Math.max(1, engine.stats().operations - ops0);
    const pg1 = pgCpuMs(pgPid);
    const wal1 = await walStats();
    const kinds1 = pgCpuByKind(pgPid);
    const kindDelta = Object.entries(kinds1).map(([k, v]) => `${k} ${(((v - (kinds0[k] ?? 0)) * 1000) / ops).toFixed(0)} µs`).join(', ');
    log(`postgres per operation: WAL ${((Number(wal1.r) - Number(wal0.r)) / ops).toFixed(1)} records, ${((Number(wal1.f) - Number(wal0.f)) / ops).toFixed(2)} full-page images, ${((Number(wal1.b) - Number(wal0.b)) / ops).toFixed(0)} bytes; CPU by process (live ones): ${kindDelta}`);
    if (process.env.BENCH_DEBUG) log(`debug: postmaster ${pgPid}, postgres cpu ${pg0} → ${pg1} ms`);
    log(`cpu per operation (whole run incl. warm-up, ${ops} operations): server ${((cpu.user + cpu.system) / ops).toFixed(0)} µs, postgres ${pgPid ? ((pg1 - pg0) * 1000 / ops).toFixed(0) : '?'} µs, load generator ${(charging.cpuMicros / Math.max(1, charging.totalOps)).toFixed(0)} µs`);
    const loadDuring = uptime();
    log(`charging: ${JSON.stringify(charging)}`);
    log(`engine: ${batches.n} batches, ${(batches.ops / Math.max(1, batches.n)).toFixed(1)} operations per batch on average, ${(batches.ms / Math.max(1, batches.n)).toFixed(2)} ms per batch; ${JSON.stringify(engine.stats())}`);
    log(`load at the end of the charging run: ${loadDuring}`);
    await server.close();
    await sweeper.stop();
    await engine.close();
    await pool.end();

    const echo = await startEcho();
    log(`echo: same load generator against a plain node:http server…`);
    const echoReport = await runLoadgen({ ...load, warmupMs: 2_000, port: echo.port, durationMs: echoMs, label: 'echo' });
    await echo.close();
    log(`echo: ${JSON.stringify(echoReport)}`);

    log('recomputing balances from the ledger…');
    const ledger = await verifyBalances(db);
    const problems = ledger.problems.filter((x) => x.kind !== 'overspend');
    log(`ledger: ${ledger.wallets} wallets, ${ledger.buckets} buckets, ${ledger.entries} journal entries; overspend ${ledger.overspend.bucketUnits} units / ${ledger.overspend.walletMicros} micros; ${problems.length} other problems${problems.length ? `: ${JSON.stringify(problems.slice(0, 5))}` : ''}`);
    log(`load after: ${uptime()}`);
    const result = {
      bench: 'charging',
      ops_per_s: charging.opsPerSec,
      p50_ms: charging.p50,
      p99_ms: charging.p99,
      errors: charging.errors + problems.length,
      overspend: Number(ledger.overspend.bucketUnits + ledger.overspend.walletMicros),
      echo_ops_per_s: echoReport.opsPerSec,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (err) {
    exitCode = 1;
    log(`bench:charging failed: ${err instanceof Error ? err.stack : String(err)}`);
  } finally {
    await db.destroy();
    if (embedded) await embedded.stop();
    if (dataDir && !process.env.BENCH_KEEP_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

void main();
