import { WithStartWorkflowOperation } from '@temporalio/client';
import { esimOrderSnapshotQuery, esimOrderWorkflowId, type EsimOrderSnapshot } from '../../workflows/esim-order.messages';
import { subscriberRegisteredUpdate, subscriberSnapshotQuery, subscriberWorkflowId, type SubscriberSnapshot, type SubscriberWorkflowInput } from '../../workflows/subscriber.messages';
import { seedAccount, seedEsimInventory, seedNumbers, seedPhysicalSims, seedPlanWithFee, startLifecycleStack, waitFor } from './harness';
import { ES2PLUS_NOTIFICATION_PATH } from '../../api/es2plus/notifications.router';
import { ES2PLUS_ADMIN_PROTOCOL, ES2PLUS_ADMIN_PROTOCOL_HEADER } from '../../domain/sims/es2plus.types';
import crypto from 'node:crypto';

const ACTIVATE = `mutation($input: SubscriberActivateInput!) { subscriberActivate(input: $input) {
  subscriber { id msisdn state iccid } esimOrder { id status activationCode qrCode iccid failure { step code } } userErrors { field message code } } }`;
const ORDER = `query($id: ID!) { esimOrder(id: $id) { id status activationCode eid failure { step code message } } }`;

describe('eSIM provisioning with the SM-DP+ simulator', () => {
  let s: Awaited<ReturnType<typeof startLifecycleStack>>;
  let account: string;
  let plan: string;
  beforeAll(async () => {
    s = await startLifecycleStack();
    account = await seedAccount(s.db);
    plan = await seedPlanWithFee(s.db, 500);
    await seedNumbers(s.db, 30);
    await seedEsimInventory(s.db, 30);
  });
  afterAll(async () => {
    await s.stop();
  });
  afterEach(() => {
    s.sim.clearFaults();
    s.sim.setAutoDevice({ delayMs: 5 });
  });

  test('storefront activation: activation code and QR at once, then the device downloads and the line is active', async () => {
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-happy-1' } });
    const p = res.body.data.subscriberActivate;
    expect(p.userErrors).toEqual([]);
    expect(p.esimOrder.activationCode).toMatch(/^LPA:1\$smdp-plus\.simulator\.local\$[0-9A-Z-]+$/);
    expect(p.esimOrder.qrCode).toMatch(/^data:image\/png;base64,/);
    const id = p.subscriber.id;
    const line = await waitFor(() => s.db('subscribers').where({ id }).first(), (r) => r.state === 'active');
    expect(line.msisdn).toBe(p.subscriber.msisdn);
    const order = await s.api.gql('storefront', ORDER, { id: p.esimOrder.id });
    expect(order.body.data.esimOrder).toMatchObject({ status: 'completed' });
    expect(order.body.data.esimOrder.eid).toMatch(/^[0-9]{32}$/);
    expect(await s.db('sims').where({ iccid: p.subscriber.iccid }).first()).toMatchObject({ state: 'active', eid: order.body.data.esimOrder.eid });
    expect(await s.db('esim_orders').where({ id: p.esimOrder.id }).first()).toMatchObject({ state: 'completed' });
    expect(await s.db('msisdns').where({ msisdn: line.msisdn }).first()).toMatchObject({ state: 'assigned' });
    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(id)).query(subscriberSnapshotQuery);
    expect(snap).toMatchObject({ state: 'active', simForm: 'esim', iccid: p.subscriber.iccid });
    // Exactly one order at the SM-DP+ for this ICCID, and a retried mutation does not place another.
    const again = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-happy-1' } });
    expect(again.body.data.subscriberActivate.subscriber.id).toBe(id);
    expect(s.sim.getProfile(p.subscriber.iccid)!.history.filter((h: { state?: string; to?: string }) => (h.to ?? h.state) === 'Allocated' || (h.to ?? h.state) === 'Linked')).toHaveLength(1);
    // Found by MSISDN in Temporal's visibility.
    await waitFor(async () => {
      const found: string[] = [];
      for await (const wf of s.temporal.client.workflow.list({ query: `Msisdn = "${line.msisdn}"` })) found.push(wf.workflowId);
      return found;
    }, (f) => f.includes(subscriberWorkflowId(id)));
  });

  /** Starts an eSIM line directly (so each test can set short timeouts) and waits for its order to end. */
  async function order(options: SubscriberWorkflowInput['esimOrder'] = {}): Promise<{ id: string; order: EsimOrderSnapshot; iccid: string; msisdn: string }> {
    const id = crypto.randomUUID();
    const snap = await s.temporal.client.workflow.executeUpdateWithStart(subscriberRegisteredUpdate, {
      startWorkflowOperation: new WithStartWorkflowOperation('subscriberWorkflow', {
        workflowId: subscriberWorkflowId(id), taskQueue: s.temporal.taskQueue, workflowIdConflictPolicy: 'USE_EXISTING',
        args: [{ subscriberId: id, billingAccountId: account, planCode: plan, simForm: 'esim', actor: 'test', esimOrder: { es2MaxAttempts: 2, es2InitialIntervalMs: 50, downloadTimeoutMs: 3_000, ...options } } satisfies SubscriberWorkflowInput],
      }),
    });
    expect(snap.state).toBe('pending');
    const result: EsimOrderSnapshot = await s.temporal.client.workflow.getHandle(esimOrderWorkflowId(id)).result();
    return { id, order: result, iccid: snap.iccid!, msisdn: snap.msisdn };
  }

  /** After a failed order: the line was given up and everything it held is back (or the SIM retired). */
  async function expectCompensated(o: { id: string; iccid: string; msisdn: string }, simState: 'available' | 'retired') {
    const line = await waitFor(() => s.db('subscribers').where({ id: o.id }).first(), (r) => r.state === 'terminated');
    expect(line.activated_at).toBeNull();
    expect(await s.db('sims').where({ iccid: o.iccid }).first()).toMatchObject({ state: simState, reserved_for: null });
    expect(await s.db('msisdns').where({ msisdn: o.msisdn }).first()).toMatchObject({ state: 'available', reserved_for: null });
    expect(await s.db('subscriptions').where({ subscriber_id: o.id }).pluck('state')).toEqual(['ended']);
    expect(await s.db('final_bill_requests').where({ subscriber_id: o.id })).toHaveLength(0);
    expect(await s.db('esim_orders').where({ id: o.id }).first()).toMatchObject({ state: 'failed' });
    const snap = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(o.id)).result();
    expect(snap.state).toBe('terminated');
  }

  test('downloadOrder refused: nothing to cancel; inventory returned', async () => {
    s.sim.setFaults({ downloadOrder: { error: { subjectCode: '8.2.5', reasonCode: '3.7', message: 'pool empty', times: 1 } } });
    const o = await order();
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'downloadOrder', code: 'ES2PLUS_REFUSED' }, compensations: [] });
    await expectCompensated(o, 'available');
  });

  test('downloadOrder answers HTTP 503 on every attempt: retried with the same functionCallIdentifier, then compensated', async () => {
    s.sim.setFaults({ downloadOrder: { httpStatus: { status: 503, times: 'always' } } });
    const o = await order();
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'downloadOrder' } });
    await expectCompensated(o, 'available');
  });

  test('confirmOrder refused: the order is cancelled at the SM-DP+', async () => {
    s.sim.setFaults({ confirmOrder: { error: { subjectCode: '8.2.6', reasonCode: '3.3', message: 'matching id in use', times: 1 } } });
    const o = await order();
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'confirmOrder', code: 'ES2PLUS_REFUSED' }, compensations: ['cancelOrder'] });
    expect(s.sim.getProfile(o.iccid)!.state).toBe('Available');
    await expectCompensated(o, 'available');
  });

  test('the device fails to install: cancelled, SIM back', async () => {
    s.sim.setFaults({ downloadError: { step: 'install', subjectCode: '8.2.10', reasonCode: '4.2', message: 'install failed', times: 1 } });
    const o = await order();
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'download' }, compensations: ['cancelOrder'] });
    expect(o.order.failure!.code).toMatch(/^DOWNLOAD_FAILED/);
    await expectCompensated(o, 'available');
  });

  test('no device ever comes: timeout, cancelled, SIM back', async () => {
    s.sim.setAutoDevice(false);
    const o = await order({ downloadTimeoutMs: 500 });
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'download', code: 'DOWNLOAD_TIMEOUT' }, compensations: ['cancelOrder'] });
    expect(s.sim.getProfile(o.iccid)!.state).toBe('Available');
    await expectCompensated(o, 'available');
  });

  test('downloaded but the install and enable notifications are lost, and cancelOrder is refused: SIM retired', async () => {
    s.sim.setFaults({ notifications: { drop: { times: 'always', notificationPointIds: [4, 6] } } });
    const o = await order({ downloadTimeoutMs: 1_500 });
    expect(o.order).toMatchObject({ status: 'failed', failure: { step: 'download', code: 'DOWNLOAD_TIMEOUT' }, compensations: ['cancelOrder:failed'] });
    await expectCompensated(o, 'retired');
  });

  test('terminating a line still pending on its eSIM order cancels the order at the SM-DP+ and gives the inventory back', async () => {
    s.sim.setAutoDevice(false); // no device: the order waits for the download
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-terminate-pending-1' } });
    const p = res.body.data.subscriberActivate;
    expect(p.userErrors).toEqual([]);
    expect(p.esimOrder).toMatchObject({ status: 'awaiting_download' });
    expect(s.sim.getProfile(p.subscriber.iccid)!.state).toBe('Released');
    const term = await s.api.gql('integrator', `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { subscriber { id state } userErrors { code message } } }`,
      { input: { subscriberId: p.subscriber.id } });
    expect(term.body.data.subscriberTerminate).toMatchObject({ userErrors: [], subscriber: { state: 'terminated' } });
    const order: EsimOrderSnapshot = await s.temporal.client.workflow.getHandle(esimOrderWorkflowId(p.esimOrder.id)).result();
    expect(order).toMatchObject({ status: 'failed', failure: { step: 'download', code: 'CANCELLED' }, compensations: ['cancelOrder'] });
    expect(s.sim.getProfile(p.subscriber.iccid)!.state).toBe('Available');
    await expectCompensated({ id: p.subscriber.id, iccid: p.subscriber.iccid, msisdn: p.subscriber.msisdn }, 'available');
    const snap: SubscriberSnapshot = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(p.subscriber.id)).result();
    expect(snap.history.map((h) => [h.action, h.to, h.actor])).toEqual([['register', 'pending', 'test:storefront'], ['terminate', 'terminated', 'test:integrator']]);
  });

  test('notifications are deduplicated: a retried delivery changes nothing', async () => {
    const receiverFails = s.sim.notifications.length;
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-dedupe-1' } });
    const orderId = res.body.data.subscriberActivate.esimOrder.id;
    const done: EsimOrderSnapshot = await s.temporal.client.workflow.getHandle(esimOrderWorkflowId(orderId)).result();
    expect(done.status).toBe('completed');
    const ids = done.notifications.map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(s.sim.notifications.length).toBeGreaterThan(receiverFails);
    const snap = await s.temporal.client.workflow.getHandle(esimOrderWorkflowId(orderId)).query(esimOrderSnapshotQuery).catch(() => done);
    expect(snap.status).toBe('completed');
  });

  test('eSIM swap: the line keeps working on its old SIM until the device has the new profile, then the old SIM is retired', async () => {
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-swap-1' } });
    const id = res.body.data.subscriberActivate.subscriber.id;
    const oldIccid = res.body.data.subscriberActivate.subscriber.iccid;
    await waitFor(() => s.db('subscribers').where({ id }).first(), (r) => r.state === 'active');
    const swap = await s.api.gql('integrator', `mutation($input: SimSwapInput!) { simSwap(input: $input) { subscriber { id iccid } esimOrder { id activationCode } userErrors { code message } } }`,
      { input: { subscriberId: id, simType: 'esim' } });
    expect(swap.body.data.simSwap.userErrors).toEqual([]);
    expect(swap.body.data.simSwap.esimOrder.activationCode).toMatch(/^LPA:1\$/);
    const line = await waitFor(() => s.db('subscribers').join('sims', 'sims.id', 'subscribers.sim_id').where('subscribers.id', id).first('sims.iccid'), (r) => r.iccid !== oldIccid);
    expect(await s.db('sims').where({ iccid: oldIccid }).first()).toMatchObject({ state: 'retired' });
    expect(await s.db('sims').where({ iccid: line.iccid }).first()).toMatchObject({ state: 'active', form: 'esim' });
    const snap = await waitFor(() => s.temporal.client.workflow.getHandle(subscriberWorkflowId(id)).query(subscriberSnapshotQuery), (x) => !x.pendingSimSwap);
    expect(snap.history.map((h) => h.action).slice(-2)).toEqual(['sim_swap_ordered', 'sim_swap']);
  });

  const SWAP = `mutation($input: SimSwapInput!) { simSwap(input: $input) { esimOrder { id } userErrors { code message } } }`;
  const TERMINATE = `mutation($input: SubscriberTerminateInput!) { subscriberTerminate(input: $input) { subscriber { id state } userErrors { code message } } }`;

  /** An active line starts an eSIM swap that no device downloads, then is terminated. */
  async function terminateDuringSwap(id: string): Promise<{ swapOrderId: string; newIccid: string; oldSimId: string; msisdn: string }> {
    const line = await waitFor(() => s.db('subscribers').where({ id }).first(), (r) => r.state === 'active');
    s.sim.setAutoDevice(false); // no device: the swap order waits for the download
    const swap = await s.api.gql('integrator', SWAP, { input: { subscriberId: id, simType: 'esim' } });
    expect(swap.body.data.simSwap.userErrors).toEqual([]);
    const swapOrderId: string = swap.body.data.simSwap.esimOrder.id;
    const { iccid: newIccid } = await s.db('esim_orders').where({ id: swapOrderId }).first();
    expect(await s.db('sims').where({ iccid: newIccid }).first()).toMatchObject({ state: 'reserved' });
    expect((await s.temporal.client.workflow.getHandle(subscriberWorkflowId(id)).query(subscriberSnapshotQuery)).pendingSimSwap).toMatchObject({ orderId: swapOrderId });

    const term = await s.api.gql('integrator', TERMINATE, { input: { subscriberId: id } });
    expect(term.body.data.subscriberTerminate).toMatchObject({ userErrors: [], subscriber: { state: 'terminated' } });
    return { swapOrderId, newIccid, oldSimId: line.sim_id, msisdn: line.msisdn };
  }

  /** After the terminate: the swap's SIM is out of the reservation, the order failed as cancelled, and
   * the line was terminated as usual on its old SIM (retired, number quarantined, one final bill). */
  async function expectSwapGivenUpAndLineTerminated(id: string, t: { swapOrderId: string; newIccid: string; oldSimId: string; msisdn: string }, simState: 'available' | 'retired', compensations: string[]) {
    // Before the fix the SIM stayed reserved for the swap after the line was gone.
    await waitFor(() => s.db('sims').where({ iccid: t.newIccid }).first(), (r) => r.state !== 'reserved', 5_000).catch(() => undefined);
    expect(await s.db('sims').where({ iccid: t.newIccid }).first()).toMatchObject({ state: simState, reserved_for: null });
    expect(await s.db('esim_orders').where({ id: t.swapOrderId }).first()).toMatchObject({ state: 'failed', failure_code: 'CANCELLED' });
    const order: EsimOrderSnapshot = await s.temporal.client.workflow.getHandle(esimOrderWorkflowId(t.swapOrderId)).result();
    expect(order).toMatchObject({ purpose: 'swap', status: 'failed', failure: { step: 'download', code: 'CANCELLED' }, compensations });

    const line = await s.db('subscribers').where({ id }).first();
    expect(line).toMatchObject({ state: 'terminated', sim_id: t.oldSimId }); // never moved to the swap's SIM
    expect(await s.db('sims').where({ id: t.oldSimId }).first()).toMatchObject({ state: 'retired' });
    expect(await s.db('msisdns').where({ msisdn: t.msisdn }).first()).toMatchObject({ state: 'quarantined', reserved_for: null });
    expect(await s.db('final_bill_requests').where({ subscriber_id: id })).toHaveLength(1);
    expect(await s.db('subscriptions').where({ subscriber_id: id }).whereNot({ state: 'ended' })).toHaveLength(0);
    expect(await s.db('sims').where('reserved_for', 'like', `swap:${subscriberWorkflowId(id)}:%`)).toHaveLength(0);
    const transitions = await s.db('subscriber_transitions').where({ subscriber_id: id }).orderBy('occurred_at').pluck('action');
    expect(transitions).not.toContain('sim_swap');
    expect(transitions.at(-1)).toBe('terminate');

    const snap: SubscriberSnapshot = await s.temporal.client.workflow.getHandle(subscriberWorkflowId(id)).result();
    expect(snap).toMatchObject({ state: 'terminated', finalBillRequested: true });
    expect(snap.pendingSimSwap).toBeUndefined();
    expect(snap.history.slice(-3).map((h) => [h.action, h.actor])).toEqual([['sim_swap_ordered', 'test:integrator'], ['sim_swap_cancelled', 'test:integrator'], ['terminate', 'test:integrator']]);
    expect(snap.history.at(-2)!.details).toMatchObject({ esimOrderId: t.swapOrderId, newIccid: t.newIccid, sim: simState });
  }

  test('terminating a line during an eSIM swap cancels the swap order and gives its SIM back; a late notification changes nothing', async () => {
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'esim', idempotencyKey: 'esim-swap-terminate-1' } });
    const id: string = res.body.data.subscriberActivate.subscriber.id;
    const oldIccid: string = res.body.data.subscriberActivate.subscriber.iccid;
    const t = await terminateDuringSwap(id);
    await expectSwapGivenUpAndLineTerminated(id, t, 'available', ['cancelOrder']);
    expect(s.sim.getProfile(t.newIccid)!.state).toBe('Available');

    // The SM-DP+ reports the swap's profile downloaded, installed and enabled after all (late, or
    // replayed): the order and the line are over, nothing is re-activated or attached.
    const template = s.sim.notifications.find((n) => n.iccid === oldIccid)!.body;
    for (const point of [3, 4, 6]) {
      const body = { ...template, header: { ...template.header, functionCallIdentifier: crypto.randomUUID() }, iccid: t.newIccid, notificationPointId: point,
        notificationPointStatus: { status: 'Executed-Success' }, timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
      const answer = await fetch(`${s.apiUrl}${ES2PLUS_NOTIFICATION_PATH}`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', [ES2PLUS_ADMIN_PROTOCOL_HEADER]: ES2PLUS_ADMIN_PROTOCOL }, body: JSON.stringify(body),
      });
      expect(answer.status).toBeLessThan(300);
    }
    expect(await s.db('subscribers').where({ id }).first()).toMatchObject({ state: 'terminated', sim_id: t.oldSimId });
    expect(await s.db('sims').where({ iccid: t.newIccid }).first()).toMatchObject({ state: 'available', reserved_for: null });
    expect(await s.db('esim_orders').where({ id: t.swapOrderId }).first()).toMatchObject({ state: 'failed' });
    expect((await s.db('subscriber_transitions').where({ subscriber_id: id }).orderBy('occurred_at').pluck('action')).at(-1)).toBe('terminate');
  });

  test('terminating a physical-SIM line during its eSIM swap: the SM-DP+ will not take the profile back, so the swap SIM is retired', async () => {
    const [iccid] = await seedPhysicalSims(s.db, 1);
    const res = await s.api.gql('storefront', ACTIVATE, { input: { billingAccountId: account, planCode: plan, simType: 'physical', iccid, idempotencyKey: 'esim-swap-terminate-physical-1' } });
    expect(res.body.data.subscriberActivate.userErrors).toEqual([]);
    const id: string = res.body.data.subscriberActivate.subscriber.id;
    s.sim.setFaults({ cancelOrder: { error: { subjectCode: '8.2.1', reasonCode: '3.3', message: 'profile in use', times: 'always' } } });
    const t = await terminateDuringSwap(id);
    await expectSwapGivenUpAndLineTerminated(id, t, 'retired', ['cancelOrder:failed']);
  });
});
