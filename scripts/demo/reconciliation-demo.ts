/**
 * `npm run demo:reconciliation` (with `npm start` running in another terminal): reconcile a month of
 * the demo partner `demo-mno` end to end and write the settlement report to a file you can open.
 *
 *   1. Rated usage of the month: what the project rated, topped up with synthetic demo usage on the
 *      demo SIMs so there is something to see (ids `demo-recon-*`; only when the month is nearly empty).
 *   2. The MNO file: made by the generator from that usage, with ~2 % injected faults, gzip.
 *   3. Upload (streamed HTTP), or with --inbox: dropped into the watched folder
 *      `<DATA_DIR>/reconciliation-inbox/demo-mno/` (written as *.part, then renamed) and imported by
 *      the worker. Run again for the same month: the month's file is already imported, so only a
 *      new run version is made (a second file with the same usage would show as duplicates).
 *   4. `reconciliationRunStart` (GraphQL) → the workflow `reconciliation:demo-mno:<month>` (watch it
 *      in the Temporal UI), progress, the report written next to the file (and opened with --open).
 *
 * Flags: --period YYYY-MM (default: the previous month), --events N (default 5000), --inbox, --open.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../platform/config';
import { createDatabase } from '../../platform/database';
import { embeddedDatabaseUrl } from '../../platform/dev-stack';
import { DEMO_PARTNER_CODE, ensureDemoPartner } from '../../activities/reconciliation.schedule';
import { seedRatedUsage, seedSims } from '../../domain/reconciliation/testing/fixtures';
import {
  SAMPLE_WHOLESALE_RATE_CARD,
  syntheticRatedUsageEvents,
  writeWholesaleFile,
  type RatedUsageEvent,
} from '../../domain/reconciliation/wholesale-file.generator';
import { previousPeriod } from '../../workflows/reconciliation.messages';

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
};
const has = (name: string) => process.argv.includes(`--${name}`);

type ImportRow = { id: string; fileName: string; records: number; rejected: number; firstStartedAt: string | null; lastStartedAt: string | null };

/** Open a file with the desktop's viewer; nothing happens where there is none. */
function openFile(file: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [file]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', file]] : ['xdg-open', [file]];
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  child.on('error', () => console.log(`(could not open it: no ${cmd} here)`));
  child.unref();
}

async function main(): Promise<void> {
  const config = loadConfig();
  const period = arg('period') ?? previousPeriod(Date.now());
  const [y, m] = period.split('-').map(Number);
  const start = Date.UTC(y, m - 1, 1);
  const end = Date.UTC(y, m, 1);
  const db = createDatabase(config.databaseUrl ?? embeddedDatabaseUrl(config));
  const keyFile = path.join(config.embedded.dataDir, 'dev-admin-key');
  if (!fs.existsSync(keyFile)) throw new Error(`no ${keyFile}: start the stack first (npm start)`);
  const key = fs.readFileSync(keyFile, 'utf8').trim();
  const api = `http://${config.api.host}:${config.api.port}`;
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const r = await fetch(`${api}/graphql`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return (await r.json()) as { data: Record<string, any>; errors?: unknown[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const importsOfMonth = async (): Promise<ImportRow[]> => {
    const r = await gql(`query($p: String!) { wholesaleImports(partnerCode: $p) { id fileName records rejected firstStartedAt lastStartedAt } }`, { p: DEMO_PARTNER_CODE });
    if (!r.data) throw new Error(`the API at ${api} answered ${JSON.stringify(r.errors)}`);
    return (r.data.wholesaleImports as ImportRow[]).filter(
      (i) => i.firstStartedAt && i.lastStartedAt && Date.parse(i.firstStartedAt) < end && Date.parse(i.lastStartedAt) >= start,
    );
  };
  try {
    await fetch(`${api}/healthz`).catch(() => {
      throw new Error(`no API at ${api}: start the stack first (npm start, with the same DATA_DIR and API_PORT)`);
    });
    await ensureDemoPartner(db);
    const dir = path.join(config.embedded.dataDir, 'reconciliation-demo');
    fs.mkdirSync(dir, { recursive: true });
    /** The month's usage (topped up with synthetic demo usage when nearly empty), the MNO file, its import. */
    const importMonth = async () => {
      const { rows } = await db.raw(`SELECT count(*)::int AS n FROM rated_usage WHERE started_at >= ? AND started_at < ?`, [new Date(start), new Date(end)]);
      if (rows[0].n < 100) {
        const count = Number(arg('events') ?? 5000);
        const synthetic = [...syntheticRatedUsageEvents({ count, seed: `demo-recon-${period}`, periodStartMs: start + 12 * 3600_000, periodMs: end - start - 36 * 3600_000, imsiPrefix: '99901' })]
          .map((e) => ({ ...e, usageEventId: `demo-recon-${period}-${e.usageEventId}` }));
        const { rows: known } = await db.raw(`SELECT imsi FROM sims WHERE imsi = ANY(?)`, [[...new Set(synthetic.map((e) => e.imsi))]]);
        const have = new Set(known.map((r: { imsi: string }) => r.imsi));
        await seedSims(db, [...new Set(synthetic.map((e) => e.imsi))].filter((i) => !have.has(i)));
        await seedRatedUsage(db, synthetic, SAMPLE_WHOLESALE_RATE_CARD);
        console.log(`added ${count} synthetic demo usage events for ${period}`);
      }
      const { rows: usage } = await db.raw(
        `SELECT charging_data_ref || '#' || id AS id, imsi, msisdn, service, started_at, used_units, zone FROM rated_usage
          WHERE started_at >= ? AND started_at < ? AND imsi IS NOT NULL ORDER BY started_at`,
        [new Date(start), new Date(end)],
      );
      const zones = new Set(Object.keys(SAMPLE_WHOLESALE_RATE_CARD.data ?? {}));
      const events: RatedUsageEvent[] = usage.map((u: Record<string, string | Date>) => ({
        usageEventId: u.id as string,
        imsi: u.imsi as string,
        msisdn: (u.msisdn as string | null) ?? null,
        service: u.service as RatedUsageEvent['service'],
        startedAt: u.started_at as Date,
        volume: BigInt(u.used_units as string),
        zone: zones.has(u.zone as string) ? (u.zone as string) : 'home',
      }));
      const file = path.join(dir, `${DEMO_PARTNER_CODE}-${period}.csv.gz`);
      const gen = await writeWholesaleFile(file, events, SAMPLE_WHOLESALE_RATE_CARD, { seed: `demo-recon-${period}-file`, faultRate: 0.02, gzip: true });
      console.log(`MNO file ${file}: ${gen.rowsWritten} rows, injected ${JSON.stringify(gen.faultCounts)}`);
      if (!has('inbox')) {
        const up = await fetch(`${api}/reconciliation/partners/${DEMO_PARTNER_CODE}/imports?fileName=${encodeURIComponent(path.basename(file))}`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/octet-stream' },
          body: fs.readFileSync(file),
        });
        const body = JSON.stringify(await up.json());
        if (!up.ok) throw new Error(`upload refused: ${up.status} ${body}`);
        console.log(`upload: ${up.status} ${body}`);
        return;
      }
      // The watched folder: written under a temporary name, renamed when complete; the worker takes it.
      const inbox = path.join(config.reconciliation.inboxDir, DEMO_PARTNER_CODE);
      fs.mkdirSync(inbox, { recursive: true });
      const dropped = path.join(inbox, path.basename(file));
      fs.copyFileSync(file, `${dropped}.part`);
      fs.renameSync(`${dropped}.part`, dropped);
      console.log(`dropped into ${inbox}/ — waiting for the worker to import it…`);
      const reason = path.join(inbox, 'rejected', `${path.basename(file)}.reason.txt`);
      for (let i = 0; i < 120; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        const imported = (await importsOfMonth()).find((x) => x.fileName === path.basename(file));
        if (imported) {
          console.log(`imported from the inbox: import ${imported.id}, ${imported.records} records, ${imported.rejected} rows rejected`);
          return;
        }
        if (fs.existsSync(reason)) throw new Error(`the file was refused: ${fs.readFileSync(reason, 'utf8').trim()}`);
      }
      throw new Error(`the file was not imported within 2 minutes: is the worker watching ${config.reconciliation.inboxDir} (RECONCILIATION_INBOX_POLL_MS)?`);
    };
    const existing = await importsOfMonth();
    if (existing.length > 0) {
      console.log(`${period} already has its MNO file (${existing.map((i) => `import ${i.id} '${i.fileName}', ${i.records} records`).join('; ')}): reconciling it again as a new version`);
    } else await importMonth();

    const started = await gql(`mutation($p: String!) { reconciliationRunStart(input: { partnerCode: "${DEMO_PARTNER_CODE}", period: $p }) { reconciliation { workflowId } userErrors { code message } } }`, { p: period });
    console.log(`start: ${JSON.stringify(started.data?.reconciliationRunStart ?? started.errors)}`);
    let runId: string | null = null;
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const p = await gql(`query($p: String!) { reconciliationProgress(partnerCode: "${DEMO_PARTNER_CODE}", period: $p) { stage runId chunksDone chunkCount } }`, { p: period });
      const pr = p.data?.reconciliationProgress;
      if (pr) process.stdout.write(`\r${pr.stage} ${pr.chunksDone}/${pr.chunkCount}   `);
      if (pr?.stage === 'ready') {
        runId = pr.runId;
        break;
      }
      if (pr?.stage === 'failed') throw new Error('the reconciliation failed: see the workflow in the Temporal UI');
    }
    console.log('');
    if (!runId) throw new Error('the reconciliation did not finish in 10 minutes');
    const run = await gql(`query($id: ID!) { reconciliationRun(id: $id) { id version status counts settlement { htmlUrl csvUrl jsonUrl html csv } } }`, { id: runId });
    const r = run.data.reconciliationRun;
    const html = path.join(dir, `settlement-${DEMO_PARTNER_CODE}-${period}-v${r.version}.html`);
    fs.writeFileSync(html, r.settlement.html);
    fs.writeFileSync(html.replace(/\.html$/, '.csv'), r.settlement.csv);
    console.log(`run ${r.id} v${r.version}: ${r.status}; ${JSON.stringify(r.counts)}`);
    console.log(`report: file://${html}\n        ${api}${r.settlement.htmlUrl} (with the API key)`);
    if (has('open')) openFile(html);
    console.log(`approve as finance: mutation { reconciliationRunApprove(input: { runId: "${r.id}" }) { run { status approvedBy } userErrors { message } } }`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
