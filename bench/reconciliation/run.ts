/**
 * bench:reconciliation — N wholesale records (default 10,000,000) against N rated usage events
 * with ~1 % injected faults, from the file on disk to a report ready for approval.
 *
 *   npm run bench:reconciliation -- --records 100000
 *
 * Set-up (not timed): a database (DATABASE_URL, or an embedded PostgreSQL in a temp dir), the
 * partner, SIMs, N rated usage rows (COPY), and the MNO file written by the generator (faults to
 * a JSONL log). Timed: import (parse + COPY) → run (stage our usage, match every chunk, settle,
 * write reports). Then the discrepancies are scored against the fault log (not timed) and one
 * line of JSON is printed last.
 *
 * Flags: --records N, --fault-rate 0.01, --clean-drift 0, --gzip, --concurrency 2 (chunks
 * matched at once), --chunks 16, --keep (leave the temp dir).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { createDatabase, migrateToLatest } from '../../platform/database';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../platform/embedded-postgres';
import { freePort } from '../../platform/ports';
import { createPartner, rateCardToRows } from '../../domain/reconciliation/partners';
import { createRun, finalizeRun, matchChunk, stageRun } from '../../domain/reconciliation/reconciliation-runs';
import { importWholesaleFileFromPath } from '../../domain/reconciliation/wholesale-import';
import { scoreRun, seedRatedUsage, seedSims } from '../../domain/reconciliation/testing/fixtures';
import {
  SAMPLE_WHOLESALE_RATE_CARD,
  syntheticRatedUsageEvents,
  writeWholesaleFile,
} from '../../domain/reconciliation/wholesale-file.generator';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return undefined;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? 'true' : v;
}
const num = (name: string, dflt: number) => (flag(name) === undefined ? dflt : Number(flag(name)));
const log = (m: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const uptime = () => {
  try {
    return execSync('uptime').toString().trim();
  } catch {
    return os.loadavg().map((l) => l.toFixed(2)).join(' ');
  }
};

async function main(): Promise<void> {
  const records = num('records', 10_000_000);
  const faultRate = num('fault-rate', 0.01);
  const cleanDrift = num('clean-drift', 0);
  const concurrency = num('concurrency', 2);
  const chunks = num('chunks', 16);
  const gzip = flag('gzip') !== undefined;
  const seed = 'bench-recon';
  log(`bench:reconciliation — ${records} records, fault rate ${faultRate}, ${os.cpus().length} cores; ${uptime()}`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvno-bench-recon-'));
  fs.chmodSync(dir, 0o755);
  let embedded: EmbeddedPostgresHandle | undefined;
  let url = process.env.DATABASE_URL;
  const dbName = `bench_recon_${Date.now().toString(36)}`;
  if (url) {
    await ensureDatabase(url, dbName);
    const u = new URL(url);
    u.pathname = `/${dbName}`;
    url = u.toString();
    log(`using the PostgreSQL at DATABASE_URL, database ${dbName}`);
  } else {
    const port = await freePort();
    log(`starting embedded PostgreSQL on ${port} in ${dir}`);
    embedded = await startEmbeddedPostgres({
      dataDir: path.join(dir, 'pg'),
      port,
      settings: { max_wal_size: '8GB', shared_buffers: '1GB', maintenance_work_mem: '256MB', checkpoint_timeout: '30min' },
    });
    await ensureDatabase(embedded.url, dbName);
    url = embedded.databaseUrl(dbName);
  }
  const db = createDatabase(url, { poolMax: concurrency + 4, applicationName: 'mvno-bss-bench-recon' });
  try {
    await migrateToLatest(db);
    const { rows: settings } = await db.raw(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_wal_size', 'work_mem')`,
    );
    log(`postgres: ${settings.map((r: { name: string; setting: string }) => `${r.name}=${r.setting}`).join(' ')}`);
    await createPartner(
      db,
      { code: 'bench-mno', name: 'Bench MNO', currency: 'EUR', rateCard: rateCardToRows(SAMPLE_WHOLESALE_RATE_CARD), effectiveFrom: '2024-01-01' },
      'bench',
    );
    const usage = { count: records, seed, periodStartMs: Date.UTC(2025, 0, 1, 12), periodMs: 29 * 86_400_000 };
    const subs = Math.max(1, Math.floor(records / 50));
    const imsis = function* () {
      for (let i = 0; i < subs; i++) yield '26201' + String(i).padStart(10, '0');
    };
    let t = Date.now();
    await seedSims(db, imsis());
    await seedRatedUsage(db, syntheticRatedUsageEvents(usage), SAMPLE_WHOLESALE_RATE_CARD);
    await db.raw('ANALYZE rated_usage');
    await db.raw('ANALYZE sims');
    log(`set-up: ${subs} SIMs and ${records} rated usage rows in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    const filePath = path.join(dir, gzip ? 'wholesale.csv.gz' : 'wholesale.csv');
    const faultLogPath = path.join(dir, 'faults.jsonl');
    const gen = await writeWholesaleFile(filePath, syntheticRatedUsageEvents(usage), SAMPLE_WHOLESALE_RATE_CARD, {
      seed: seed + '-file',
      faultRate,
      cleanDriftRate: cleanDrift,
      gzip,
      collectFaults: false,
      faultLogPath,
    });
    const size = fs.statSync(filePath).size;
    log(`set-up: file of ${gen.rowsWritten} rows (${(size / 1e6).toFixed(0)} MB) in ${((Date.now() - t) / 1000).toFixed(1)} s; faults ${JSON.stringify(gen.faultCounts)}`);
    await db.raw('CHECKPOINT');

    // ---- timed ----------------------------------------------------------------------------
    log(`timed part starts; ${uptime()}`);
    const t0 = Date.now();
    const imp = await importWholesaleFileFromPath(db, { partnerCode: 'bench-mno', path: filePath, actor: 'bench', chunkCount: chunks });
    const tImport = Date.now();
    log(`import: ${imp.records} records, ${imp.rejected} rejected in ${((tImport - t0) / 1000).toFixed(1)} s`);
    const run = await createRun(db, { partnerCode: 'bench-mno', period: '2025-01', actor: 'bench', chunkCount: chunks });
    await stageRun(db, run.id);
    const tStage = Date.now();
    log(`staged our usage in ${((tStage - tImport) / 1000).toFixed(1)} s`);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const c = next++;
        if (c >= run.chunkCount) return;
        const s = Date.now();
        await matchChunk(db, run.id, c);
        if (c < 2 || c === run.chunkCount - 1) log(`chunk ${c} matched in ${((Date.now() - s) / 1000).toFixed(1)} s`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const tMatch = Date.now();
    log(`matched ${run.chunkCount} chunks in ${((tMatch - tStage) / 1000).toFixed(1)} s`);
    const done = await finalizeRun(db, run.id);
    const t1 = Date.now();
    log(`settled and reported in ${((t1 - tMatch) / 1000).toFixed(1)} s; status ${done.status}; counts ${JSON.stringify(done.summary?.counts)}`);
    // ---- end of timed part ---------------------------------------------------------------------

    const score = await scoreRun(db, run.id, { faultLogPath });
    log(`score: expected ${score.expected}, flagged ${score.flagged}, true positives ${score.truePositives}`);
    if (score.falsePositives.length) log(`false positives (first): ${score.falsePositives.slice(0, 10).join(' ')}`);
    if (score.falseNegatives.length) log(`false negatives (first): ${score.falseNegatives.slice(0, 10).join(' ')}`);
    const seconds = (t1 - t0) / 1000;
    const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    log(`after: ${uptime()}`);
    process.stdout.write(
      JSON.stringify({
        bench: 'reconciliation',
        records: imp.records,
        seconds: Number(seconds.toFixed(1)),
        records_per_s: Math.round(imp.records / seconds),
        max_rss_mb: maxRssMb,
        precision: Number(score.precision.toFixed(6)),
        recall: Number(score.recall.toFixed(6)),
      }) + '\n',
    );
  } finally {
    await db.destroy();
    if (embedded) await embedded.stop().catch(() => undefined);
    else if (process.env.DATABASE_URL && flag('keep') === undefined) {
      const admin = createDatabase(process.env.DATABASE_URL);
      await admin.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
      await admin.destroy();
    }
    if (flag('keep') === undefined) fs.rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
