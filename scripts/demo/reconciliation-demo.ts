/**
 * `npm run demo:reconciliation` (with `npm start` running in another terminal): reconcile a month of
 * the demo partner `demo-mno` end to end and write the settlement report to a file you can open.
 *
 *   1. Rated usage of the month: what the project rated, topped up with synthetic demo usage on the
 *      demo SIMs so there is something to see (ids `demo-recon-*`; only when the month is nearly empty).
 *   2. The MNO file: made by the generator from that usage, with ~2 % injected faults, gzip.
 *   3. Upload (streamed HTTP), `reconciliationRunStart` (GraphQL) → the workflow
 *      `reconciliation:demo-mno:<month>` (watch it in the Temporal UI), progress, the report.
 *
 * Flags: --period YYYY-MM (default: the previous month), --events N (default 5000).
 */
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
  try {
    await ensureDemoPartner(db);
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
    const dir = path.join(config.embedded.dataDir, 'reconciliation-demo');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${DEMO_PARTNER_CODE}-${period}-${Date.now()}.csv.gz`);
    const gen = await writeWholesaleFile(file, events, SAMPLE_WHOLESALE_RATE_CARD, { seed: file, faultRate: 0.02, gzip: true });
    console.log(`MNO file ${file}: ${gen.rowsWritten} rows, injected ${JSON.stringify(gen.faultCounts)}`);

    const up = await fetch(`${api}/reconciliation/partners/${DEMO_PARTNER_CODE}/imports?fileName=${encodeURIComponent(path.basename(file))}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/octet-stream' },
      body: fs.readFileSync(file),
    });
    console.log(`upload: ${up.status} ${JSON.stringify(await up.json())}`);
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const r = await fetch(`${api}/graphql`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      return (await r.json()) as { data: Record<string, any>; errors?: unknown[] }; // eslint-disable-line @typescript-eslint/no-explicit-any
    };
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
    console.log(`approve as finance: mutation { reconciliationRunApprove(input: { runId: "${r.id}" }) { run { status approvedBy } userErrors { message } } }`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
