import crypto from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { createTestDatabase, testServices } from '../support/services';
import { createReconciliationActivities } from '../../activities/reconciliation.activities';
import { importWholesaleFile } from '../../domain/reconciliation/wholesale-import';
import { getRun } from '../../domain/reconciliation/reconciliation-runs';
import { scoreRun } from '../../domain/reconciliation/testing/fixtures';
import type { InjectedFault } from '../../domain/reconciliation/wholesale-file.generator';
import { reconciliationProgressQuery } from '../../workflows/reconciliation.messages';
import { asInput, createSamplePartner, generateFile, reconcile, seedUsage } from './support';

jest.setTimeout(120_000);

/**
 * The worker "crashes" inside the workflow twice: once after chunk 3 was committed but before the
 * activity reported back, once in the middle of staging. Temporal retries; the result equals an
 * uninterrupted run's and every fault is still found exactly once.
 */
describe('reconciliation workflow survives crashes without double counting', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let faults: InjectedFault[];

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    } catch {
      /* installed by another suite in this worker */
    }
    t = await createTestDatabase();
    await createSamplePartner(t.db);
    const events = await seedUsage(t.db, 4_000, 'recon-crash');
    const g = await generateFile(events, { seed: 'recon-crash-file', faultRate: 0.05 });
    faults = g.summary.faults ?? [];
    await importWholesaleFile(t.db, { partnerCode: 'mno-a', input: asInput(g.bytes), fileName: 'jan.csv', source: 'upload', actor: 'test' });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it('resumes after an activity dies mid-way and matches an uninterrupted run', async () => {
    const services = testServices();
    const real = createReconciliationActivities({ db: t.db });
    const crashed = new Set<string>();
    const activities = {
      ...real,
      async reconciliationStage(input: { runId: string }) {
        if (!crashed.has('stage')) {
          crashed.add('stage');
          await real.reconciliationStage(input);
          await t.db.raw(`TRUNCATE reconciliation_our_usage_${input.runId}_2`); // an UNLOGGED table emptied by a crash
          throw new Error('worker killed after staging');
        }
        return real.reconciliationStage(input);
      },
      async reconciliationMatchChunk(input: { runId: string; chunk: number }) {
        const r = await real.reconciliationMatchChunk(input);
        if (input.chunk === 3 && !crashed.has('chunk3')) {
          crashed.add('chunk3');
          throw new Error('worker killed after the chunk committed');
        }
        return r;
      },
    };
    const taskQueue = `recon-crash-${crypto.randomBytes(4).toString('hex')}`;
    const native = await NativeConnection.connect({ address: services.temporalAddress });
    const worker = await Worker.create({ connection: native, namespace: 'default', taskQueue, workflowBundle: { codePath: services.workflowBundlePath }, activities });
    const running = worker.run();
    const connection = await Connection.connect({ address: services.temporalAddress });
    const client = new Client({ connection, namespace: 'default' });
    try {
      const handle = await client.workflow.start('reconciliationWorkflow', {
        workflowId: `reconciliation:mno-a:2025-01:${taskQueue}`,
        taskQueue,
        args: [{ partnerCode: 'mno-a', period: '2025-01', actor: 'test' }],
      });
      const result = await handle.result();
      expect(result.status).toBe('ready');
      expect(crashed).toEqual(new Set(['stage', 'chunk3']));
      expect((await handle.query(reconciliationProgressQuery)).chunksDone).toBe(16);

      const reference = await reconcile(t.db, 'mno-a');
      const crashedRun = await getRun(t.db, result.runId);
      expect(crashedRun.summary!.counts).toEqual(reference.summary!.counts);
      expect(crashedRun.summary!.totals).toEqual(reference.summary!.totals);
      const score = await scoreRun(t.db, result.runId, faults);
      expect([score.precision, score.recall]).toEqual([1, 1]);
      const { rows } = await t.db.raw(`SELECT count(*)::int AS n FROM reconciliation_chunks WHERE run_id = ?`, [result.runId]);
      expect(rows[0].n).toBe(16);
    } finally {
      worker.shutdown();
      await running;
      await native.close();
      await connection.close();
    }
  });
});
