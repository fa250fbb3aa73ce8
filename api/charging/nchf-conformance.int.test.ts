/**
 * Conformance with the official 3GPP OpenAPI files (TS 32.291 Nchf_ConvergedCharging and what it
 * references): every request this suite sends and every answer the server gives is validated
 * against the spec's own schemas, and every status code must be one the spec lists for the
 * operation. The files are read from MVNO_3GPP_SPECS or ../shared/specs/3gpp-5gc next to the
 * checkout; without them the test fails and says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Pool } from 'pg';
import type { ValidateFunction } from 'ajv';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { fundWallet, seedBucket, seedLine, seedPlan } from '../../domain/charging/testing/fixtures';
import { createChargingServer, NCHF_BASE, type ChargingServer } from './nchf-charging.server';
import { loadSpecValidators } from './testing/openapi-loader';
import { compileRequestValidator } from './nchf-schemas';
import { dataCreate, dataRelease, dataUpdate, smsEvent, voiceCreate, voiceUpdate } from './testing/nchf-requests';

const SPECS = process.env.MVNO_3GPP_SPECS ?? path.resolve(__dirname, '..', '..', '..', 'shared', 'specs', '3gpp-5gc');
const ENTRY = 'TS32291_Nchf_ConvergedCharging.yaml';

describe('conformance with the 3GPP OpenAPI files of TS 32.291', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let engine: ChargingEngine;
  let server: ChargingServer;
  let base: string;
  let request: ValidateFunction;
  let response: ValidateFunction;
  let problem: ValidateFunction;
  let documented: Record<'create' | 'update' | 'release', Set<string>>;
  const checked = { requests: 0, responses: 0 };

  beforeAll(async () => {
    if (!fs.existsSync(path.join(SPECS, ENTRY))) {
      throw new Error(`conformance: the 3GPP OpenAPI files are missing (looked for ${path.join(SPECS, ENTRY)}; set MVNO_3GPP_SPECS)`);
    }
    const specs = loadSpecValidators(SPECS, ENTRY);
    request = specs.validator('ChargingDataRequest');
    response = specs.validator('ChargingDataResponse');
    problem = specs.validator('ProblemDetails', 'TS29571_CommonData.yaml');
    const doc = YAML.parse(fs.readFileSync(path.join(SPECS, ENTRY), 'utf8'));
    const codes = (p: string) => new Set(Object.keys(doc.paths[p].post.responses));
    documented = { create: codes('/chargingdata'), update: codes('/chargingdata/{ChargingDataRef}/update'), release: codes('/chargingdata/{ChargingDataRef}/release') };

    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 4 });
    engine = createChargingEngine({ pool });
    server = createChargingServer({ engine, authenticate: async (h) => (h === 'Bearer k' ? 'network' : undefined) });
    base = `http://127.0.0.1:${await server.listen(0)}${NCHF_BASE}`;
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await engine?.close();
    await pool?.end();
    await t?.drop();
  });

  const errors = (v: ValidateFunction) => JSON.stringify(v.errors?.slice(0, 5));

  /** Sends a spec-valid request and checks the answer against the spec. */
  async function exchange(op: 'create' | 'update' | 'release', url: string, body: unknown): Promise<{ status: number; json: unknown; location: string | null }> {
    const clean = JSON.parse(JSON.stringify(body));
    expect({ valid: request(clean), errors: errors(request) }).toEqual({ valid: true, errors: undefined });
    checked.requests++;
    const res = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: JSON.stringify(clean) });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    const status = String(res.status);
    const known = documented[op].has(status) || documented[op].has('default');
    expect({ op, status, documented: documented[op].has(status) }).toEqual({ op, status, documented: true });
    expect(known).toBe(true);
    if (res.status >= 400) {
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect({ valid: problem(json), errors: errors(problem) }).toEqual({ valid: true, errors: undefined });
    } else if (res.status !== 204) {
      expect(res.headers.get('content-type')).toBe('application/json');
      expect({ valid: response(json), errors: errors(response) }).toEqual({ valid: true, errors: undefined });
    } else {
      expect(text).toBe('');
    }
    checked.responses++;
    return { status: res.status, json, location: res.headers.get('location') };
  }

  test('sessions, events and refusals conform to the spec', async () => {
    const planId = await seedPlan(t.db);
    const rich = await seedLine(t.db, { planId });
    await fundWallet(t.db, rich.accountId, 2_000_000n);
    await seedBucket(t.db, { accountId: rich.accountId, subscriptionId: rich.subscriptionId, service: 'data', units: 3_000_000n });
    const poor = await seedLine(t.db, { planId });

    // data: create, updates (one running out), release
    const c = await exchange('create', base, dataCreate(`imsi-${rich.imsi}`, { requested: 5_000_000, chargingId: 1 }));
    expect(c.status).toBe(201);
    const loc = c.location!;
    expect((await exchange('update', `${loc}/update`, dataUpdate(1, 5_000_000, { requested: 500_000_000 }))).status).toBe(200);
    const fui = await exchange('update', `${loc}/update`, dataUpdate(2, 1_000_000, { requested: 500_000_000 }));
    expect(JSON.stringify(fui.json)).toContain('TERMINATE');
    expect((await exchange('release', `${loc}/release`, dataRelease(3, 2_000_000))).status).toBe(204);
    // roaming data, voice, SMS
    const roam = await exchange('create', base, dataCreate(`msisdn-${rich.msisdn}`, { where: { mcc: '208', mnc: '15' } }));
    await exchange('release', `${roam.location}/release`, dataRelease(1, 10_000));
    const call = await exchange('create', base, voiceCreate(`imsi-${rich.imsi}`, '4915112345678', { requested: 60 }));
    await exchange('update', `${call.location}/update`, voiceUpdate(1, 60, 60));
    await exchange('release', `${call.location}/release`, voiceUpdate(2, 12, null));
    await exchange('create', base, smsEvent(`imsi-${rich.imsi}`, '491701234567'));
    // refusals
    expect((await exchange('create', base, dataCreate(`imsi-${poor.imsi}`))).json).toMatchObject({ multipleUnitInformation: [{ resultCode: 'QUOTA_LIMIT_REACHED' }] });
    expect((await exchange('create', base, dataCreate('imsi-262019999999998'))).status).toBe(404);
    const suspended = await seedLine(t.db, { planId, state: 'suspended' });
    expect((await exchange('create', base, dataCreate(`imsi-${suspended.imsi}`))).status).toBe(403);
    expect((await exchange('update', `${base}/nope/update`, dataUpdate(1, 1))).status).toBe(404);
    expect((await exchange('release', `${base}/nope/release`, dataRelease(1, 1))).status).toBe(404);
    expect(checked.requests).toBeGreaterThanOrEqual(15);
  });

  test('what our schema refuses as malformed, the spec’s schema refuses too; its answer is a valid ProblemDetails', async () => {
    const ours = compileRequestValidator();
    const good = JSON.parse(JSON.stringify(dataCreate('imsi-262010000000001')));
    const malformed: unknown[] = [
      { ...good, invocationSequenceNumber: undefined },
      { ...good, invocationSequenceNumber: -1 },
      { ...good, invocationSequenceNumber: 2 ** 32 },
      { ...good, invocationTimeStamp: 'not a time' },
      { ...good, nfConsumerIdentification: {} },
      { ...good, nfConsumerIdentification: { nodeFunctionality: 'SMF', nFName: 'not-a-uuid' } },
      { ...good, multipleUnitUsage: [{}] },
      { ...good, multipleUnitUsage: [{ ratingGroup: 10, requestedUnit: { time: -1 } }] },
      { ...good, multipleUnitUsage: [{ ratingGroup: 10, usedUnitContainer: [{ totalVolume: 1 }] }] },
      { ...good, multipleUnitUsage: [{ ratingGroup: 10, usedUnitContainer: [{ localSequenceNumber: 1, triggers: [{ triggerType: 'FINAL' }] }] }] },
      { ...good, pDUSessionChargingInformation: { pduSessionInformation: { dnnId: 'internet' } } },
      { ...good, pDUSessionChargingInformation: { userLocationinfo: { nrLocation: { tai: { plmnId: { mcc: '262', mnc: '1' }, tac: '0001' }, ncgi: { plmnId: { mcc: '262', mnc: '01' }, nrCellId: '000000001' } } } } },
    ].map((b) => JSON.parse(JSON.stringify(b)));
    for (const body of malformed) {
      expect({ body, ours: ours(body) !== null }).toEqual({ body, ours: true });
      expect({ body, spec: request(body) }).toEqual({ body, spec: false });
      const res = await fetch(base, { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      const json = await res.json();
      expect({ valid: problem(json), errors: errors(problem) }).toEqual({ valid: true, errors: undefined });
      expect(json.invalidParams.length).toBeGreaterThan(0);
    }
    expect(ours(good)).toBeNull();
    expect(request(good)).toBe(true);
  });
});
