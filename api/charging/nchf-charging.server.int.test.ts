import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { fundWallet, seedBucket, seedLine, seedPlan, type Line } from '../../domain/charging/testing/fixtures';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { createChargingServer, NCHF_BASE, type ChargingServer } from './nchf-charging.server';
import { rateUsage } from '../../domain/charging/rating';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';
import { parseTariff } from '../../domain/charging/tariff.types';
import { dataCreate, dataRelease, dataUpdate, smsEvent, voiceCreate, voiceUpdate } from './testing/nchf-requests';

const KEYS: Record<string, string> = { 'Bearer net-key': 'network', 'Bearer admin-key': 'admin', 'Bearer shop-key': 'storefront' };

describe('Nchf_ConvergedCharging HTTP server (real HTTP on loopback)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let engine: ChargingEngine;
  let server: ChargingServer;
  let base: string;
  let planId: string;
  let authCalls = 0;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 6 });
    engine = createChargingEngine({ pool });
    server = createChargingServer({
      engine, maxBodyBytes: 8 * 1024,
      authenticate: async (h) => { authCalls++; return h ? KEYS[h] : undefined; },
    });
    const port = await server.listen(0);
    base = `http://127.0.0.1:${port}${NCHF_BASE}`;
    planId = await seedPlan(t.db);
  });
  afterAll(async () => {
    await server.close();
    await engine.close();
    await pool.end();
    await t.drop();
  });

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: 'Bearer net-key', 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  async function line(money = 1_000_000n, dataUnits = 0n): Promise<Line> {
    const l = await seedLine(t.db, { planId });
    if (money > 0n) await fundWallet(t.db, l.accountId, money);
    if (dataUnits > 0n) await seedBucket(t.db, { accountId: l.accountId, subscriptionId: l.subscriptionId, service: 'data', units: dataUnits });
    return l;
  }

  test('a data session: create 201 with Location, update 200, release 204; a retransmission gets the first answer', async () => {
    const l = await line(0n, 50_000_000n);
    const res = await post(base, dataCreate(`imsi-${l.imsi}`, { requested: 10_000_000, chargingId: 77 }));
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/json');
    const location = res.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+${NCHF_BASE}/[A-Za-z0-9_-]+$`));
    const created = await res.json();
    expect(created).toMatchObject({
      invocationSequenceNumber: 0,
      multipleUnitInformation: [{ ratingGroup: 10, resultCode: 'SUCCESS', grantedUnit: { totalVolume: 10_000_000 }, validityTime: 3600 }],
    });
    expect(Date.parse(created.invocationTimeStamp)).not.toBeNaN();

    const update = dataUpdate(1, 4_000_000, { requested: 10_000_000 });
    const u = await post(`${location}/update`, update);
    expect(u.status).toBe(200);
    const first = await u.json();
    const again = await post(`${location}/update`, { ...update, retransmissionIndicator: true });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);

    const r = await post(`${location}/release`, dataRelease(2, 3_000_000));
    expect(r.status).toBe(204);
    expect(await r.text()).toBe('');
    const ref = decodeURIComponent(location.split('/').pop()!);
    const usage = await t.db('rated_usage').where({ charging_data_ref: ref }).orderBy('id');
    expect(usage.map((x) => x.used_units)).toEqual(['4000000', '3000000']);
    expect(usage[0]).toMatchObject({ uplink_units: '800000', downlink_units: '3200000', local_sequence_number: '1', zone: 'home' });
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  test('a retransmitted create reaches the same resource', async () => {
    const l = await line(0n, 50_000_000n);
    const body = dataCreate(`imsi-${l.imsi}`, { requested: 1_000_000, chargingId: 5 });
    const a = await post(base, body);
    const b = await post(base, { ...body, retransmissionIndicator: true });
    expect(a.headers.get('location')).toBe(b.headers.get('location'));
    expect(await b.json()).toEqual(await a.json());
    expect(await t.db('charging_sessions').where({ subscriber_id: l.subscriberId }).count({ n: '*' }).first()).toEqual({ n: '1' });
  });

  test('roaming, voice with its called number and SMS as an immediate event', async () => {
    const l = await line(1_000_000n);
    const roam = await post(base, dataCreate(`msisdn-${l.msisdn}`, { requested: 1_000_000, where: { mcc: '208', mnc: '10' } }));
    expect(roam.status).toBe(201);
    const loc = roam.headers.get('location')!;
    await post(`${loc}/release`, dataRelease(1, 500_000));
    const ref = decodeURIComponent(loc.split('/').pop()!);
    expect(await t.db('rated_usage').where({ charging_data_ref: ref }).first()).toMatchObject({ zone: 'roam-eu', msisdn: l.msisdn });

    const call = await post(base, voiceCreate(`imsi-${l.imsi}`, '4930123456', { requested: 120 }));
    expect(call.status).toBe(201);
    expect((await call.json()).multipleUnitInformation[0]).toMatchObject({ ratingGroup: 20, resultCode: 'SUCCESS', grantedUnit: { time: 120 } });
    const callLoc = call.headers.get('location')!;
    expect((await post(`${callLoc}/release`, voiceUpdate(1, 61, null))).status).toBe(204);
    const callUsage = await t.db('rated_usage').where({ charging_data_ref: decodeURIComponent(callLoc.split('/').pop()!) }).first();
    expect(callUsage).toMatchObject({ service: 'voice', destination: '4930123456', used_units: '61', zone: 'home' });
    // 61 s at 60/1 priced at the band in force when the call started (peak 10, off-peak 5, weekend 4 cents/min)
    const rated = rateUsage(parseTariff(PREPAID_EXAMPLE_TARIFF), { service: 'voice', zone: 'home', destination: '4930123456', startedAt: callUsage.started_at, units: 61n });
    expect(rated.status === 'rated' && rated.amountMicros.toString()).toBe(callUsage.amount_micros);

    const sms = await post(base, smsEvent(`imsi-${l.imsi}`, '447700900123'));
    expect(sms.status).toBe(201);
    expect((await sms.json()).multipleUnitInformation).toEqual([{ ratingGroup: 30, resultCode: 'SUCCESS', grantedUnit: { serviceSpecificUnits: 1 } }]);
    const unknownDestination = await post(base, voiceCreate(`imsi-${l.imsi}`, '8613800000000'));
    expect((await unknownDestination.json()).multipleUnitInformation[0]).toEqual({ ratingGroup: 20, resultCode: 'RATING_FAILED' });
  });

  test('the raw request is kept verbatim, whatever characters it holds; NUL is refused', async () => {
    const l = await line(1_000_000n);
    const body = { ...smsEvent(`imsi-${l.imsi}`, '447700900124'), tenantIdentifier: `O'Brien \\ "quoted" \u00e9 😀 '); DROP TABLE postings; --` };
    const raw = JSON.stringify(body);
    const res = await post(base, raw);
    expect(res.status).toBe(201);
    const entry = await t.db('journal_entries').where('source_ref', 'like', 'chargingdata/%').orderBy('id', 'desc').first();
    expect(entry.details.request).toBe(raw);
    expect(JSON.parse(entry.details.request).tenantIdentifier).toBe(body.tenantIdentifier);
    const nul = await post(base, raw.replace('O\'Brien', 'O\\u0000Brien'));
    expect(nul.status).toBe(400);
    expect(await nul.json()).toMatchObject({ cause: 'INVALID_MSG_FORMAT' });
  });

  test('unknown, suspended and exhausted subscribers get the spec’s answers', async () => {
    const unknown = await post(base, dataCreate('imsi-262019999999999'));
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    expect(await unknown.json()).toMatchObject({ status: 404, cause: 'USER_UNKNOWN' });
    const odd = await post(base, dataCreate('nai-someone@example.org'));
    expect(odd.status).toBe(404);

    const suspended = await seedLine(t.db, { planId, state: 'suspended' });
    const s = await post(base, dataCreate(`imsi-${suspended.imsi}`));
    expect(s.status).toBe(403);
    expect(await s.json()).toMatchObject({ status: 403, cause: 'END_USER_REQUEST_DENIED' });

    const broke = await line(0n);
    const b = await post(base, dataCreate(`imsi-${broke.imsi}`, { requested: 1_000_000 }));
    expect(b.status).toBe(201);
    expect((await b.json()).multipleUnitInformation).toEqual([{ ratingGroup: 10, resultCode: 'QUOTA_LIMIT_REACHED' }]);

    const gone = await post(`${base}/does-not-exist/update`, dataUpdate(1, 10));
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ cause: 'CONTEXT_NOT_FOUND' });
  });

  test.each([
    ['not JSON', '{"invocationSequenceNumber": ', 400, 'INVALID_MSG_FORMAT', undefined],
    ['a JSON array', '[1,2]', 400, 'INVALID_MSG_FORMAT', undefined],
    ['no invocationSequenceNumber', { nfConsumerIdentification: { nodeFunctionality: 'SMF' }, invocationTimeStamp: '2025-01-01T00:00:00Z' }, 400, 'MANDATORY_IE_MISSING', '/invocationSequenceNumber'],
    ['no nodeFunctionality', { nfConsumerIdentification: {}, invocationTimeStamp: '2025-01-01T00:00:00Z', invocationSequenceNumber: 0 }, 400, 'MANDATORY_IE_MISSING', '/nfConsumerIdentification/nodeFunctionality'],
    ['a bad timestamp', { nfConsumerIdentification: { nodeFunctionality: 'SMF' }, invocationTimeStamp: 'yesterday', invocationSequenceNumber: 0 }, 400, 'MANDATORY_IE_INCORRECT', '/invocationTimeStamp'],
    ['a negative sequence number', { nfConsumerIdentification: { nodeFunctionality: 'SMF' }, invocationTimeStamp: '2025-01-01T00:00:00Z', invocationSequenceNumber: -1 }, 400, 'MANDATORY_IE_INCORRECT', '/invocationSequenceNumber'],
    ['a string rating group', { ...dataCreate('imsi-262010000000001'), multipleUnitUsage: [{ ratingGroup: 'ten' }] }, 400, 'MANDATORY_IE_INCORRECT', '/multipleUnitUsage/0/ratingGroup'],
    ['a negative volume', { ...dataCreate('imsi-262010000000001'), multipleUnitUsage: [{ ratingGroup: 10, requestedUnit: { totalVolume: -5 } }] }, 400, 'OPTIONAL_IE_INCORRECT', '/multipleUnitUsage/0/requestedUnit/totalVolume'],
    ['a volume beyond 2^53', { ...dataCreate('imsi-262010000000001'), multipleUnitUsage: [{ ratingGroup: 10, requestedUnit: { totalVolume: 2 ** 60 } }] }, 400, 'OPTIONAL_IE_INCORRECT', '/multipleUnitUsage/0/requestedUnit/totalVolume'],
    ['a container without localSequenceNumber', { ...dataCreate('imsi-262010000000001'), multipleUnitUsage: [{ ratingGroup: 10, usedUnitContainer: [{ totalVolume: 5 }] }] }, 400, 'MANDATORY_IE_MISSING', '/multipleUnitUsage/0/usedUnitContainer/0/localSequenceNumber'],
    ['a bad PLMN', { ...dataCreate('imsi-262010000000001'), pDUSessionChargingInformation: { pduSessionInformation: { pduSessionID: 1, dnnId: 'x', servingCNPlmnId: { mcc: '26', mnc: '01' } } } }, 400, 'OPTIONAL_IE_INCORRECT', '/pDUSessionChargingInformation/pduSessionInformation/servingCNPlmnId/mcc'],
    ['no subscriber on a create', { nfConsumerIdentification: { nodeFunctionality: 'SMF' }, invocationTimeStamp: '2025-01-01T00:00:00Z', invocationSequenceNumber: 0 }, 400, 'CHARGING_FAILED', '/subscriberIdentifier'],
  ])('refuses %s with 400 ProblemDetails', async (_name, body, status, cause, param) => {
    const res = await post(base, body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = await res.json();
    expect(problem).toMatchObject({ status, cause });
    if (param) expect(problem.invalidParams).toEqual(expect.arrayContaining([expect.objectContaining({ param })]));
  });

  test('HTTP-level refusals: path, method, media type, size, API key and role', async () => {
    const body = dataCreate('imsi-262010000000001');
    expect((await fetch(base, { method: 'GET', headers: { authorization: 'Bearer net-key' } })).status).toBe(405);
    const nowhere = await post(base.replace('/v3/', '/v2/'), body);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toMatchObject({ cause: 'RESOURCE_URI_STRUCTURE_NOT_FOUND' });
    expect((await post(`${base}/abc/delete`, body)).status).toBe(404);
    expect((await post(base, body, { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post(base, { ...body, tenantIdentifier: 'x'.repeat(9000) })).status).toBe(413);
    const anonymous = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(base, body, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(base, body, { authorization: 'Bearer shop-key' })).status).toBe(403);
    const before = authCalls;
    await post(base, body, { authorization: 'Bearer admin-key' });
    await post(base, body, { authorization: 'Bearer admin-key' });
    expect(authCalls - before).toBeLessThanOrEqual(1); // cached
  });
});
