/**
 * The lifecycle benchmark (`npm run bench:lifecycle` → `tsx bench/lifecycle/run.ts`): many concurrent
 * storefront eSIM activations through the whole stack —
 *   GraphQL `subscriberActivate` (Express + yoga) → subscriber workflow (registers the line, reserves
 *   a number and an eSIM profile with SKIP LOCKED) → `esim-order:<id>` workflow → ES2+ downloadOrder
 *   and confirmOrder at the SM-DP+ simulator → activation code back to the storefront → the simulated
 *   device downloads, installs and enables → HandleDownloadProgressInfo notifications to the API's ES2+
 *   endpoint → signals → the line is activated in the billing record.
 *
 * Latency of one activation = from sending the mutation until the line is active in the database.
 * Afterwards every line's state is compared between its workflow (query), the database (line, SIM,
 * number, order) — any disagreement counts as an error.
 *
 * Everything runs in this process except PostgreSQL (embedded, default durability) and the Temporal
 * dev server (in-memory). On stderr: CPU per activation of this process, the Temporal server and
 * PostgreSQL, database round trips, and the history of one activation. Prints one JSON line on stdout:
 *   {"bench":"lifecycle","activations_per_s":…,"p50_ms":…,"p99_ms":…,"errors":…}
 * Knobs: BENCH_ACTIVATIONS (600), BENCH_CONCURRENCY (60), BENCH_WARMUP (40), BENCH_DEVICE_DELAY_MS (5),
 * BENCH_WORKFLOW_THREADS (1), BENCH_KEEP_DATA.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createDatabase, migrateToLatest } from '../../platform/database';
import { ensureDatabase, startEmbeddedPostgres } from '../../platform/embedded-postgres';
import { freePort } from '../../platform/ports';
import { childPids, pgCpuMs, postmasterPid, processCpuMs } from '../process-cpu';
import { startWorkflowStack } from '../workflow-stack';
import { loadConfig } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { createMetrics } from '../../platform/metrics';
import { createApp } from '../../api/app';
import { createApiKey, cachedApiKeyResolver } from '../../domain/access/api-keys.repository';
import { openWallet } from '../../domain/ledger/ledger.repository';
import { addMsisdns, seedEsimInventory } from '../../domain/sims/inventory.repository';
import { Es2PlusClient } from '../../domain/sims/es2plus.client';
import { createSmdpPlusSimulator } from '../../simulators/smdp-plus';
import { ES2PLUS_NOTIFICATION_PATH } from '../../api/es2plus/notifications.router';
import { subscriberSnapshotQuery, subscriberWorkflowId } from '../../workflows/subscriber.messages';
import { esimOrderSnapshotQuery, esimOrderWorkflowId } from '../../workflows/esim-order.messages';

const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const log = (m: string) => process.stderr.write(`${m}\n`);

const ACTIVATE = `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) {
  subscriber { id msisdn state } esimOrder { id status activationCode } userErrors { code message } } }`;

function post(agent: http.Agent, port: number, key: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: `Bearer ${key}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function main(): Promise<void> {
  const total = env('BENCH_ACTIVATIONS', 600);
  const concurrency = env('BENCH_CONCURRENCY', 60);
  const warmup = env('BENCH_WARMUP', 40);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mvno-bench-lifecycle-'));
  fs.chmodSync(root, 0o755);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((err) => log(`stop: ${err}`));
    if (!process.env.BENCH_KEEP_DATA) fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const pgPort = await freePort();
    log(`starting embedded PostgreSQL (default durability) in ${root}…`);
    const pg = await startEmbeddedPostgres({ dataDir: path.join(root, 'pg'), port: pgPort });
    stops.push(() => pg.stop());
    await ensureDatabase(pg.url, 'mvno_bench');
    const db = createDatabase(pg.databaseUrl('mvno_bench'), { poolMax: 20, applicationName: 'mvno-bss-bench' });
    stops.push(() => db.destroy());
    await migrateToLatest(db);

    // Inventory and a customer.
    const [customer] = await db('customers').insert({ kind: 'business', name: 'Bench storefront customer' }).returning('id');
    const [account] = await db('billing_accounts').insert({ customer_id: customer.id, payment_type: 'prepaid', currency: 'EUR', credit_limit_minor: 0 }).returning('id');
    await openWallet(db, { billingAccountId: account.id, currency: 'EUR', creditLimitMinor: 0n });
    await db('plans').insert({ code: 'bench-esim', name: 'Bench eSIM', payment_type: 'prepaid', category: 'standard', currency: 'EUR', recurring_fee_minor: 0, billing_period_unit: 'month', billing_period_count: 1, tariff: '{}' });
    const lines = total + warmup;
    await addMsisdns(db, Array.from({ length: lines }, (_, i) => `4916${String(10_000_000 + i)}`));
    for (let left = lines; left > 0; left -= 1000) await seedEsimInventory(db, Math.min(1000, left));

    // SM-DP+ simulator with the device playing itself; the ES2+ client; worker; API.
    const sim = await createSmdpPlusSimulator({ autoDevice: { delayMs: env('BENCH_DEVICE_DELAY_MS', 5) }, deviceStepDelayMs: 2, adoptUnknownIccids: true, idempotencyCacheSize: lines * 4 + 100 });
    stops.push(() => sim.close());
    const es2plus = new Es2PlusClient({ baseUrl: sim.url, functionRequesterIdentifier: 'mvno-bss-bench' });
    stops.push(async () => es2plus.close());
    const taskQueue = 'bench-lifecycle';
    const temporal = await startWorkflowStack({
      taskQueue, db, logger: createLogger({ level: 'silent' }), es2plus,
      extra: { maxConcurrentActivityTaskExecutions: 200, maxConcurrentWorkflowTaskExecutions: 100, maxCachedWorkflows: 4000, maxConcurrentLocalActivityExecutions: 200, workflowThreadPoolSize: env('BENCH_WORKFLOW_THREADS', 1) },
    });
    stops.push(() => temporal.stop());
    const client = temporal.client;
    const config = loadConfig({ NODE_ENV: 'production', TEMPORAL_TASK_QUEUE: taskQueue, LOG_LEVEL: 'silent' });
    const resolve = cachedApiKeyResolver(db);
    const app = createApp({
      config, db, temporal: client, logger: createLogger({ level: 'silent' }), metrics: createMetrics(),
      resolveApiKey: async (key) => {
        const role = await resolve(key);
        return role ? { role, actor: 'bench-storefront' } : undefined;
      },
    });
    const server = http.createServer(app);
    // Clients keep connections idle while their line activates; Node's 5 s default would close them
    // under a client that is about to reuse them (ECONNRESET).
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 125_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
    const port = (server.address() as AddressInfo).port;
    sim.setNotificationUrl(`http://127.0.0.1:${port}${ES2PLUS_NOTIFICATION_PATH}`);
    const { key } = await createApiKey(db, { name: 'bench storefront', role: 'storefront' });
    // The bench watches lines on its own small pool, so its polling never starves the worker's.
    const watch = createDatabase(pg.databaseUrl('mvno_bench'), { poolMax: 3, applicationName: 'mvno-bss-bench-watch' });
    stops.push(() => watch.destroy());
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

    const ids: string[] = [];
    let errors = 0;
    const errorSamples: string[] = [];
    const fail = (m: string) => {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(m);
    };
    // Lines waiting to be active in the billing record: one query for all of them at a time, not one
    // poll per line (the bench's own load stays small next to what it measures).
    const waiting = new Map<string, (state: string) => void>();
    let watching: Promise<void> | undefined;
    const watchLoop = async () => {
      while (waiting.size) {
        try {
          const rows: { id: string; state: string }[] = await watch('subscribers').whereIn('id', [...waiting.keys()]).whereNot('state', 'pending').select('id', 'state');
          for (const r of rows) {
            waiting.get(r.id)?.(r.state);
            waiting.delete(r.id);
          }
        } catch (err) {
          log(`watch: ${err}`); // the line's own 30 s deadline reports it
        }
        await new Promise((res) => setTimeout(res, 5));
      }
      watching = undefined;
    };
    const settled = (id: string) => new Promise<string>((resolve) => {
      waiting.set(id, resolve);
      watching ??= watchLoop();
    });
    const activateOne = async (i: number, measured: boolean): Promise<number | undefined> => {
      const t0 = performance.now();
      const body = JSON.stringify({ query: ACTIVATE, variables: { input: { billingAccountId: account.id, planCode: 'bench-esim', simType: 'esim', idempotencyKey: `bench-${i}-${crypto.randomUUID()}` } } });
      const r = await post(agent, port, key, body);
      const p = r.json?.data?.subscriberActivate;
      if (r.status !== 200 || !p?.subscriber || p.userErrors.length || !p.esimOrder?.activationCode) {
        if (measured) fail(`activation ${i}: ${JSON.stringify(r.json).slice(0, 300)}`);
        return undefined;
      }
      const id: string = p.subscriber.id;
      if (measured) ids.push(id);
      // Until the line leaves 'pending' in the billing record (active, or terminated when its order failed).
      let timer: NodeJS.Timeout | undefined;
      const state = await Promise.race([settled(id), new Promise<string>((res) => { timer = setTimeout(() => res('pending'), 30_000); })]);
      clearTimeout(timer);
      waiting.delete(id);
      if (state === 'active') return performance.now() - t0;
      if (measured) fail(`line ${id} is ${state} after ${Math.round(performance.now() - t0)} ms`);
      return undefined;
    };
    const runPool = async (from: number, count: number, measured: boolean, latencies: number[]) => {
      let next = from;
      await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
        while (next < from + count) {
          const i = next++;
          try {
            const ms = await activateOne(i, measured);
            if (ms !== undefined) latencies.push(ms);
          } catch (err) {
            if (measured) fail(`activation ${i}: ${err}`);
          }
        }
      }));
    };

    // Where the CPU goes: this process (API, worker, simulator, the bench's client), the Temporal dev
    // server, PostgreSQL; and the database round trips of the API and worker.
    const temporalPids = childPids(process.pid, /start-dev/);
    const postmaster = await postmasterPid(db);
    let queries = 0;
    db.on('query', () => {
      queries++;
    });
    let watchQueries = 0;
    watch.on('query', () => {
      watchQueries++;
    });
    const cpu = () => ({ node: process.cpuUsage(), temporal: temporalPids.reduce((a, p) => a + processCpuMs(p), 0), pg: pgCpuMs(postmaster), at: performance.now() });

    log(`warm-up: ${warmup} activations…`);
    await runPool(0, warmup, false, []);
    log(`measuring: ${total} eSIM activations, ${concurrency} at a time…`);
    const latencies: number[] = [];
    const q0 = { queries, watchQueries };
    const c0 = cpu();
    const t0 = performance.now();
    await runPool(warmup, total, true, latencies);
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpu();
    const per = (ms: number) => Number((ms / total).toFixed(2));
    const nodeMs = (c1.node.user - c0.node.user + c1.node.system - c0.node.system) / 1000;
    log(`CPU ms per activation: node ${per(nodeMs)}, temporal ${per(c1.temporal - c0.temporal)}, postgres ${per(c1.pg - c0.pg)} `
      + `(of ${per(1000 * seconds * os.cpus().length)} available); database queries per activation: API+worker ${per(queries - q0.queries)}, bench watch ${per(watchQueries - q0.watchQueries)}`);

    // Workflow vs database, for every line.
    log('checking every line: workflow state vs database (line, SIM, number, order)…');
    const rows = await db('subscribers').join('sims', 'sims.id', 'subscribers.sim_id').join('msisdns', 'msisdns.msisdn', 'subscribers.msisdn')
      .leftJoin('esim_orders', 'esim_orders.subscriber_id', 'subscribers.id')
      .whereIn('subscribers.id', ids)
      .select('subscribers.id', 'subscribers.state', 'subscribers.msisdn', 'sims.iccid', 'sims.state as sim_state', 'msisdns.state as msisdn_state', 'esim_orders.state as order_state');
    const byId = new Map(rows.map((r: { id: string }) => [r.id, r]));
    let checked = 0;
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map(async (id) => {
        const r = byId.get(id) as { state: string; msisdn: string; iccid: string; sim_state: string; msisdn_state: string; order_state: string } | undefined;
        const snap = await client.workflow.getHandle(subscriberWorkflowId(id)).query(subscriberSnapshotQuery);
        const order = await client.workflow.getHandle(esimOrderWorkflowId(id)).query(esimOrderSnapshotQuery);
        const ok = r && snap.state === r.state && r.state === 'active' && snap.msisdn === r.msisdn && snap.iccid === r.iccid
          && r.sim_state === 'active' && r.msisdn_state === 'assigned' && r.order_state === 'completed' && order.status === 'completed';
        if (!ok) fail(`line ${id}: workflow ${snap.state}/${snap.iccid}/order ${order.status} vs database ${JSON.stringify(r)}`);
        checked++;
      }));
    }
    if (ids.length) {
      const count = async (workflowId: string) => {
        const h = await client.workflow.getHandle(workflowId).fetchHistory();
        const events = h.events ?? [];
        return `${events.length} events, ${events.filter((e) => String(e.eventType) === '7' || String(e.eventType) === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED').length} workflow tasks`;
      };
      log(`history of one activation: subscriber ${await count(subscriberWorkflowId(ids[0]))}; esim-order ${await count(esimOrderWorkflowId(ids[0]))}`);
    }
    const shared = await db('subscribers').whereIn('id', ids).groupBy('sim_id').havingRaw('count(*) > 1').select('sim_id');
    if (shared.length) fail(`${shared.length} SIMs on more than one line`);
    latencies.sort((a, b) => a - b);
    log(`checked ${checked} lines; ${errors} errors${errorSamples.length ? `: ${errorSamples.join(' | ')}` : ''}`);
    log(`load average: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${os.cpus().length} CPUs`);
    const result = {
      bench: 'lifecycle',
      activations_per_s: Number((latencies.length / seconds).toFixed(1)),
      p50_ms: Math.round(percentile(latencies, 50) ?? 0),
      p99_ms: Math.round(percentile(latencies, 99) ?? 0),
      errors,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    agent.destroy();
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
