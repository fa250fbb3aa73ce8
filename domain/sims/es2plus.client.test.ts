/**
 * The ES2+ client against the local SM-DP+ simulator, both on loopback (port 0).
 */
import * as http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildActivationCode, Es2PlusClient, Es2PlusError, parseActivationCode } from './es2plus.client';
import { createSmdpPlusSimulator, type SmdpPlusSimulator } from '../../simulators/smdp-plus/simulator';
import { startNotificationReceiver, type NotificationReceiver } from '../../simulators/smdp-plus/testing';

const EID_A = '89049032000000000000000000000001';
const EID_B = '89049032000000000000000000000002';

let sim: SmdpPlusSimulator;
let receiver: NotificationReceiver;
let client: Es2PlusClient;

beforeAll(async () => {
  receiver = await startNotificationReceiver();
  sim = await createSmdpPlusSimulator({
    notificationUrl: receiver.url,
    deviceStepDelayMs: 1,
    notificationRetry: { backoffMs: 10 },
    iccidPrefix: '898801',
  });
  client = new Es2PlusClient({ baseUrl: sim.url, functionRequesterIdentifier: 'mvno-bss-test', timeoutMs: 2_000 });
});

afterEach(() => sim.clearFaults());

afterAll(async () => {
  client.close();
  await sim.close();
  await receiver.close();
});

/** Runs `fn`, expecting an Es2PlusError, and returns it. */
async function failure(fn: () => Promise<unknown>): Promise<Es2PlusError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Es2PlusError);
    return e as Es2PlusError;
  }
  throw new Error('expected an Es2PlusError');
}

async function released(eid?: string): Promise<{ iccid: string; matchingId: string; smdpAddress: string }> {
  const { iccid } = await client.downloadOrder({ profileType: 'standard', ...(eid ? { eid } : {}) });
  const c = await client.confirmOrder({ iccid, releaseFlag: true });
  return { iccid, matchingId: c.matchingId, smdpAddress: c.smdpAddress };
}

async function deviceDownload(body: Record<string, unknown>): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.url}/sim/device/download`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

describe('happy path', () => {
  it('orders, confirms, and follows the download through the notifications', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    expect(iccid).toMatch(/^8988\d{16}$/);
    expect(sim.getProfile(iccid)?.state).toBe('Allocated');

    const confirmed = await client.confirmOrder({ iccid, releaseFlag: true });
    expect(confirmed.matchingId).toMatch(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
    expect(confirmed.smdpAddress).toBe(sim.smdpAddress);
    expect(sim.getProfile(iccid)?.state).toBe('Released');

    const code = buildActivationCode(confirmed.smdpAddress, confirmed.matchingId);
    expect(code).toBe(`LPA:1$${sim.smdpAddress}$${confirmed.matchingId}`);

    const dl = await deviceDownload({ activationCode: code, eid: EID_A });
    expect(dl.status).toBe(200);
    expect(dl.json.profile).toMatchObject({ iccid, state: 'Enabled', eid: EID_A });

    const mine = () => receiver.received.filter((n) => n.iccid === iccid);
    await receiver.waitFor(() => mine().length === 3);
    expect(mine().map((n) => [n.notificationPointId, n.notificationPoint, n.status])).toEqual([
      [3, 'BppDownload', 'Executed-Success'],
      [4, 'BppInstallation', 'Executed-Success'],
      [6, 'ProfileEnabled', 'Executed-Success'],
    ]);
    for (const n of mine()) expect(n).toMatchObject({ eid: EID_A, profileType: 'standard', succeeded: true, functionRequesterIdentifier: 'smdp-plus-simulator' });

    const res = await fetch(`${sim.url}/sim/profiles/${iccid}`);
    expect((await res.json()).history.map((h: { state: string }) => h.state)).toEqual([
      'Available',
      'Allocated',
      'Released',
      'Downloaded',
      'Installed',
      'Enabled',
    ]);
  });

  it('links the EID given at downloadOrder, keeps a caller-chosen matchingId, and releases later', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard', eid: EID_A });
    expect(sim.getProfile(iccid)).toMatchObject({ state: 'Linked', eid: EID_A });
    const c = await client.confirmOrder({ iccid, matchingId: 'OPERATOR-CHOSEN-1', releaseFlag: false });
    expect(c).toEqual({ eid: EID_A, matchingId: 'OPERATOR-CHOSEN-1', smdpAddress: sim.smdpAddress });
    expect(sim.getProfile(iccid)?.state).toBe('Confirmed');
    expect((await deviceDownload({ matchingId: 'OPERATOR-CHOSEN-1', eid: EID_A })).status).toBe(409); // not released yet
    await client.releaseProfile({ iccid });
    expect(sim.getProfile(iccid)?.state).toBe('Released');
    expect((await deviceDownload({ matchingId: 'OPERATOR-CHOSEN-1', eid: EID_A })).json.profile.state).toBe('Enabled');
  });
});

describe('state rules', () => {
  it('refuses unknown ICCIDs with 8.2.1/3.9', async () => {
    for (const call of [
      () => client.downloadOrder({ iccid: '89880100000000000009' }),
      () => client.confirmOrder({ iccid: '89880100000000000009', releaseFlag: true }),
      () => client.cancelOrder({ iccid: '89880100000000000009', finalProfileStatusIndicator: 'Available' }),
      () => client.releaseProfile({ iccid: '89880100000000000009' }),
    ]) {
      const e = await failure(call);
      expect(e).toMatchObject({ kind: 'Failed', subjectCode: '8.2.1', reasonCode: '3.9', retryable: false, subjectIdentifier: '89880100000000000009' });
    }
  });

  it('releaseProfile only from Confirmed (8.2.1/3.5)', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    expect(await failure(() => client.releaseProfile({ iccid }))).toMatchObject({ subjectCode: '8.2.1', reasonCode: '3.5' });
    await client.confirmOrder({ iccid, releaseFlag: true });
    expect(await failure(() => client.releaseProfile({ iccid }))).toMatchObject({ subjectCode: '8.2.1', reasonCode: '3.5' });
  });

  it('cancelOrder returns the Profile to the pool or withdraws it', async () => {
    const a = await released();
    await client.cancelOrder({ iccid: a.iccid, matchingId: a.matchingId, finalProfileStatusIndicator: 'Available' });
    expect(sim.getProfile(a.iccid)).toMatchObject({ state: 'Available' });
    expect(sim.getProfile(a.iccid)?.matchingId).toBeUndefined();
    // The matching ID is gone with the order.
    expect((await deviceDownload({ matchingId: a.matchingId, eid: EID_A })).status).toBe(404);
    // The pool hands the same Profile out again.
    expect((await client.downloadOrder({ iccid: a.iccid })).iccid).toBe(a.iccid);

    await client.cancelOrder({ iccid: a.iccid, finalProfileStatusIndicator: 'Unavailable' });
    expect(sim.getProfile(a.iccid)?.state).toBe('Unavailable');
    expect(await failure(() => client.downloadOrder({ iccid: a.iccid }))).toMatchObject({ subjectCode: '8.2.1', reasonCode: '3.3' });
    expect(await failure(() => client.cancelOrder({ iccid: a.iccid, finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      subjectCode: '8.2.1',
      reasonCode: '3.5',
    });
  });

  it('cancelOrder checks the EID and Matching ID of the order, and refuses once downloaded', async () => {
    const b = await released(EID_A);
    expect(await failure(() => client.cancelOrder({ iccid: b.iccid, eid: EID_B, finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      subjectCode: '8.1.1',
      reasonCode: '3.10',
    });
    expect(await failure(() => client.cancelOrder({ iccid: b.iccid, matchingId: 'NOT-IT', finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      subjectCode: '8.2.6',
      reasonCode: '3.10',
    });
    await deviceDownload({ matchingId: b.matchingId, eid: EID_A });
    expect(await failure(() => client.cancelOrder({ iccid: b.iccid, finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      subjectCode: '8.2.1',
      reasonCode: '3.3',
    });
  });

  it('confirmOrder: EID conflicts, Matching ID conflicts, SM-DS without EID', async () => {
    const linked = await client.downloadOrder({ profileType: 'standard', eid: EID_A });
    expect(await failure(() => client.confirmOrder({ iccid: linked.iccid, eid: EID_B, releaseFlag: true }))).toMatchObject({
      subjectCode: '8.1.1',
      reasonCode: '3.10',
    });
    const taken = await released();
    const other = await client.downloadOrder({ profileType: 'standard' });
    expect(await failure(() => client.confirmOrder({ iccid: other.iccid, matchingId: taken.matchingId, releaseFlag: true }))).toMatchObject({
      subjectCode: '8.2.6',
      reasonCode: '3.3',
    });
    expect(await failure(() => client.confirmOrder({ iccid: other.iccid, smdsAddress: 'smds.example.com', releaseFlag: true }))).toMatchObject({
      subjectCode: '8.1.1',
      reasonCode: '2.2',
    });
    expect(await failure(() => client.confirmOrder({ iccid: other.iccid, matchingId: '', releaseFlag: true }))).toMatchObject({
      subjectCode: '8.1.1',
      reasonCode: '2.2',
    });
  });
});

describe('faults', () => {
  it('fails a function once with the given codes', async () => {
    sim.setFaults({ downloadOrder: { error: { subjectCode: '8.2.5', reasonCode: '3.7', message: 'pool empty', times: 1 } } });
    const e = await failure(() => client.downloadOrder({ profileType: 'standard' }));
    expect(e).toMatchObject({ kind: 'Failed', functionName: 'downloadOrder', subjectCode: '8.2.5', reasonCode: '3.7', statusMessage: 'pool empty', retryable: false });
    expect(e.statusCode).toBe('8.2.5/3.7');
    expect(e.message).toContain('8.2.5/3.7');
    await expect(client.downloadOrder({ profileType: 'standard' })).resolves.toHaveProperty('iccid');
  });

  it('fails N times with a transient code; a retry with the same identifier then succeeds', async () => {
    sim.setFaults({ downloadOrder: { error: { subjectCode: '1.2', reasonCode: '4.4', times: 2 } } });
    const id = 'order-42:downloadOrder';
    for (let i = 0; i < 2; i++) {
      expect(await failure(() => client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: id }))).toMatchObject({
        kind: 'Failed',
        reasonCode: '4.4',
        retryable: true,
        functionCallIdentifier: id,
      });
    }
    const ok = await client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: id });
    expect(sim.getProfile(ok.iccid)?.state).toBe('Allocated');
  });

  it('fails always until cleared', async () => {
    sim.setFaults({ releaseProfile: { error: { subjectCode: '8.2.1', reasonCode: '1.2', times: 'always' } } });
    for (let i = 0; i < 3; i++) expect(await failure(() => client.releaseProfile({ iccid: '89880100000000000009' }))).toMatchObject({ reasonCode: '1.2' });
    sim.clearFaults();
    expect(await failure(() => client.releaseProfile({ iccid: '89880100000000000009' }))).toMatchObject({ reasonCode: '3.9' });
  });

  it('answers Expired (retryable)', async () => {
    sim.setFaults({ cancelOrder: { error: { subjectCode: '1.6', reasonCode: '4.10', status: 'Expired', times: 1 } } });
    expect(await failure(() => client.cancelOrder({ iccid: '89880100000000000009', finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      kind: 'Expired',
      retryable: true,
    });
  });

  it('adds latency', async () => {
    sim.setFaults({ downloadOrder: { latencyMs: 150 } });
    const t0 = Date.now();
    await client.downloadOrder({ profileType: 'standard' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('times out (retryable); the retry with the same identifier gets the answer of the one execution', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    sim.setFaults({ confirmOrder: { timeout: { ms: 1_000, times: 1 } } });
    const id = 'order-7:confirmOrder';
    const t0 = Date.now();
    const e = await failure(() => client.confirmOrder({ iccid, releaseFlag: true }, { functionCallIdentifier: id, timeoutMs: 200 }));
    expect(e).toMatchObject({ kind: 'Timeout', retryable: true, functionCallIdentifier: id });
    expect(Date.now() - t0).toBeLessThan(900);
    // The SM-DP+ did execute it: the profile is Released.
    const matchingId = sim.getProfile(iccid)?.matchingId;
    expect(sim.getProfile(iccid)?.state).toBe('Released');
    const again = await client.confirmOrder({ iccid, releaseFlag: true }, { functionCallIdentifier: id });
    expect(again.matchingId).toBe(matchingId);
    expect(sim.getProfile(iccid)?.history.filter((h) => h.state === 'Released')).toHaveLength(1);
    // A new identifier is a new call, refused by the state machine.
    expect(await failure(() => client.confirmOrder({ iccid, releaseFlag: true }))).toMatchObject({ subjectCode: '8.2.1', reasonCode: '3.5' });
  });

  it('times out without executing when asked to', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    sim.setFaults({ confirmOrder: { timeout: { ms: 400, execute: false, times: 1 } } });
    const id = 'order-8:confirmOrder';
    expect(await failure(() => client.confirmOrder({ iccid, releaseFlag: false }, { functionCallIdentifier: id, timeoutMs: 100 }))).toMatchObject({ kind: 'Timeout' });
    expect(sim.getProfile(iccid)?.state).toBe('Allocated');
    await client.confirmOrder({ iccid, releaseFlag: false }, { functionCallIdentifier: id });
    expect(sim.getProfile(iccid)?.state).toBe('Confirmed');
  });

  it('resets the connection and answers HTTP errors', async () => {
    sim.setFaults({ downloadOrder: { reset: { times: 1 } }, cancelOrder: { httpStatus: { status: 503, times: 1 } }, releaseProfile: { httpStatus: { status: 403, times: 1 } } });
    expect(await failure(() => client.downloadOrder({ profileType: 'standard' }))).toMatchObject({ kind: 'Transport', retryable: true });
    expect(await failure(() => client.cancelOrder({ iccid: '89880100000000000009', finalProfileStatusIndicator: 'Available' }))).toMatchObject({
      kind: 'Http',
      httpStatus: 503,
      retryable: true,
    });
    expect(await failure(() => client.releaseProfile({ iccid: '89880100000000000009' }))).toMatchObject({ kind: 'Http', httpStatus: 403, retryable: false });
  });
});

describe('idempotency', () => {
  it('a repeated functionCallIdentifier returns the first answer', async () => {
    const first = await client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: 'dup-1' });
    const second = await client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: 'dup-1' });
    expect(second.iccid).toBe(first.iccid);
    const third = await client.downloadOrder({ profileType: 'standard' });
    expect(third.iccid).not.toBe(first.iccid);
  });

  it('also for refusals, even after the state changed', async () => {
    const { iccid } = await client.downloadOrder({ profileType: 'standard' });
    expect(await failure(() => client.releaseProfile({ iccid }, { functionCallIdentifier: 'rel-1' }))).toMatchObject({ reasonCode: '3.5' });
    await client.confirmOrder({ iccid, releaseFlag: false });
    expect(await failure(() => client.releaseProfile({ iccid }, { functionCallIdentifier: 'rel-1' }))).toMatchObject({ reasonCode: '3.5' });
    await client.releaseProfile({ iccid }, { functionCallIdentifier: 'rel-2' });
    expect(sim.getProfile(iccid)?.state).toBe('Released');
  });

  it('concurrent repeats wait for the one execution', async () => {
    sim.setFaults({ downloadOrder: { latencyMs: 100 } });
    const [a, b] = await Promise.all([
      client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: 'dup-2' }),
      new Promise((r) => setTimeout(r, 20)).then(() => client.downloadOrder({ profileType: 'standard' }, { functionCallIdentifier: 'dup-2' })),
    ]);
    // The second arrived during the first's latency and waited for its answer.
    expect(b.iccid).toBe(a.iccid);
  });
});

describe('client-side errors', () => {
  it('validates requests before sending', async () => {
    const e = await failure(() => client.confirmOrder({ iccid: 'not-an-iccid', releaseFlag: true }));
    expect(e).toMatchObject({ kind: 'InvalidRequest', retryable: false });
    expect((await failure(() => client.downloadOrder({})))).toMatchObject({ kind: 'InvalidRequest' });
  });

  it('connection refused is a retryable transport error', async () => {
    const dead = new Es2PlusClient({ baseUrl: 'http://127.0.0.1:1', functionRequesterIdentifier: 'x', timeoutMs: 1_000 });
    expect(await failure(() => dead.downloadOrder({ profileType: 'standard' }))).toMatchObject({ kind: 'Transport', retryable: true, code: 'ECONNREFUSED' });
    dead.close();
  });

  it('handles warnings, 204 answers, missing smdpAddress and non-ES2+ answers', async () => {
    let answer: { status: number; body: string } = { status: 200, body: '' };
    const paths: string[] = [];
    const stub = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body));
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    const warnings: string[] = [];
    const c = new Es2PlusClient({
      baseUrl: `http://127.0.0.1:${(stub.address() as AddressInfo).port}/prefix/`,
      functionRequesterIdentifier: 'x',
      smdpAddress: 'rsp.example.com',
      onWarning: (fn, w) => warnings.push(`${fn}:${w?.subjectCode}/${w?.reasonCode}`),
    });
    try {
      answer = {
        status: 200,
        body: JSON.stringify({
          header: { functionExecutionStatus: { status: 'Executed-WithWarning', statusCodeData: { subjectCode: '8.9', reasonCode: '4.2' } } },
          matchingId: 'M-1',
        }),
      };
      expect(await c.confirmOrder({ iccid: '89880100000000000017', releaseFlag: true })).toEqual({ matchingId: 'M-1', smdpAddress: 'rsp.example.com' });
      expect(warnings).toEqual(['confirmOrder:8.9/4.2']);
      expect(paths.at(-1)).toBe('/prefix/gsma/rsp2/es2plus/confirmOrder');

      answer = { status: 204, body: '' };
      await expect(c.cancelOrder({ iccid: '89880100000000000017', finalProfileStatusIndicator: 'Available' })).resolves.toBeUndefined();

      answer = { status: 200, body: '<html>oops</html>' };
      expect(await failure(() => c.releaseProfile({ iccid: '89880100000000000017' }))).toMatchObject({ kind: 'Protocol', retryable: false });

      answer = { status: 200, body: JSON.stringify({ header: { functionExecutionStatus: { status: 'Executed-Success' } } }) };
      expect(await failure(() => c.downloadOrder({ profileType: 'x' }))).toMatchObject({ kind: 'Protocol' }); // no iccid

      const small = new Es2PlusClient({ baseUrl: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`, functionRequesterIdentifier: 'x', maxResponseBytes: 100 });
      answer = { status: 200, body: JSON.stringify({ header: { functionExecutionStatus: { status: 'Executed-Success' } }, iccid: '89880100000000000016', pad: 'x'.repeat(5_000) }) };
      expect(await failure(() => small.downloadOrder({ profileType: 'x' }))).toMatchObject({ kind: 'Protocol', retryable: false });
      small.close();

      answer = { status: 502, body: 'bad gateway' };
      expect(await failure(() => c.downloadOrder({ profileType: 'x' }))).toMatchObject({ kind: 'Http', httpStatus: 502, retryable: true });
    } finally {
      c.close();
      await new Promise<void>((r) => {
        stub.close(() => r());
        stub.closeAllConnections();
      });
    }
  });
});

describe('mutual TLS', () => {
  const pem = (name: string) => readFileSync(join(__dirname, '../../simulators/smdp-plus/fixtures/tls', name), 'utf8');

  it('talks to an HTTPS SM-DP+ that requires a client certificate, and only with one', async () => {
    const tlsSim = await createSmdpPlusSimulator({
      tls: { cert: pem('server.cert.pem'), key: pem('server.key.pem'), ca: pem('ca.cert.pem') },
      allowedRequesters: ['mvno-bss-test'],
    });
    const good = new Es2PlusClient({
      baseUrl: tlsSim.url,
      functionRequesterIdentifier: 'mvno-bss-test',
      tls: { cert: pem('client.cert.pem'), key: pem('client.key.pem'), ca: pem('ca.cert.pem') },
      timeoutMs: 2_000,
    });
    const stranger = new Es2PlusClient({
      baseUrl: tlsSim.url,
      functionRequesterIdentifier: 'someone-else',
      tls: { cert: pem('client.cert.pem'), key: pem('client.key.pem'), ca: pem('ca.cert.pem') },
    });
    const noCert = new Es2PlusClient({ baseUrl: tlsSim.url, functionRequesterIdentifier: 'mvno-bss-test', timeoutMs: 2_000 });
    try {
      expect(tlsSim.url.startsWith('https://127.0.0.1:')).toBe(true);
      const { iccid } = await good.downloadOrder({ profileType: 'standard' });
      const c = await good.confirmOrder({ iccid, releaseFlag: true });
      expect(parseActivationCode(buildActivationCode(c.smdpAddress, c.matchingId)).matchingId).toBe(c.matchingId);
      expect(await failure(() => stranger.downloadOrder({ profileType: 'standard' }))).toMatchObject({ subjectCode: '1.1', reasonCode: '1.1' });
      expect(await failure(() => noCert.downloadOrder({ profileType: 'standard' }))).toMatchObject({ kind: 'Transport', retryable: true });
    } finally {
      good.close();
      stranger.close();
      noCert.close();
      await tlsSim.close();
    }
  });

  it('refuses tls options with an http baseUrl', () => {
    expect(() => new Es2PlusClient({ baseUrl: 'http://127.0.0.1:1', functionRequesterIdentifier: 'x', tls: { cert: 'a', key: 'b' } })).toThrow(/https/);
  });
});
