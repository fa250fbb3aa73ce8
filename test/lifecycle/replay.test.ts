/** Replays committed workflow histories (real runs, exported as JSON) against today's workflow code:
 * a change that would make a running line or order non-deterministic fails here, not in production.
 *
 * Recording runs every scenario below and writes the histories that are not committed yet; committed
 * ones are kept, as lines and orders of the code that made them may still be running. To record one
 * again (after an intended, patched change), rename the old file to `<name>-vN.json` first, then:
 *   RECORD_LIFECYCLE_HISTORIES=1 npx jest test/lifecycle/replay.test.ts --selectProjects integration
 *
 * - `subscriber-esim-swap-terminated-unpatched.json`: a line terminated with an eSIM swap pending,
 *   recorded before the patch `terminate-cancels-pending-swap` (the terminate left the swap order
 *   running); `subscriber-esim-swap-terminated.json` and `esim-order-swap-cancelled.json` are the
 *   patched path (the terminate cancels the swap order and gives its SIM back first).
 * - `subscriber-physical-full-lifecycle-v1.json`: recorded before the patch `exclusive-rechecks`
 *   (operations woken together looked again before taking the line); the file without `-v1` carries
 *   its marker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { execFileSync } from 'node:child_process';
import { testServices } from '../support/services';
import { esimOrderWorkflowId } from '../../workflows/esim-order.messages';
import { subscriberWorkflowId } from '../../workflows/subscriber.messages';
import { seedAccount, seedEsimInventory, seedNumbers, seedPhysicalSims, seedPlanWithFee, startLifecycleStack, waitFor } from './harness';

const DIR = path.join(__dirname, 'histories');

/** Temporal's JSON history → History. `historyFromJSON` of @temporalio/common cannot be used here:
 * npm installed two copies of protobufjs (common's and proto's) and its protojson refuses the other
 * copy's types ("type must be a Type"); proto's own copy reads it. The CLI's export already uses the
 * full enum names, so no fixing up is needed. */
function loadHistory(file: string): proto.temporal.api.history.v1.IHistory {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { fromJson } = require(require.resolve('protobufjs/ext/protojson', { paths: [require.resolve('@temporalio/proto')] })) as { fromJson: (t: unknown, v: unknown, o: object) => unknown };
  const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(n: string): unknown }).lookupType('temporal.api.history.v1.History');
  return fromJson(historyType, JSON.parse(fs.readFileSync(file, 'utf8')), { ignoreUnknownFields: true }) as proto.temporal.api.history.v1.IHistory;
}
const RECORD = Boolean(process.env.RECORD_LIFECYCLE_HISTORIES);

const LINE = `subscriber { id state } userErrors { code message }`;

async function record(): Promise<void> {
  const s = await startLifecycleStack();
  try {
    const account = await seedAccount(s.db);
    const other = await seedAccount(s.db);
    const basic = await seedPlanWithFee(s.db, 0, 'replay-basic');
    const premium = await seedPlanWithFee(s.db, 0, 'replay-premium');
    await seedNumbers(s.db, 5);
    const [, iccid2] = await seedPhysicalSims(s.db, 3);
    await seedEsimInventory(s.db, 4);
    const gql = s.api.gql;
    const phys = await gql('storefront', `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} } }`, { input: { billingAccountId: account, planCode: basic, simType: 'physical', idempotencyKey: 'replay-physical' } });
    const id = phys.body.data.subscriberActivate.subscriber.id;
    await gql('support', `mutation($input: SubscriberSuspendInput!) { subscriberSuspend(input: $input) { ${LINE} } }`, { input: { subscriberId: id, reason: 'customer_request' } });
    await gql('support', `mutation($input: SubscriberResumeInput!) { subscriberResume(input: $input) { ${LINE} } }`, { input: { subscriberId: id } });
    await gql('admin', `mutation($input: SubscriberChangePlanInput!) { subscriberChangePlan(input: $input) { ${LINE} } }`, { input: { subscriberId: id, planCode: premium, when: 'now' } });
    await gql('admin', `mutation($input: SubscriberChangePlanInput!) { subscriberChangePlan(input: $input) { ${LINE} } }`, { input: { subscriberId: id, planCode: basic, when: 'end_of_cycle' } });
    await gql('admin', `mutation($input: SubscriberTransferInput!) { subscriberTransfer(input: $input) { ${LINE} } }`, { input: { subscriberId: id, billingAccountId: other } });
    await gql('admin', `mutation($input: SimSwapInput!) { simSwap(input: $input) { ${LINE} } }`, { input: { subscriberId: id, simType: 'physical', iccid: iccid2 } });
    await gql('admin', `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { ${LINE} } }`, { input: { subscriberId: id } });
    const esim = await gql('storefront', `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} } }`, { input: { billingAccountId: account, planCode: basic, simType: 'esim', idempotencyKey: 'replay-esim' } });
    const esimId = esim.body.data.subscriberActivate.subscriber.id;
    await waitFor(() => s.db('subscribers').where({ id: esimId }).first(), (r) => r.state === 'active');
    s.sim.setFaults({ confirmOrder: { error: { subjectCode: '8.2.6', reasonCode: '3.3', times: 1 } } });
    const failed = await gql('storefront', `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} } }`, { input: { billingAccountId: account, planCode: basic, simType: 'esim', idempotencyKey: 'replay-esim-failed' } });
    const failedId = failed.body.data.subscriberActivate.subscriber.id;
    await waitFor(() => s.db('subscribers').where({ id: failedId }).first(), (r) => r.state === 'terminated');
    // Terminated while still pending on its eSIM order: the order is cancelled.
    s.sim.clearFaults();
    s.sim.setAutoDevice(false);
    const pending = await gql('storefront', `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} } }`, { input: { billingAccountId: account, planCode: basic, simType: 'esim', idempotencyKey: 'replay-esim-terminated' } });
    const pendingId = pending.body.data.subscriberActivate.subscriber.id;
    await gql('admin', `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { ${LINE} } }`, { input: { subscriberId: pendingId } });
    // Terminated with an eSIM swap pending (no device downloads the new profile): the swap order is cancelled.
    s.sim.setAutoDevice({ delayMs: 5 });
    const swapping = await gql('storefront', `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) { ${LINE} } }`, { input: { billingAccountId: account, planCode: basic, simType: 'esim', idempotencyKey: 'replay-esim-swap-terminated' } });
    const swappingId = swapping.body.data.subscriberActivate.subscriber.id;
    await waitFor(() => s.db('subscribers').where({ id: swappingId }).first(), (r) => r.state === 'active');
    s.sim.setAutoDevice(false);
    const swap = await gql('admin', `mutation($input: SimSwapInput!) { simSwap(input: $input) { esimOrder { id } userErrors { code message } } }`, { input: { subscriberId: swappingId, simType: 'esim' } });
    const swapOrderId = swap.body.data.simSwap.esimOrder.id;
    await gql('admin', `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { ${LINE} } }`, { input: { subscriberId: swappingId } });
    const runs: [string, string][] = [
      ['subscriber-physical-full-lifecycle', subscriberWorkflowId(id)],
      ['subscriber-esim-activation', subscriberWorkflowId(esimId)],
      ['esim-order-completed', esimOrderWorkflowId(esimId)],
      ['subscriber-esim-given-up', subscriberWorkflowId(failedId)],
      ['esim-order-confirm-refused', esimOrderWorkflowId(failedId)],
      ['subscriber-esim-terminated-pending', subscriberWorkflowId(pendingId)],
      ['esim-order-cancelled', esimOrderWorkflowId(pendingId)],
      ['subscriber-esim-swap-terminated', subscriberWorkflowId(swappingId)],
      ['esim-order-swap-cancelled', esimOrderWorkflowId(swapOrderId)],
    ];
    for (const [name, workflowId] of runs) {
      if (fs.existsSync(path.join(DIR, `${name}.json`))) continue; // committed: kept as it is
      const handle = s.temporal.client.workflow.getHandle(workflowId);
      if (!workflowId.endsWith(esimId) || workflowId.startsWith('esim-order')) await handle.result().catch(() => undefined);
      fs.mkdirSync(DIR, { recursive: true });
      // The CLI writes the history in Temporal's JSON form (what the UI and `temporal workflow show` export).
      const json = execFileSync(testServices().temporalCliPath, ['workflow', 'show', '--workflow-id', workflowId, '--address', testServices().temporalAddress, '--output', 'json'], { encoding: 'utf8' });
      fs.writeFileSync(path.join(DIR, `${name}.json`), `${JSON.stringify(JSON.parse(json), null, 1)}\n`);
    }
  } finally {
    await s.stop();
  }
}

describe('replay of committed workflow histories', () => {
  if (!RECORD) {
    beforeAll(() => {
      try {
        Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
      } catch {
        /* already installed in this worker process */
      }
    });
  }
  if (RECORD) test('record histories from real runs', record, 60_000);

  const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort() : [];
  if (!RECORD) test('histories are committed', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });
  if (files.length) test.each(files)('%s replays without non-determinism', async (file) => {
    const history = loadHistory(path.join(DIR, file));
    await Worker.runReplayHistory({ workflowBundle: { codePath: testServices().workflowBundlePath } }, history, file.replace(/\.json$/, ''));
  });
});
