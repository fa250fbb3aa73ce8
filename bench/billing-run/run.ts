/**
 * Billing run benchmark: N subscriptions (default 1,000,000) due on one day, a mix of plan types —
 * 50 % prepaid (data allowance with rollover, funded wallets), 25 % postpaid (voice allowance,
 * invoice lines), 15 % hybrid, 10 % family lines (4 per parent account, shared data pool, one bill) —
 * then the billing run for that day, then a check from the ledger that every due subscription was
 * charged exactly once.
 *
 *   npm run bench:billing-run -- [--subscriptions N] [--batch 5000] [--lanes 2] [--workflow]
 *
 * PostgreSQL: DATABASE_URL (a database the bench may fill), or an embedded server in a temporary
 * directory: fsync and synchronous commit on, with a database server's memory settings
 * (shared_buffers 2 GB, under the usual quarter of this machine's 24 GB; max_wal_size 8 GB).
 * By default the run executes the billing-run workflow's loop in process — the same work as its
 * activities (`runBillingBatch` per batch of `--batch` subscriptions, its lanes concurrently, then the
 * grace sweep) without the Temporal round trips. `--workflow` runs the real `billing-run:<date>`
 * workflow instead, on a Temporal dev server and a worker in this process (started before the
 * clock), so the figure includes every activity's round trip and the workflow's other steps.
 * Ends with one line of JSON (`via` says which).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { createDatabase, migrateToLatest } from '../../platform/database';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../platform/embedded-postgres';
import { freePort } from '../../platform/ports';
import { childPids, machineBusySeconds, pgCpuMs, postmasterPid, processCpuMs } from '../process-cpu';
import { createChargingEngine } from '../../domain/charging/charging-engine';
import { runBillingBatch } from '../../domain/billing/billing-run.service';
import { DEFAULT_LANES, FIRST_CURSOR, billingRunWorkflowId, type BillingRunInput, type BillingRunTotals, type DueCursor } from '../../domain/billing/billing-run.types';
import { lanesAtDueQuantiles, graceExpiredCharges } from '../../domain/billing/billing-run.repository';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';
import type { WorkflowStack } from '../workflow-stack';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1].replace(/_/g, '')) : fallback;
}

const log = (m: string) => process.stderr.write(`[bench:billing-run] ${m}\n`);
const CYCLE_DATE = '2026-12-01';
const ANCHOR = '2026-11-01T00:00:00Z';

let maxRss = process.memoryUsage().rss;
const rssTimer = setInterval(() => { maxRss = Math.max(maxRss, process.memoryUsage().rss); }, 200);
rssTimer.unref();

async function main(): Promise<void> {
  const n = arg('subscriptions', 1_000_000);
  const batch = arg('batch', 5000);
  const lanes = arg('lanes', DEFAULT_LANES);
  const viaWorkflow = process.argv.includes('--workflow');
  let temporal: WorkflowStack | undefined;
  let embedded: EmbeddedPostgresHandle | undefined;
  let dataDir: string | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvno-bench-billing-'));
    fs.chmodSync(dataDir, 0o755);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'data'), port: await freePort(), settings: { max_wal_size: '8GB', shared_buffers: '2GB' } });
    await ensureDatabase(embedded.url, 'mvno_bench_billing');
    url = embedded.databaseUrl('mvno_bench_billing');
  }
  const db = createDatabase(url, { applicationName: 'mvno-bench-billing', poolMax: 4 });
  const pool = new Pool({ connectionString: url, max: 3 });
  const engine = createChargingEngine({ pool, maxBatch: 2500, concurrency: 2 });
  try {
    await migrateToLatest(db);
    const t0 = performance.now();
    await seed(db, n);
    log(`seeded ${n} subscriptions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Workflow mode: the Temporal dev server, the worker and the bundle are ready before the clock starts.
    if (viaWorkflow) {
      // Loaded only here: the in-process mode's memory figure should not carry Temporal's native core.
      const { startWorkflowStack } = await import('../workflow-stack.js');
      const { createLogger } = await import('../../platform/logger.js');
      temporal = await startWorkflowStack({ taskQueue: WORKFLOW_TASK_QUEUE, db, chargingEngine: engine, logger: createLogger({ level: 'silent' }) });
      log(`Temporal dev server and a worker on task queue ${WORKFLOW_TASK_QUEUE}`);
    }
    const postmaster = await postmasterPid(db);
    const temporalPids = childPids(process.pid, /start-dev/);
    const cpu = () => ({ node: process.cpuUsage(), machine: machineBusySeconds(), pg: pgCpuMs(postmaster), temporal: temporalPids.reduce((a, p) => a + processCpuMs(p), 0) });
    const started = performance.now();
    const cpuBefore = cpu();
    let claimed = 0;
    if (temporal) {
      // The real thing: `billing-run:<date>` on a worker, each batch an activity.
      const totals = await temporal.client.workflow.execute<(input: BillingRunInput) => Promise<BillingRunTotals>>('billingRunWorkflow', {
        workflowId: billingRunWorkflowId(CYCLE_DATE), taskQueue: WORKFLOW_TASK_QUEUE,
        args: [{ cycleDate: CYCLE_DATE, batchSize: batch, lanes, graceDays: 3 }],
      });
      claimed = totals.claimed;
      log(`billing run (workflow ${billingRunWorkflowId(CYCLE_DATE)}): ${JSON.stringify(totals)}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } else {
      let batches = 0;
      const phases = new Map<string, number>();
      const lockedRetries = new Map<string, number>();
      // The workflow's loop (billing-run.workflow.ts): its lanes (cut at quantiles of the due ids, as
      // its first activity does) concurrently, each a keyset loop of batches.
      const cut = await lanesAtDueQuantiles(db, { cycleDate: CYCLE_DATE, count: lanes });
      const cutMs = performance.now() - started;
      // How even the cut was: each lane's charges and when it finished.
      const laneEnds = await Promise.all(cut.map(async (lane) => {
        let cursor: DueCursor = FIRST_CURSOR;
        let laneClaimed = 0;
        for (;;) {
          const r = await runBillingBatch({ db, engine, onPhase: (ph, ms) => phases.set(ph, (phases.get(ph) ?? 0) + ms), onLockedRetry: (why) => lockedRetries.set(why, (lockedRetries.get(why) ?? 0) + 1) }, { cycleDate: CYCLE_DATE, after: cursor, limit: batch, graceDays: 3, lane });
          claimed += r.claimed;
          laneClaimed += r.claimed;
          batches++;
          if (batches % 20 === 0) log(`${claimed} charged so far, ${((performance.now() - started) / 1000).toFixed(1)} s`);
          if (!r.cursor || r.scanned < batch) break;
          cursor = r.cursor;
        }
        return `${laneClaimed} charges by ${((performance.now() - started) / 1000).toFixed(1)} s`;
      }));
      log(`lanes cut at the due ids in ${cutMs.toFixed(0)} ms: ${laneEnds.join('; ')}`);
      await graceExpiredCharges(db, { cycleDate: CYCLE_DATE, afterId: '0', limit: batch });
      log(`billing run: ${claimed} charges in ${batches} batches over ${lanes} lanes, ${((performance.now() - started) / 1000).toFixed(1)} s (time in each step, summed over lanes: ${[...phases].map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')})`);
      log(`fee debits that went the locked way: ${[...lockedRetries].map(([k, v]) => `${v} (${k})`).join(', ') || 'none'}`);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpuAfter = cpu();
    const nodeCpu = process.cpuUsage(cpuBefore.node);
    // Where the CPU went: the machine, and of it PostgreSQL (every backend and autovacuum), this process
    // (with the worker in workflow mode) and the Temporal server.
    log(`CPU busy during the run: ${(cpuAfter.machine - cpuBefore.machine).toFixed(1)} s of ${(seconds * os.cpus().length).toFixed(1)} s; `
      + (postmaster ? `PostgreSQL ${((cpuAfter.pg - cpuBefore.pg) / 1000).toFixed(1)} s, ` : '') + `this process ${((nodeCpu.user + nodeCpu.system) / 1e6).toFixed(1)} s`
      + (temporalPids.length ? `, Temporal server ${((cpuAfter.temporal - cpuBefore.temporal) / 1000).toFixed(1)} s` : ''));
    await temporal?.stop();

    // From the ledger: one fee posting (a wallet posting named by its charge) per due subscription for the period.
    // Statistics first: the run wrote every row of recurring_charges and journal_entries since the
    // last ANALYZE, and without the foreign key to subscriptions (checked per statement now) the
    // planner no longer assumes one charge per subscription: on stale statistics the check became a
    // nested loop that ran for minutes.
    await db.raw('ANALYZE subscriptions, recurring_charges, journal_entries, postings');
    const check = await db.raw(`
      WITH per AS (
        SELECT s.id, count(p.source_ref) AS entries
          FROM subscriptions s
          LEFT JOIN recurring_charges rc ON rc.subscription_id = s.id AND rc.period_start = ?::timestamptz
          LEFT JOIN postings p ON p.source_ref = 'recurring-charge:' || rc.id
         GROUP BY s.id)
      SELECT count(*) FILTER (WHERE entries > 1)::int AS double_charged, count(*) FILTER (WHERE entries = 0)::int AS missed,
             count(*)::int AS subscriptions FROM per`, ['2026-12-01T00:00:00Z']);
    const c = check.rows[0] as { double_charged: number; missed: number; subscriptions: number };
    const unbalanced = await db.raw(`SELECT count(*)::int AS n FROM (SELECT 1 FROM postings GROUP BY journal_entry_id, unit HAVING sum(amount) <> 0) x`);
    log(`ledger: ${c.subscriptions} subscriptions, ${c.double_charged} double-charged, ${c.missed} missed, ${unbalanced.rows[0].n} unbalanced entries`);
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
    console.log(JSON.stringify({
      bench: 'billing-run', via: viaWorkflow ? 'workflow' : 'in-process', subscriptions: n, seconds: Number(seconds.toFixed(2)), per_s: Math.round(n / seconds),
      max_rss_mb: Math.round(maxRss / 1048576), double_charged: c.double_charged, missed: c.missed,
    }));
    if (c.double_charged !== 0 || c.missed !== 0 || unbalanced.rows[0].n !== 0) process.exitCode = 1;
  } finally {
    await temporal?.stop();
    await engine.close();
    await pool.end();
    await db.destroy();
    if (embedded) await embedded.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const WORKFLOW_TASK_QUEUE = 'bench-billing-run';


/** Loads the population set-based, in chunks (bounded memory on both sides). */
async function seed(db: ReturnType<typeof createDatabase>, n: number): Promise<void> {
  const plans: Record<string, string> = {};
  for (const [code, type, category, fee, service, units, shared, rollover] of [
    ['bench-prepaid', 'prepaid', 'standard', 1000, 'data', 5_000_000_000, false, true],
    ['bench-postpaid', 'postpaid', 'standard', 2500, 'voice', 6000, false, false],
    ['bench-hybrid', 'hybrid', 'standard', 1500, 'sms', 100, false, false],
    ['bench-family', 'postpaid', 'family', 2000, 'data', 20_000_000_000, true, false],
  ] as const) {
    const [p] = await db('plans').insert({
      code, name: code, payment_type: type, category, currency: 'EUR', recurring_fee_minor: fee, billing_period_unit: 'month',
      billing_period_count: 1, tariff: JSON.stringify(PREPAID_EXAMPLE_TARIFF),
    }).onConflict('code').merge(['name']).returning('id');
    await db('plan_allowances').insert({ plan_id: p.id, service, units: String(units), shared, rollover }).onConflict(['plan_id', 'service']).ignore();
    plans[type === 'postpaid' && category === 'family' ? 'family' : type] = p.id;
  }
  await db.raw(`INSERT INTO ledger_accounts (code, kind, unit) VALUES ('gateway_cash:EUR', 'gateway_cash', 'EUR') ON CONFLICT (code) DO NOTHING`);
  const chunk = 100_000;
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk) - 1;
    // kind by i % 20: 0–9 prepaid, 10–14 postpaid, 15–17 hybrid, 18–19 family (family i in groups of 4 share a parent).
    // Ids as the product makes them: customers, billing accounts and (by their default) subscriptions
    // time-ordered (`uuid_v7()`, migration …130200), subscribers random (the API derives them from a
    // hash of the activation's idempotency key); each wallet opened in its account's order, as the
    // product opens it with the account.
    await db.transaction(async (trx) => {
      await trx.raw(`
        CREATE TEMP TABLE bl ON COMMIT DROP AS
        SELECT i, CASE WHEN i % 20 < 10 THEN 'prepaid' WHEN i % 20 < 15 THEN 'postpaid' WHEN i % 20 < 18 THEN 'hybrid' ELSE 'family' END AS kind,
               uuid_v7() AS customer, uuid_v7() AS account, gen_random_uuid() AS subscriber
          FROM generate_series(?::int, ?::int) i`, [from, to]);
      // Family parents: one per 4 family lines (numbered by their rank among the family lines).
      await trx.raw(`
        CREATE TEMP TABLE fam ON COMMIT DROP AS
        SELECT i, (row_number() OVER (ORDER BY i) - 1) / 4 AS grp FROM bl WHERE kind = 'family'`);
      await trx.raw(`CREATE TEMP TABLE parents ON COMMIT DROP AS SELECT grp, uuid_v7() AS customer, uuid_v7() AS account FROM fam GROUP BY grp`);
      await trx.raw(`INSERT INTO customers (id, kind, name) SELECT customer, 'individual', 'Bench ' || i FROM bl
                     UNION ALL SELECT customer, 'individual', 'Bench family' FROM parents`);
      await trx.raw(`INSERT INTO billing_accounts (id, customer_id, payment_type, currency, credit_limit_minor)
                     SELECT account, customer, 'postpaid', 'EUR', 1000000 FROM parents`);
      await trx.raw(`INSERT INTO billing_accounts (id, customer_id, parent_account_id, payment_type, currency, credit_limit_minor)
                     SELECT bl.account, bl.customer, p.account, CASE bl.kind WHEN 'family' THEN 'postpaid' ELSE bl.kind END, 'EUR',
                            CASE bl.kind WHEN 'prepaid' THEN 0 WHEN 'hybrid' THEN 5000 ELSE 100000 END
                       FROM bl LEFT JOIN fam f ON f.i = bl.i LEFT JOIN parents p ON p.grp = f.grp`);
      await trx.raw(`INSERT INTO ledger_accounts (code, kind, unit, billing_account_id)
                     SELECT 'wallet:' || a.id, 'wallet', 'EUR', a.id FROM billing_accounts a
                      WHERE a.id IN (SELECT account FROM bl UNION ALL SELECT account FROM parents)
                      ORDER BY a.id`);
      await trx.raw(`INSERT INTO wallets (ledger_account_id, billing_account_id, currency, credit_limit_micros)
                     SELECT la.id, la.billing_account_id, 'EUR', a.credit_limit_minor * 10000
                       FROM ledger_accounts la JOIN billing_accounts a ON a.id = la.billing_account_id
                      WHERE la.code = ANY(SELECT 'wallet:' || account FROM bl UNION ALL SELECT 'wallet:' || account FROM parents)
                      ORDER BY la.id`);
      // Prepaid and hybrid wallets hold 50.00 EUR: one funding entry for the chunk (gateway cash → wallets).
      await trx.raw(`
        WITH funded AS (SELECT w.ledger_account_id FROM wallets w JOIN bl ON bl.account = w.billing_account_id WHERE bl.kind IN ('prepaid', 'hybrid')),
        je AS (INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, occurred_at, details)
               VALUES ('top_up', 'bench-seed', 'bench-seed:' || ?::text, 'bench', now(), '{}') RETURNING id),
        p AS (INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
              SELECT je.id, f.ledger_account_id, 'EUR', 50000000 FROM je, funded f
              UNION ALL SELECT je.id, (SELECT id FROM ledger_accounts WHERE code = 'gateway_cash:EUR'), 'EUR', -50000000 * (SELECT count(*) FROM funded) FROM je
              RETURNING 1)
        UPDATE wallets SET balance_micros = 50000000 WHERE ledger_account_id IN (SELECT ledger_account_id FROM funded)`, [String(from)]);
      await trx.raw(`INSERT INTO subscribers (id, billing_account_id, msisdn, state, activated_at)
                     SELECT subscriber, account, (491500000000 + i)::text, 'active', ?::timestamptz FROM bl`, [ANCHOR]);
      await trx.raw(`INSERT INTO subscriptions (subscriber_id, plan_id, state, period_anchor, current_period_start, current_period_end, next_charge_on, started_at)
                     SELECT subscriber, CASE kind WHEN 'prepaid' THEN ?::uuid WHEN 'postpaid' THEN ?::uuid WHEN 'hybrid' THEN ?::uuid ELSE ?::uuid END,
                            'active', ?::timestamptz, ?::timestamptz, ?::timestamptz + interval '1 month', ?::date, ?::timestamptz
                       FROM bl`, [plans.prepaid, plans.postpaid, plans.hybrid, plans.family, ANCHOR, ANCHOR, ANCHOR, CYCLE_DATE, ANCHOR]);
    });
    log(`seeded ${to + 1}/${n}`);
  }
  // What a production database looks like at 02:00: bulk-loaded tables vacuumed (visibility map,
  // hint bits) and analyzed by autovacuum long ago, and their pages checkpointed — so the timed run
  // does not pay the load's write-back (a checkpoint's full-page images) or first-read hint-bit writes.
  await db.raw('VACUUM ANALYZE');
  await db.raw('CHECKPOINT');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
