/** Replays committed billing-run histories (real runs, exported as JSON) against today's workflow
 * code, so a change to `billing-run:<date>` that would make a run in flight non-deterministic fails
 * here. Each history is a run that issued a due postpaid invoice and started its `invoice:<id>`.
 *
 * - `billing-run-issue-due-v1.json`: recorded before the patch `invoice-workflows-by-date` (the run
 *   started `invoice:<id>` as children itself). Keep it: runs of that code may still be in flight.
 * - `billing-run-issue-due-v2.json`: recorded before the patch `billing-run-lanes` (one sequential
 *   loop of batches). Keep it for the same reason.
 * - `billing-run-issue-due-v3.json`: recorded before the patch `billing-run-lanes-at-quantiles` (lanes
 *   of equal width, no `billingRunLanes` activity). Keep it for the same reason.
 * - `billing-run-issue-due.json`: today's code; record it again after an intended, patched change
 *   (rename the old one to the next `-vN` first):
 *   RECORD_BILLING_HISTORIES=1 npx jest test/billing/replay.test.ts --selectProjects integration
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Pool } from 'pg';
import { createTestDatabase, testServices } from '../support/services';
import { createChargingEngine } from '../../domain/charging/charging-engine';
import { startBillingWorker } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { openInvoiceFor } from '../../domain/billing/invoices.repository';

const DIR = path.join(__dirname, 'histories');
const RECORD = Boolean(process.env.RECORD_BILLING_HISTORIES);

/** Temporal's JSON history → History, read with @temporalio/proto's own protobufjs copy (see
 * test/lifecycle/replay.test.ts for why). */
function loadHistory(file: string): proto.temporal.api.history.v1.IHistory {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { fromJson } = require(require.resolve('protobufjs/ext/protojson', { paths: [require.resolve('@temporalio/proto')] })) as { fromJson: (t: unknown, v: unknown, o: object) => unknown };
  const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(n: string): unknown }).lookupType('temporal.api.history.v1.History');
  return fromJson(historyType, JSON.parse(fs.readFileSync(file, 'utf8')), { ignoreUnknownFields: true }) as proto.temporal.api.history.v1.IHistory;
}

/** A run on a fixed date with one postpaid invoice due (a one-off on it; the account has no card, so
 * its `invoice:<id>` stops at the first collection and waits: terminated afterwards). */
async function record(): Promise<void> {
  const t = await createTestDatabase();
  const pool = new Pool({ connectionString: t.url, max: 2 });
  const engine = createChargingEngine({ pool });
  const w = await startBillingWorker(t.db, { chargingEngine: engine });
  try {
    const account = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 10_000n });
    const open = await openInvoiceFor(t.db, account, '2026-05-10');
    await t.db('invoice_lines').insert({ invoice_id: open.id, kind: 'one_off', description: 'SIM card', amount_minor: 1000, source_ref: 'sim' });
    const workflowId = 'billing-run:2026-06-01';
    const h = await w.client.workflow.start('billingRunWorkflow', { workflowId, taskQueue: w.taskQueue, args: [{ cycleDate: '2026-06-01', batchSize: 10 }] });
    await h.result();
    await w.client.workflow.getHandle(`invoice:${open.id}`).terminate('recorded').catch(() => undefined);
    fs.mkdirSync(DIR, { recursive: true });
    const json = execFileSync(testServices().temporalCliPath, ['workflow', 'show', '--workflow-id', workflowId, '--address', testServices().temporalAddress, '--output', 'json'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(DIR, 'billing-run-issue-due.json'), `${JSON.stringify(JSON.parse(json), null, 1)}\n`);
  } finally {
    await w.stop();
    await engine.close();
    await pool.end();
    await t.drop();
  }
}

describe('replay of committed billing-run histories', () => {
  if (RECORD) test('record the history of a run', record, 60_000);
  if (RECORD) return;
  beforeAll(() => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    } catch {
      /* already installed in this worker process */
    }
  });
  const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort() : [];
  test('histories are committed', () => {
    expect(files).toEqual(expect.arrayContaining(['billing-run-issue-due-v1.json', 'billing-run-issue-due-v2.json', 'billing-run-issue-due-v3.json', 'billing-run-issue-due.json']));
  });
  test.each(files)('%s replays without non-determinism', async (file) => {
    await Worker.runReplayHistory({ workflowBundle: { codePath: testServices().workflowBundlePath } }, loadHistory(path.join(DIR, file)), file.replace(/\.json$/, ''));
  });
});
