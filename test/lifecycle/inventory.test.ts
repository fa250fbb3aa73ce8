import crypto from 'node:crypto';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { subscriberRegisteredUpdate, subscriberWorkflowId } from '../../workflows/subscriber.messages';
import { withLuhn } from '../../domain/sims/inventory';
import { seedAccount, seedNumbers, seedPhysicalSims, seedPlanWithFee, startLifecycleStack } from './harness';

const IMPORT = `mutation($input: SimBatchImportInput!) { simBatchImport(input: $input) { report { batchRef received imported rejected { line iccid reasons { code message } } } userErrors { code message field } } }`;
const ACTIVATE = `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { subscriber { id msisdn state iccid } userErrors { field message code } } }`;

describe('SIM and number inventory', () => {
  let s: Awaited<ReturnType<typeof startLifecycleStack>>;
  let account: string;
  let plan: string;
  beforeAll(async () => {
    s = await startLifecycleStack();
    account = await seedAccount(s.db);
    plan = await seedPlanWithFee(s.db, 0);
  });
  afterAll(async () => {
    await s.stop();
  });

  test('batch import: good rows in, bad rows reported with every reason; keys are refused, never echoed', async () => {
    const good = withLuhn('894900000000000011');
    const good2 = withLuhn('894900000000000012');
    const csv = [
      'iccid,imsi,pin1,puk1,key_reference',
      `${good},262010000000011,1234,12345678,hsm:batch-a/11`,
      `${good2},262010000000012,,,hsm:batch-a/12`,
      `${good},262010000000013,1234,12345678,hsm:batch-a/13`,
      `8949000000000000130,26201,12,1,`,
      `${withLuhn('894900000000000014')},262010000000014,1234,12345678,000102030405060708090A0B0C0D0E0F`,
    ].join('\n');
    const res = await s.api.gql('admin', IMPORT, { input: { csv, batchRef: 'batch-a' } });
    const report = res.body.data.simBatchImport.report;
    expect(report).toMatchObject({ batchRef: 'batch-a', received: 5, imported: 2 });
    expect(report.rejected.map((r: { line: number; reasons: { code: string }[] }) => [r.line, r.reasons.map((x) => x.code)])).toEqual([
      [4, ['DUPLICATE_IN_FILE']],
      [5, ['ICCID_CHECK_DIGIT', 'IMSI_INVALID', 'PIN_INVALID', 'PUK_INVALID', 'KEY_REFERENCE_MISSING']],
      [6, ['KEY_REFERENCE_LOOKS_LIKE_KEY']],
    ].map(([line, codes]) => [line, (codes as string[]).filter((c) => c !== 'ICCID_CHECK_DIGIT' || !withLuhn('894900000000000013').endsWith('0'))]));
    expect(JSON.stringify(res.body)).not.toContain('000102030405060708090A0B0C0D0E0F');
    // Again: the whole batch is refused by reference; the same SIMs in a new batch are reported.
    expect((await s.api.gql('admin', IMPORT, { input: { csv, batchRef: 'batch-a' } })).body.data.simBatchImport.userErrors[0].code).toBe('BATCH_EXISTS');
    const dup = await s.api.gql('admin', IMPORT, { input: { csv: `iccid,imsi,pin1,puk1,key_reference\n${good},262010000000011,1234,12345678,hsm:x`, batchRef: 'batch-b' } });
    expect(dup.body.data.simBatchImport.report.rejected[0].reasons[0].code).toBe('ALREADY_IN_INVENTORY');
    const keys = await s.api.gql('admin', IMPORT, { input: { csv: `iccid,imsi,ki,key_reference\n${good},262010000000011,00112233445566778899AABBCCDDEEFF,hsm:x`, batchRef: 'batch-c' } });
    expect(keys.body.data.simBatchImport.userErrors[0].code).toBe('SECRET_KEY_IN_FILE');
    expect(JSON.stringify(keys.body)).not.toContain('00112233445566778899AABBCCDDEEFF');
    // Only admins import.
    expect((await s.api.gql('integrator', IMPORT, { input: { csv, batchRef: 'batch-d' } })).body.errors[0].extensions.code).toBe('FORBIDDEN');
    // The API never shows PIN, PUK or the key reference.
    const sims = await s.api.gql('support', `{ sims(first: 5, batchRef: "batch-a") { edges { node { iccid state form } } } }`);
    expect(sims.body.data.sims.edges).toHaveLength(2);
  });

  test('two activations racing for one number: one wins, the other gets MSISDN_TAKEN', async () => {
    const [number] = await seedNumbers(s.db, 1);
    await seedPhysicalSims(s.db, 2);
    const [a, b] = await Promise.all(['race-num-a', 'race-num-b'].map((key) =>
      s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'physical', msisdn: number, idempotencyKey: key } })));
    const results = [a, b].map((r) => r.body.data.subscriberActivate);
    const winners = results.filter((r) => r.subscriber);
    const losers = results.filter((r) => !r.subscriber);
    expect(winners).toHaveLength(1);
    expect(losers[0].userErrors[0]).toMatchObject({ code: 'MSISDN_TAKEN', field: ['input', 'msisdn'] });
    // The loser's SIM went back to the pool: nothing is left reserved for a line that does not exist.
    const orphans = await s.db('sims').where({ state: 'reserved' }).whereNotIn('reserved_for', s.db('subscribers').select(s.db.raw('id::text')));
    expect(orphans).toHaveLength(0);
  });

  test('two activations racing for one SIM: one wins, the other gets SIM_TAKEN', async () => {
    await seedNumbers(s.db, 2);
    const [iccid] = await seedPhysicalSims(s.db, 1);
    const [a, b] = await Promise.all(['race-sim-a', 'race-sim-b'].map((key) =>
      s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'physical', iccid, idempotencyKey: key } })));
    const results = [a, b].map((r) => r.body.data.subscriberActivate);
    expect(results.filter((r) => r.subscriber?.iccid === iccid)).toHaveLength(1);
    expect(results.find((r) => !r.subscriber).userErrors[0]).toMatchObject({ code: 'SIM_TAKEN', field: ['input', 'iccid'] });
  });

  test('many concurrent orders from the pool never share a SIM or a number', async () => {
    const numbers = await seedNumbers(s.db, 20);
    await seedPhysicalSims(s.db, 20);
    const ids = Array.from({ length: 20 }, () => crypto.randomUUID());
    const snaps = await Promise.all(ids.map((id) => s.temporal.client.workflow.executeUpdateWithStart(subscriberRegisteredUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation('subscriberWorkflow', {
        workflowId: subscriberWorkflowId(id), taskQueue: s.temporal.taskQueue, workflowIdConflictPolicy: 'USE_EXISTING',
        args: [{ subscriberId: id, billingAccountId: account, planCode: plan, simForm: 'physical' as const, actor: 'test' }],
      }),
    })));
    expect(snaps.every((x) => x.state === 'pending')).toBe(true);
    expect(new Set(snaps.map((x) => x.msisdn)).size).toBe(20);
    expect(new Set(snaps.map((x) => x.iccid)).size).toBe(20);
    expect(numbers.length).toBe(20);
  });
});
