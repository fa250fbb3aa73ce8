import request from 'supertest';
import { createTestDatabase } from '../support/services';
import { startTestWorker } from '../support/temporal';
import { buildTestApi } from '../api/support';
import { ensureReconciliationSchedule } from '../../activities/reconciliation.schedule';
import { scoreRun } from '../../domain/reconciliation/testing/fixtures';
import { reconciliationProgressQuery, reconciliationWorkflowId, RECONCILIATION_SCHEDULE_ID } from '../../workflows/reconciliation.messages';
import type { InjectedFault } from '../../domain/reconciliation/wholesale-file.generator';
import { generateFile, seedUsage } from './support';

jest.setTimeout(120_000);

let t: Awaited<ReturnType<typeof createTestDatabase>>;
let temporal: Awaited<ReturnType<typeof startTestWorker>>;
let api: Awaited<ReturnType<typeof buildTestApi>>;
let faults: InjectedFault[];
let file: Buffer;

beforeAll(async () => {
  t = await createTestDatabase();
  temporal = await startTestWorker(t.db);
  api = await buildTestApi(t.db, temporal.client, temporal.taskQueue);
  const events = await seedUsage(t.db, 6_000, 'recon-wf');
  const g = await generateFile(events, { seed: 'recon-wf-file', faultRate: 0.05, gzip: true });
  faults = g.summary.faults ?? [];
  file = g.bytes;
});

afterAll(async () => {
  await temporal?.stop();
  await t?.drop();
});

const PARTNER_CREATE = `mutation($input: ReconciliationPartnerCreateInput!) {
  reconciliationPartnerCreate(input: $input) { partner { code currency terms { version timeWindowMs rates { service zone microsPerUnit unitSize } } } userErrors { field message code } } }`;

const rateCard = [
  ['data', 'home', '1', '1024'], ['data', 'roam-eu', '2', '1024'], ['data', 'roam-world', '40', '1024'],
  ['voice', 'home', '5000', '60'], ['voice', 'roam-eu', '10000', '60'], ['voice', 'roam-world', '450000', '60'],
  ['sms', 'home', '8000', '1'], ['sms', 'roam-eu', '10000', '1'], ['sms', 'roam-world', '150000', '1'],
].map(([service, zone, microsPerUnit, unitSize]) => ({ service, zone, microsPerUnit, unitSize }));

describe('reconciliation through GraphQL and the workflow', () => {
  it('creates a partner (finance), refuses it to support, and versions its terms', async () => {
    const input = { code: 'mno-a', name: 'MNO A', currency: 'EUR', rateCard, effectiveFrom: '2024-01-01', tolerances: { timeWindowMs: 120000 } };
    const denied = await api.gql('support', PARTNER_CREATE, { input });
    expect(denied.body.errors[0].extensions.code).toBe('FORBIDDEN');
    const res = await api.gql('finance', PARTNER_CREATE, { input });
    expect(res.body.data.reconciliationPartnerCreate.userErrors).toEqual([]);
    expect(res.body.data.reconciliationPartnerCreate.partner.terms[0].rates).toHaveLength(9);
    const dup = await api.gql('admin', PARTNER_CREATE, { input });
    expect(dup.body.data.reconciliationPartnerCreate.userErrors[0].code).toBe('PARTNER_EXISTS');
    const upd = await api.gql(
      'admin',
      `mutation($input: ReconciliationPartnerUpdateInput!) { reconciliationPartnerUpdate(input: $input) { partner { terms { version effectiveFrom timeWindowMs } } userErrors { code message } } }`,
      { input: { code: 'mno-a', tolerances: { timeWindowMs: 120000, volumeRelativePpm: 10000 }, effectiveFrom: '2024-06-01' } },
    );
    expect(upd.body.data.reconciliationPartnerUpdate.userErrors).toEqual([]);
    expect(upd.body.data.reconciliationPartnerUpdate.partner.terms.map((x: { version: number }) => x.version)).toEqual([2, 1]);
  });

  it('imports through the streamed HTTP upload and refuses the same file again', async () => {
    const up = () =>
      request(api.app)
        .post('/reconciliation/partners/mno-a/imports?fileName=jan.csv.gz')
        .set('Authorization', `Bearer ${api.keys.finance}`)
        .set('Content-Type', 'application/octet-stream')
        .send(file);
    const first = await up();
    expect(first.status).toBe(201);
    expect(first.body.import.records).toBeGreaterThan(6_000);
    const again = await up();
    expect(again.status).toBe(409);
    expect(again.body.errors[0].message).toMatch(/already imported/);
    const support = await request(api.app).post('/reconciliation/partners/mno-a/imports').set('Authorization', `Bearer ${api.keys.support}`).send('x');
    expect(support.status).toBe(403);
    const small = await api.gql('finance', `mutation($input: WholesaleImportCreateInput!) { wholesaleImportCreate(input: $input) { import { id records rejected rejections { lineNumber reason } } userErrors { code message } } }`, {
      input: { partnerCode: 'mno-a', fileName: 'bad.csv', content: 'record_id,imsi,msisdn,service,started_at,volume,zone,wholesale_amount,currency\nX,1,,data,2025-03-01T00:00:00Z,1,home,1,EUR\n' },
    });
    expect(small.body.data.wholesaleImportCreate.import.rejections[0]).toEqual({ lineNumber: 2, reason: expect.stringMatching(/imsi/) });
    const path = await api.gql('finance', `mutation($input: WholesaleImportCreateInput!) { wholesaleImportCreate(input: $input) { userErrors { code } } }`, {
      input: { partnerCode: 'mno-a', path: '/etc/passwd' },
    });
    expect(path.body.data.wholesaleImportCreate.userErrors[0].code).toBe('FORBIDDEN_PATH');
  });

  it('runs the workflow on demand, shows progress, lists discrepancies, and lets finance approve', async () => {
    const start = await api.gql('finance', `mutation { reconciliationRunStart(input: { partnerCode: "mno-a", period: "2025-01" }) { reconciliation { workflowId } userErrors { code message } } }`);
    expect(start.body.data.reconciliationRunStart.userErrors).toEqual([]);
    const workflowId = reconciliationWorkflowId('mno-a', '2025-01');
    expect(start.body.data.reconciliationRunStart.reconciliation.workflowId).toBe(workflowId);
    const handle = temporal.client.workflow.getHandle(workflowId);
    const result = await handle.result();
    expect(result.status).toBe('ready');
    const progress = await handle.query(reconciliationProgressQuery);
    expect(progress).toMatchObject({ stage: 'ready', chunksDone: 16, chunkCount: 16, runId: result.runId });
    const desc = await handle.describe();
    expect(desc.searchAttributes.PartnerCode).toEqual(['mno-a']);
    expect(await desc.memo).toMatchObject({ stage: 'ready', runId: result.runId });

    const score = await scoreRun(t.db, result.runId, faults);
    expect(score.precision).toBe(1);
    expect(score.recall).toBe(1);

    const RUN = `query($id: ID!, $after: String) { reconciliationRun(id: $id) { status progress counts version settlement { csvUrl htmlUrl csv summary }
      discrepancies(category: missing_ours, first: 3, after: $after) { edges { cursor node { category lineNumber amountAtStakeMicros mno { key volume amountMicros } ours { key } } } pageInfo { hasNextPage endCursor } } } }`;
    const run = await api.gql('integrator', RUN, { id: result.runId });
    const r = run.body.data.reconciliationRun;
    expect(r.status).toBe('ready');
    expect(r.progress).toBe(1);
    expect(r.counts.missing_ours).toBeGreaterThan(3);
    expect(r.discrepancies.edges).toHaveLength(3);
    expect(r.discrepancies.edges[0].node.ours).toBeNull();
    expect(r.discrepancies.pageInfo.hasNextPage).toBe(true);
    const page2 = await api.gql('integrator', RUN, { id: result.runId, after: r.discrepancies.pageInfo.endCursor });
    expect(page2.body.data.reconciliationRun.discrepancies.edges[0].node.lineNumber).not.toBe(r.discrepancies.edges[0].node.lineNumber);
    expect(r.settlement.csv).toMatch(/^section,service,zone/);
    const html = await request(api.app).get(r.settlement.htmlUrl).set('Authorization', `Bearer ${api.keys.finance}`);
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/text\/html/);
    expect(html.text).toContain('Wholesale settlement');
    expect(html.text).toContain('Status: <b>ready</b>');
    expect((await request(api.app).get(r.settlement.htmlUrl)).status).toBe(401);
    expect((await request(api.app).get(r.settlement.htmlUrl).set('Authorization', `Bearer ${api.keys.storefront}`)).status).toBe(403);

    const APPROVE = `mutation($id: ID!) { reconciliationRunApprove(input: { runId: $id }) { run { status approvedBy } userErrors { code message } } }`;
    expect((await api.gql('support', APPROVE, { id: result.runId })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    const ok = await api.gql('finance', APPROVE, { id: result.runId });
    expect(ok.body.data.reconciliationRunApprove.run).toEqual({ status: 'approved', approvedBy: 'test:finance' });
    const twice = await api.gql('finance', APPROVE, { id: result.runId });
    expect(twice.body.data.reconciliationRunApprove.userErrors[0].code).toBe('RUN_APPROVED');
  });

  it('creates the monthly Schedule once (idempotent)', async () => {
    const first = await ensureReconciliationSchedule(temporal.client, temporal.taskQueue);
    const second = await ensureReconciliationSchedule(temporal.client, temporal.taskQueue);
    expect([first, second]).toEqual(['created', 'exists']);
    const desc = await temporal.client.schedule.getHandle(RECONCILIATION_SCHEDULE_ID).describe();
    expect(desc.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconciliationMonthlyWorkflow' });
    await temporal.client.schedule.getHandle(RECONCILIATION_SCHEDULE_ID).delete();
  });
});
