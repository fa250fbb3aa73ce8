/** Timeouts measured in days, on Temporal's Java test server with time skipping
 * (scripts/ensure-temporal-test-server.sh): the eSIM order's 7-day download window, and a plan change
 * scheduled for the end of the cycle a month away. */
import crypto from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingServerPath } from '../support/temporal';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../../platform/temporal-search-attributes';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { createLogger } from '../../platform/logger';
import { createTestDatabase, testServices } from '../support/services';
import { Es2PlusClient } from '../../domain/sims/es2plus.client';
import { createSmdpPlusSimulator, type SmdpPlusSimulator } from '../../simulators/smdp-plus';
import { esimOrderWorkflowId, type EsimOrderSnapshot } from '../../workflows/esim-order.messages';
import {
  subscriberActivateUpdate, subscriberChangePlanUpdate, subscriberRegisteredUpdate, subscriberSnapshotQuery, subscriberTerminateUpdate, subscriberWorkflowId,
  type SubscriberWorkflowInput,
} from '../../workflows/subscriber.messages';
import { seedAccount, seedEsimInventory, seedNumbers, seedPhysicalSims, seedPlanWithFee } from './harness';

const serverPath = timeSkippingServerPath();

describe('lifecycle timeouts with time skipping', () => {
  let env: TestWorkflowEnvironment;
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let sim: SmdpPlusSimulator;
  let es2plus: Es2PlusClient;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = `ts-${crypto.randomBytes(4).toString('hex')}`;
  let account: string;

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    } catch {
      /* installed */
    }
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: serverPath } } });
    // The workflows upsert custom search attributes: the test server must know them.
    await env.connection.operatorService.addSearchAttributes({
      namespace: 'default',
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
    t = await createTestDatabase();
    sim = await createSmdpPlusSimulator({ adoptUnknownIccids: true });
    es2plus = new Es2PlusClient({ baseUrl: sim.url, functionRequesterIdentifier: 'mvno-bss-test', timeoutMs: 2_000 });
    worker = await Worker.create({
      connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: testServices().workflowBundlePath },
      activities: createActivities({ db: t.db, logger: createLogger({ level: 'silent' }), es2plus }),
    });
    running = worker.run();
    account = await seedAccount(t.db);
  }, 120_000);
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await sim?.close();
    es2plus?.close();
    await env?.teardown();
    await t?.drop();
  });

  // The Java test server has no update-with-start: start, then wait for the registration.
  const start = async (args: SubscriberWorkflowInput) => {
    const handle = await env.client.workflow.start('subscriberWorkflow', { workflowId: subscriberWorkflowId(args.subscriberId), taskQueue, args: [args] });
    return handle.executeUpdate(subscriberRegisteredUpdate);
  };

  test('no device for 7 days: the order times out, is cancelled at the SM-DP+, and the inventory is returned', async () => {
    const plan = await seedPlanWithFee(t.db, 0);
    await seedNumbers(t.db, 1);
    await seedEsimInventory(t.db, 1);
    const id = crypto.randomUUID();
    const snap = await start({ subscriberId: id, billingAccountId: account, planCode: plan, simForm: 'esim', actor: 'test' });
    const t0 = Date.now();
    const order: EsimOrderSnapshot = await env.client.workflow.getHandle(esimOrderWorkflowId(id)).result();
    expect(Date.now() - t0).toBeLessThan(30_000); // seven days skipped
    expect(order).toMatchObject({ status: 'failed', failure: { code: 'DOWNLOAD_TIMEOUT' }, compensations: ['cancelOrder'] });
    expect(sim.getProfile(snap.iccid!)!.state).toBe('Available');
    const line = await env.client.workflow.getHandle(subscriberWorkflowId(id)).result();
    expect(line.state).toBe('terminated');
    expect(await t.db('sims').where({ iccid: snap.iccid }).first()).toMatchObject({ state: 'available' });
    expect(await t.db('msisdns').where({ msisdn: snap.msisdn }).first()).toMatchObject({ state: 'available' });
  });

  test('terminated while its eSIM order is still being placed: the order finishes its SM-DP+ step, then is cancelled there; the inventory is returned', async () => {
    const plan = await seedPlanWithFee(t.db, 0);
    await seedNumbers(t.db, 1);
    await seedEsimInventory(t.db, 1);
    // A slow SM-DP+: the terminate arrives while confirmOrder is in flight (this server has no
    // update-with-start, so the registration answers without waiting for the activation code).
    sim.setFaults({ confirmOrder: { latencyMs: 1_000 } });
    try {
      const id = crypto.randomUUID();
      const snap = await start({ subscriberId: id, billingAccountId: account, planCode: plan, simForm: 'esim', actor: 'test' });
      const line = env.client.workflow.getHandle(subscriberWorkflowId(id));
      const terminated = await line.executeUpdate(subscriberTerminateUpdate, { args: [{ actor: 'test' }] });
      expect(terminated.state).toBe('terminated');
      const order: EsimOrderSnapshot = await env.client.workflow.getHandle(esimOrderWorkflowId(id)).result();
      expect(order).toMatchObject({ status: 'failed', failure: { code: 'CANCELLED' }, compensations: ['cancelOrder'] });
      expect(order.activationCode).toMatch(/^LPA:1\$/); // confirmed before the cancellation took effect
      expect(sim.getProfile(snap.iccid!)!.state).toBe('Available');
      expect(await t.db('sims').where({ iccid: snap.iccid }).first()).toMatchObject({ state: 'available', reserved_for: null });
      expect(await t.db('msisdns').where({ msisdn: snap.msisdn }).first()).toMatchObject({ state: 'available' });
      expect(await t.db('esim_orders').where({ id }).first()).toMatchObject({ state: 'failed', failure_code: 'CANCELLED' });
      expect((await line.result()).state).toBe('terminated');
    } finally {
      sim.clearFaults();
    }
  });

  test('a plan change for the end of the cycle takes effect when the cycle ends', async () => {
    const from = await seedPlanWithFee(t.db, 1000);
    const to = await seedPlanWithFee(t.db, 2000);
    await seedNumbers(t.db, 1);
    await seedPhysicalSims(t.db, 1);
    const id = crypto.randomUUID();
    await start({ subscriberId: id, billingAccountId: account, planCode: from, simForm: 'physical', actor: 'test' });
    const handle = env.client.workflow.getHandle(subscriberWorkflowId(id));
    await handle.executeUpdate(subscriberActivateUpdate, { args: [{ actor: 'test' }] });
    const scheduled = await handle.executeUpdate(subscriberChangePlanUpdate, { args: [{ actor: 'test', planCode: to, when: 'end_of_cycle' }] });
    expect(scheduled.scheduledPlanChange?.planCode).toBe(to);
    expect(scheduled.planCode).toBe(from);
    await env.sleep('32 days');
    const after = await handle.query(subscriberSnapshotQuery);
    expect(after.planCode).toBe(to);
    expect(after.scheduledPlanChange).toBeUndefined();
    const subs = await t.db('subscriptions').join('plans', 'plans.id', 'subscriptions.plan_id').where({ subscriber_id: id }).orderBy('started_at').select('plans.code', 'subscriptions.state');
    expect(subs).toEqual([{ code: from, state: 'ended' }, { code: to, state: 'active' }]);
  });
});
