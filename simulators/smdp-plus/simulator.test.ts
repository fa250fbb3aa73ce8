/**
 * The SM-DP+ simulator's own surface: admin endpoints, notifications (retries, drops, delays),
 * device-side download errors and the automatic device. Loopback only, port 0.
 */
import { Es2PlusClient } from '../../domain/sims/es2plus.client';
import { createSmdpPlusSimulator, type SmdpPlusSimulator } from './simulator';
import { startNotificationReceiver, type NotificationReceiver } from './testing';

const EID = '89049032000000000000000000000077';

let sim: SmdpPlusSimulator;
let receiver: NotificationReceiver;
let client: Es2PlusClient;

beforeEach(async () => {
  receiver = await startNotificationReceiver();
  sim = await createSmdpPlusSimulator({
    notificationUrl: receiver.url,
    deviceStepDelayMs: 1,
    notificationRetry: { attempts: 4, backoffMs: 10 },
  });
  client = new Es2PlusClient({ baseUrl: sim.url, functionRequesterIdentifier: 'op', timeoutMs: 2_000 });
});

afterEach(async () => {
  client.close();
  await sim.close();
  await receiver.close();
});

async function post(path: string, body: unknown, method = 'POST'): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function released(eid?: string): Promise<{ iccid: string; matchingId: string }> {
  const { iccid } = await client.downloadOrder({ profileType: 'standard', ...(eid ? { eid } : {}) });
  const { matchingId } = await client.confirmOrder({ iccid, releaseFlag: true });
  return { iccid, matchingId };
}

const points = (iccid: string) => receiver.received.filter((n) => n.iccid === iccid).map((n) => `${n.notificationPointId}:${n.status}`);

describe('admin endpoints', () => {
  it('sets, shows, counts down, merges and clears faults over HTTP', async () => {
    const set = await post('/sim/faults', { downloadOrder: { error: { subjectCode: '8.2.5', reasonCode: '3.7', times: 2 } } });
    expect(set.status).toBe(200);
    await expect(client.downloadOrder({ profileType: 'standard' })).rejects.toMatchObject({ reasonCode: '3.7' });
    expect((await (await fetch(`${sim.url}/sim/faults`)).json()).downloadOrder.error.times).toBe(1);

    const merged = await post('/sim/faults', { notifications: { delayMs: 5 } }, 'PATCH');
    expect(merged.json).toMatchObject({ downloadOrder: { error: { times: 1 } }, notifications: { delayMs: 5 } });

    await expect(client.downloadOrder({ profileType: 'standard' })).rejects.toMatchObject({ reasonCode: '3.7' });
    expect((await (await fetch(`${sim.url}/sim/faults`)).json()).downloadOrder).toEqual({}); // used up
    await expect(client.downloadOrder({ profileType: 'standard' })).resolves.toHaveProperty('iccid');

    expect((await post('/sim/faults', {}, 'DELETE')).json).toEqual({});
    const bad = await post('/sim/faults', { downloadOrder: { error: { subjectCode: 'x', reasonCode: '3.7' } }, nonsense: true });
    expect(bad.status).toBe(400);
  });

  it('shows profiles and refuses ES2+ calls without the X-Admin-Protocol header', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    const res = await fetch(`${sim.url}/sim/profiles/${iccid}`);
    expect(await res.json()).toMatchObject({ iccid, state: 'Allocated', profileType: 'standard' });
    expect((await fetch(`${sim.url}/sim/profiles/89880100000000000009`)).status).toBe(404);
    expect((await (await fetch(`${sim.url}/sim/profiles`)).json())).toHaveLength(1);

    const raw = await fetch(`${sim.url}/gsma/rsp2/es2plus/downloadOrder`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ header: { functionRequesterIdentifier: 'op', functionCallIdentifier: '1' }, profileType: 'standard' }),
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ header: { functionExecutionStatus: { status: 'Failed', statusCodeData: { subjectCode: '1.3.2' } } } });
  });

  it('changes the notification URL at run time', async () => {
    expect((await post('/sim/config', { notificationUrl: null })).json).toMatchObject({ notificationUrl: null });
    const a = await released();
    await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    await sim.settle();
    expect(sim.notifications.filter((n) => n.iccid === a.iccid).map((n) => n.outcome)).toEqual(['skipped', 'skipped', 'skipped']);

    await post('/sim/config', { notificationUrl: receiver.url });
    const b = await released();
    await post('/sim/device/download', { matchingId: b.matchingId, eid: EID });
    await receiver.waitFor(() => points(b.iccid).length === 3);
  });
});

describe('notifications', () => {
  it('retries while the operator is down, with the same functionCallIdentifier', async () => {
    const a = await released();
    receiver.failNext(2);
    await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    await receiver.waitFor(() => points(a.iccid).length === 3);
    expect(points(a.iccid)).toEqual(['3:Executed-Success', '4:Executed-Success', '6:Executed-Success']);
    const first = sim.notifications.find((n) => n.iccid === a.iccid && n.notificationPointId === 3);
    expect(first).toMatchObject({ outcome: 'delivered', attempts: 3, httpStatus: 204 });
    expect(receiver.received.find((n) => n.notificationPointId === 3 && n.iccid === a.iccid)?.functionCallIdentifier).toBe(first?.functionCallIdentifier);
  });

  it('gives up after the configured attempts', async () => {
    const a = await released();
    receiver.failNext(1_000);
    await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    await sim.settle();
    expect(sim.notifications.filter((n) => n.iccid === a.iccid).map((n) => [n.outcome, n.attempts, n.lastError])).toEqual([
      ['failed', 4, 'HTTP 503'],
      ['failed', 4, 'HTTP 503'],
      ['failed', 4, 'HTTP 503'],
    ]);
  });

  it('drops notifications (all, or some check points)', async () => {
    sim.setFaults({ notifications: { drop: { times: 1, notificationPointIds: [4] } } });
    const a = await released();
    await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    await sim.settle();
    expect(points(a.iccid)).toEqual(['3:Executed-Success', '6:Executed-Success']);
    expect(sim.notifications.filter((n) => n.iccid === a.iccid).map((n) => n.outcome)).toEqual(['delivered', 'dropped', 'delivered']);

    sim.setFaults({ notifications: { drop: { times: 'always' } } });
    const b = await released();
    await post('/sim/device/download', { matchingId: b.matchingId, eid: EID });
    await sim.settle();
    expect(points(b.iccid)).toEqual([]);
  });

  it('delays notifications', async () => {
    sim.setFaults({ notifications: { delayMs: 200 } });
    const a = await released();
    const t0 = Date.now();
    await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    expect(points(a.iccid)).toEqual([]);
    await receiver.waitFor(() => points(a.iccid).length >= 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    await sim.settle();
  });
});

describe('device side', () => {
  it('reports a download error as a Failed notification; the operator can cancel, or the device retry', async () => {
    sim.setFaults({ downloadError: { step: 'install', subjectCode: '8.2.10', reasonCode: '4.2', message: 'install failed', times: 1 } });
    const a = await released();
    const r = await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ok: false, step: 'install', error: { subjectCode: '8.2.10', reasonCode: '4.2' }, profile: { state: 'Error' } });
    await receiver.waitFor(() => points(a.iccid).length === 2);
    expect(points(a.iccid)).toEqual(['3:Executed-Success', '4:Failed']);
    const failed = receiver.received.find((n) => n.iccid === a.iccid && n.notificationPointId === 4);
    expect(failed).toMatchObject({ succeeded: false, statusCodeData: { subjectCode: '8.2.10', reasonCode: '4.2', message: 'install failed' } });

    // The device may try again (the fault was once)...
    expect((await post('/sim/device/download', { matchingId: a.matchingId, eid: EID })).json.profile.state).toBe('Enabled');

    // ...or the operator compensates.
    sim.setFaults({ downloadError: { step: 'download', subjectCode: '8.8.5', reasonCode: '6.4' } });
    const b = await released();
    await post('/sim/device/download', { matchingId: b.matchingId, eid: EID });
    expect(sim.getProfile(b.iccid)?.state).toBe('Error');
    await client.cancelOrder({ iccid: b.iccid, finalProfileStatusIndicator: 'Available' });
    expect(sim.getProfile(b.iccid)?.state).toBe('Available');
  });

  it('a device with another EID fails the eligibility check (check point 1)', async () => {
    const a = await released('89049032000000000000000000000001');
    const r = await post('/sim/device/download', { matchingId: a.matchingId, eid: EID });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ subjectCode: '8.1.1', reasonCode: '3.10' });
    await receiver.waitFor(() => points(a.iccid).length === 1);
    expect(points(a.iccid)).toEqual(['1:Failed']);
  });

  it('downloads by EID alone when the order has a zero-length Matching ID', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard', eid: EID });
    await client.confirmOrder({ iccid, matchingId: '', releaseFlag: true });
    const r = await post('/sim/device/download', { eid: EID });
    expect(r.json.profile).toMatchObject({ iccid, state: 'Enabled' });
    expect((await post('/sim/device/download', { matchingId: 'NOPE', eid: EID })).status).toBe(404);
    expect((await post('/sim/device/download', {})).status).toBe(400);
  });

  it('plays the device automatically after confirmOrder(releaseFlag) and releaseProfile', async () => {
    sim.setAutoDevice({ delayMs: 10 });
    const a = await released();
    await sim.waitForState(a.iccid, 'Enabled', 2_000);
    await receiver.waitFor(() => points(a.iccid).length === 3);

    const { iccid } = await client.downloadOrder({ profileType: 'standard', eid: EID });
    await client.confirmOrder({ iccid, releaseFlag: false });
    await new Promise((r) => setTimeout(r, 40));
    expect(sim.getProfile(iccid)?.state).toBe('Confirmed'); // not released: no device
    await client.releaseProfile({ iccid });
    expect((await sim.waitForState(iccid, 'Enabled', 2_000)).eid).toBe(EID);
  });
});
