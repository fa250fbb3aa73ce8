import crypto from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine, type ChargingEngine } from './charging-engine';
import { startSweeper } from './sweeper';
import type { ChargingAnswer, CreateOp, ReleaseOp, UnitUsage, UpdateOp } from './charging.types';
import { fundWallet, seedAccount, seedBucket, seedLine, seedPlan, type Line } from './testing/fixtures';
import { verifyBalances } from '../ledger/ledger-verify';
import { adjustBalance, creditWallet, debitWallet } from '../ledger/wallet-operations';
import { DomainError } from '../shared/domain-error';

const MB = 1_000_000n;
const EUR = 1_000_000n; // micros
// The example tariff: home data 0.5 cent/MB rounded up to 100 kB; SMS 5 cents; voice to 49… 10 cents/min 60/1 (peak).

describe('charging engine (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let engine: ChargingEngine;
  let planId: string;
  let postpaidPlanId: string;
  let clock = Date.now();

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 8 });
    engine = createChargingEngine({ pool, clock: () => clock, policy: { validityTimeSec: 60, sweepGraceSec: 0 } });
    planId = await seedPlan(t.db);
    postpaidPlanId = await seedPlan(t.db, { paymentType: 'postpaid' });
  });
  afterAll(async () => {
    await engine.close();
    await pool.end();
    await t.drop();
  });
  beforeEach(() => { clock = Date.now(); });
  afterEach(async () => {
    const report = await verifyBalances(t.db);
    expect(report.problems).toEqual([]);
  });

  let seq = 0;
  const ref = () => `test-${crypto.randomUUID()}`;
  const data = (requested?: bigint | null, used: bigint[] = []): UnitUsage => ({
    ratingGroup: 10, requested, used: used.map((units, i) => ({ units, localSequenceNumber: i + 1 })),
  });
  const create = (line: Line, units: UnitUsage[], extra: Partial<CreateOp> = {}): CreateOp => ({
    kind: 'create', ref: ref(), sequenceNumber: 0, invocationTime: new Date(clock), raw: { test: seq++ }, context: { zone: 'home' },
    units, subscriber: { kind: 'imsi', value: line.imsi }, subscriberIdentifier: `imsi-${line.imsi}`, nfConsumer: 'smf-test', ...extra,
  });
  const update = (r: string, sequenceNumber: number, units: UnitUsage[]): UpdateOp => ({
    kind: 'update', ref: r, sequenceNumber, invocationTime: new Date(clock), raw: { sequenceNumber }, context: {}, units,
  });
  const release = (r: string, sequenceNumber: number, units: UnitUsage[]): ReleaseOp => ({
    kind: 'release', ref: r, sequenceNumber, invocationTime: new Date(clock), raw: { sequenceNumber }, context: {}, units,
  });
  const info = (a: ChargingAnswer, i = 0) => {
    if (a.kind !== 'response') throw new Error(`expected a response, got ${JSON.stringify(a)}`);
    return a.body!.multipleUnitInformation![i];
  };
  const bucket = async (id: string) => {
    const b = await t.db('buckets').where({ ledger_account_id: id }).first();
    return { balance: BigInt(b.balance_units), reserved: BigInt(b.reserved_units) };
  };
  const wallet = async (accountId: string) => {
    const w = await t.db('wallets').where({ billing_account_id: accountId }).first();
    return { balance: BigInt(w.balance_micros), reserved: BigInt(w.reserved_micros) };
  };

  test('consumes buckets by priority, then soonest expiry, never an expired one', async () => {
    const line = await seedLine(t.db, { planId });
    const expired = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 100n * MB, priority: 1, validFrom: new Date(Date.now() - 2 * 86_400_000), validUntil: new Date(Date.now() - 86_400_000) });
    const late = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 5n * MB, priority: 10, validUntil: new Date(Date.now() + 20 * 86_400_000) });
    const soon = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 5n * MB, priority: 10, validUntil: new Date(Date.now() + 2 * 86_400_000) });
    const low = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 50n * MB, priority: 50 });

    const c = create(line, [data(8n * MB)]);
    const a = await engine.charge(c);
    expect(a).toMatchObject({ kind: 'response', httpStatus: 201 });
    expect(info(a)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 8_000_000 }, validityTime: 60 });
    expect(await bucket(soon.id)).toEqual({ balance: 5n * MB, reserved: 5n * MB });
    expect(await bucket(late.id)).toEqual({ balance: 5n * MB, reserved: 3n * MB });

    await engine.charge(update(c.ref, 1, [data(1n * MB, [7n * MB])]));
    expect(await bucket(soon.id)).toEqual({ balance: 0n, reserved: 0n });
    expect(await bucket(late.id)).toEqual({ balance: 3n * MB, reserved: 1n * MB });
    expect(await bucket(low.id)).toEqual({ balance: 50n * MB, reserved: 0n });
    expect(await bucket(expired.id)).toEqual({ balance: 100n * MB, reserved: 0n });

    await engine.charge(release(c.ref, 2, [data(undefined, [4n * MB])]));
    expect(await bucket(late.id)).toEqual({ balance: 0n, reserved: 0n });
    expect(await bucket(low.id)).toEqual({ balance: 49n * MB, reserved: 0n });
    expect(await wallet(line.accountId)).toEqual({ balance: 0n, reserved: 0n });

    const usage = await t.db('rated_usage').where({ charging_data_ref: c.ref }).orderBy('id');
    expect(usage.map((u) => [u.used_units, u.bucket_units, u.amount_micros])).toEqual([['7000000', '7000000', '0'], ['4000000', '4000000', '0']]);
    expect(usage[0]).toMatchObject({ service: 'data', zone: 'home', imsi: line.imsi, msisdn: line.msisdn, rating_group: '10' });
  });

  test('a child account draws from its family parent’s shared pool', async () => {
    const parent = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 0n });
    const pool = await seedBucket(t.db, { accountId: parent, subscriptionId: null, service: 'data', units: 10n * MB });
    const kid = await seedLine(t.db, { planId, parentAccountId: parent });
    const sibling = await seedLine(t.db, { planId, parentAccountId: parent });
    const a = await engine.charge(create(kid, [data(6n * MB)]));
    const b = await engine.charge(create(sibling, [data(6n * MB)]));
    expect(info(a)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 6_000_000 } });
    // The sibling gets what is left of the pool; its prepaid wallet is empty, so this is the last grant.
    expect(info(b)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 4_000_000 }, finalUnitIndication: { finalUnitAction: 'TERMINATE' } });
    expect(await bucket(pool.id)).toEqual({ balance: 10n * MB, reserved: 10n * MB });
  });

  test('prepaid: grants what the wallet affords at the tariff rate, then denies', async () => {
    const line = await seedLine(t.db, { planId });
    const empty = await engine.charge(create(line, [data(MB)]));
    expect(info(empty)).toEqual({ resultCode: 'QUOTA_LIMIT_REACHED', ratingGroup: 10 });

    await fundWallet(t.db, line.accountId, 1n * EUR / 100n); // 1 cent = 2 MB at 0.5 cent/MB
    const c = create(line, [data(5n * MB)]);
    const a = await engine.charge(c);
    expect(info(a)).toMatchObject({ grantedUnit: { totalVolume: 2_000_000 }, finalUnitIndication: { finalUnitAction: 'TERMINATE' } });
    expect(await wallet(line.accountId)).toEqual({ balance: 10_000n, reserved: 10_000n });
    // Usage beyond the grant is charged only as far as the balance goes.
    await engine.charge(release(c.ref, 1, [data(undefined, [3n * MB])]));
    expect(await wallet(line.accountId)).toEqual({ balance: 0n, reserved: 0n });
    const [usage] = await t.db('rated_usage').where({ charging_data_ref: c.ref });
    expect(usage).toMatchObject({ priced_units: '3000000', amount_micros: '10000', uncharged_micros: '5000' });
  });

  test('postpaid: charges down to the credit limit and no further', async () => {
    const line = await seedLine(t.db, { planId: postpaidPlanId, paymentType: 'postpaid', creditLimitMinor: 10n }); // 10 cents
    const c = create(line, [data(100n * MB)]);
    const a = await engine.charge(c);
    expect(info(a)).toMatchObject({ grantedUnit: { totalVolume: 20_000_000 }, finalUnitIndication: { finalUnitAction: 'TERMINATE' } });
    await engine.charge(release(c.ref, 1, [data(undefined, [20n * MB])]));
    expect(await wallet(line.accountId)).toEqual({ balance: -100_000n, reserved: 0n });
    const again = await engine.charge(create(line, [data(MB)]));
    expect(info(again).resultCode).toBe('QUOTA_LIMIT_REACHED');
    await expect(t.db('wallets').where({ billing_account_id: line.accountId }).update({ reserved_micros: 1 })).rejects.toThrow(/wallets_no_overspend_check/);
  });

  test('reservation lifecycle: hold, commit and re-grant, release frees the rest; the journal explains each debit', async () => {
    const line = await seedLine(t.db, { planId });
    await fundWallet(t.db, line.accountId, 1n * EUR);
    const b = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 3n * MB });
    const c = create(line, [data(5n * MB)]);
    expect(info(await engine.charge(c))).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 5_000_000 } });
    // 3 MB held on the bucket, 2 MB priced: 1 cent held on the wallet
    expect(await bucket(b.id)).toEqual({ balance: 3n * MB, reserved: 3n * MB });
    expect(await wallet(line.accountId)).toEqual({ balance: EUR, reserved: 10_000n });

    const u = await engine.charge(update(c.ref, 1, [data(5n * MB, [4n * MB])]));
    expect(info(u)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 5_000_000 } });
    expect(await bucket(b.id)).toEqual({ balance: 0n, reserved: 0n });
    expect(await wallet(line.accountId)).toEqual({ balance: EUR - 5_000n, reserved: 25_000n });

    const r = await engine.charge(release(c.ref, 2, [data(undefined, [150_000n])]));
    expect(r).toEqual({ kind: 'response', httpStatus: 204, ref: c.ref, body: null });
    // 1.15 MB priced in this call so far → rounded up to 1.2 MB → 0.6 cent
    expect(await wallet(line.accountId)).toEqual({ balance: EUR - 6_000n, reserved: 0n });
    const session = await t.db('charging_sessions').where({ charging_data_ref: c.ref }).first();
    expect(session).toMatchObject({ state: 'released', expires_at: null });

    const entries = await t.db('journal_entries').where('source_ref', 'like', `chargingdata/${c.ref}/%`).orderBy('id');
    expect(entries).toHaveLength(2);
    const details = entries[0].details;
    expect(JSON.parse(details.request)).toEqual({ sequenceNumber: 1 });
    expect(details.lines[0]).toMatchObject({ usedUnits: '4000000', fromBuckets: [{ bucket: b.id, units: '3000000' }], fromMoney: { pricedUnits: '1000000', amountMicros: '5000' } });
    expect(details.lines[0]).toMatchObject({ service: 'data', zone: 'home', rating: { priceSource: 'base', currency: 'EUR', matched: { zone: 'home', destinationPrefix: null } } });
    expect(details.balances[b.id]).toMatchObject({ before: '3000000', after: '0' });
    expect(details.balances[line.walletId]).toMatchObject({ before: '1000000', after: '995000' });
  });

  test('the sweeper returns the holds of an abandoned reservation after its validity', async () => {
    const line = await seedLine(t.db, { planId });
    const b = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 10n * MB });
    const c = create(line, [data(4n * MB)]);
    await engine.charge(c);
    expect(await bucket(b.id)).toEqual({ balance: 10n * MB, reserved: 4n * MB });
    const sweeper = startSweeper({ engine, pool, intervalMs: 60_000, clock: () => clock });
    try {
      expect(await sweeper.sweepOnce()).toBe(0); // still valid
      clock += 61_000;
      expect(await sweeper.sweepOnce()).toBeGreaterThanOrEqual(1);
    } finally {
      await sweeper.stop();
    }
    expect(await bucket(b.id)).toEqual({ balance: 10n * MB, reserved: 0n });
    // A late report on the swept session is still charged, from what is free.
    const late = await engine.charge(release(c.ref, 1, [data(undefined, [1n * MB])]));
    expect(late).toMatchObject({ httpStatus: 204 });
    expect(await bucket(b.id)).toEqual({ balance: 9n * MB, reserved: 0n });
  });

  test('retransmitted and out-of-order requests never charge twice', async () => {
    const line = await seedLine(t.db, { planId });
    await fundWallet(t.db, line.accountId, 10n * EUR);
    const c = create(line, [data(10n * MB)]);
    const first = await engine.charge(c);
    expect(await engine.charge({ ...c })).toEqual(first); // retransmitted create
    const u1 = update(c.ref, 1, [data(10n * MB, [1n * MB])]);
    const u2 = update(c.ref, 2, [data(10n * MB, [2n * MB])]);
    const u3 = update(c.ref, 3, [data(10n * MB, [4n * MB])]);
    const a1 = await engine.charge(u1);
    const a3 = await engine.charge(u3); // u2 is late
    const a2 = await engine.charge(u2);
    expect(info(a2)).toEqual({ resultCode: 'SUCCESS', ratingGroup: 10 }); // charged, grant unchanged
    // retransmissions, some concurrent, some in the same batch
    const again = await Promise.all([engine.charge(u1), engine.charge(u3), engine.charge(u2), engine.charge(u3)]);
    expect(again).toEqual([a1, a3, a2, a3]);
    const rel = release(c.ref, 4, [data(undefined, [8n * MB])]);
    await Promise.all([engine.charge(rel), engine.charge(rel)]);
    await engine.charge(rel);
    const used = await t.db('rated_usage').where({ charging_data_ref: c.ref }).sum({ s: 'used_units' }).first();
    expect(BigInt(used!.s)).toBe(15n * MB);
    // 15 MB at 0.5 cent/MB, one call: 7.5 cents
    expect(await wallet(line.accountId)).toEqual({ balance: 10n * EUR - 75_000n, reserved: 0n });
    expect(await t.db('charging_requests').where({ charging_data_ref: c.ref }).count({ n: '*' }).first()).toEqual({ n: '5' });
  });

  test('SMS is charged immediately as a one-time event, idempotently; a line that is not active is refused', async () => {
    const line = await seedLine(t.db, { planId });
    await fundWallet(t.db, line.accountId, 12n * EUR / 100n); // 12 cents: two SMS at 5 cents
    const sms = (): CreateOp => create(line, [{ ratingGroup: 30, requested: 1n, used: [] }], { oneTimeEvent: 'IEC', context: { zone: 'home', destination: '491701234567' } });
    const first = sms();
    const a = await engine.charge(first);
    expect(info(a)).toEqual({ resultCode: 'SUCCESS', ratingGroup: 30, grantedUnit: { serviceSpecificUnits: 1 } });
    expect(await engine.charge(first)).toEqual(a);
    expect(info(await engine.charge(sms())).resultCode).toBe('SUCCESS');
    expect(info(await engine.charge(sms())).resultCode).toBe('QUOTA_LIMIT_REACHED');
    expect(await wallet(line.accountId)).toEqual({ balance: 20_000n, reserved: 0n });
    expect(await t.db('charging_sessions').where({ subscriber_id: line.subscriberId }).count({ n: '*' }).first()).toEqual({ n: '0' });

    const suspended = await seedLine(t.db, { planId, state: 'suspended' });
    expect(await engine.charge(create(suspended, [data(MB)]))).toMatchObject({ kind: 'problem', problem: { status: 403, cause: 'END_USER_REQUEST_DENIED' } });
    const pending = await seedLine(t.db, { planId, state: 'pending' });
    expect(await engine.charge(create(pending, [data(MB)]))).toMatchObject({ kind: 'problem', problem: { status: 403, cause: 'END_USER_REQUEST_DENIED' } });
    const terminated = await seedLine(t.db, { planId, state: 'terminated' });
    expect(await engine.charge(create(terminated, [data(MB)]))).toMatchObject({ kind: 'problem', problem: { status: 404, cause: 'USER_UNKNOWN' } });
    expect(await engine.charge({ ...create(line, [data(MB)]), subscriber: { kind: 'msisdn', value: '4900000000001' } })).toMatchObject({ kind: 'problem', problem: { status: 404, cause: 'USER_UNKNOWN' } });
    expect(await engine.charge(update('no-such-ref', 1, [data(MB)]))).toMatchObject({ kind: 'problem', problem: { status: 404, cause: 'CONTEXT_NOT_FOUND' } });
    // A rating group the policy does not map, or a zone the tariff does not rate
    const odd = await engine.charge(create(line, [{ ratingGroup: 99, requested: 1n, used: [] }, data(MB)], { context: { zone: 'mars' } }));
    expect(odd).toMatchObject({ kind: 'response', body: { multipleUnitInformation: [{ ratingGroup: 99, resultCode: 'RATING_FAILED' }, { ratingGroup: 10, resultCode: 'RATING_FAILED' }] } });
  });

  test('crossing 50/80/100 % of a bucket and a low wallet write balance events with the charge', async () => {
    const line = await seedLine(t.db, { planId });
    await fundWallet(t.db, line.accountId, 3n * EUR);
    const b = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 10n * MB });
    const c = create(line, [data(10n * MB)]);
    await engine.charge(c);
    await engine.charge(update(c.ref, 1, [data(10n * MB, [4n * MB])]));
    expect(await t.db('balance_events').where({ ledger_account_id: b.id })).toHaveLength(0);
    await engine.charge(update(c.ref, 2, [data(10n * MB, [5n * MB])])); // 90 %: crosses 50 and 80
    await engine.charge(release(c.ref, 3, [data(undefined, [1n * MB])])); // 100 %
    const events = await t.db('balance_events').where({ ledger_account_id: b.id }).orderBy('id');
    expect(events.map((e) => e.threshold_percent)).toEqual([50, 80, 100]);
    expect(events[0]).toMatchObject({ event_type: 'bucket_threshold', billing_account_id: line.accountId, subscriber_id: line.subscriberId });
    expect(events[0].journal_entry_id).not.toBeNull();
    await debitWallet(engine, { billingAccountId: line.accountId, amountMicros: 2n * EUR, idempotencyKey: `fee-${c.ref}`, actor: 'billing-run' });
    const low = await t.db('balance_events').where({ billing_account_id: line.accountId, event_type: 'wallet_low' });
    expect(low).toHaveLength(1);
    expect(low[0].payload).toMatchObject({ balanceMicros: '1000000' });
  });

  test('wallet credits, debits and adjustments go through the engine, once per key', async () => {
    const line = await seedLine(t.db, { planId });
    const key = crypto.randomUUID();
    const a = await creditWallet(engine, { billingAccountId: line.accountId, amountMicros: 5n * EUR, idempotencyKey: `topup-${key}`, actor: 'workflow:top-up' });
    expect(a).toMatchObject({ status: 'applied', balanceMicros: 5n * EUR });
    expect(a.journalEntryId).toMatch(/^\d+$/);
    const b = await creditWallet(engine, { billingAccountId: line.accountId, amountMicros: 5n * EUR, idempotencyKey: `topup-${key}`, actor: 'workflow:top-up' });
    expect(b).toMatchObject({ status: 'duplicate', journalEntryId: a.journalEntryId, balanceMicros: 5n * EUR });
    await expect(debitWallet(engine, { billingAccountId: line.accountId, amountMicros: 6n * EUR, idempotencyKey: `fee-${key}`, actor: 'billing-run' })).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await expect(adjustBalance(engine, { billingAccountId: line.accountId, amountMicros: -EUR, reason: ' ', actor: 'support:1', idempotencyKey: key })).rejects.toBeInstanceOf(DomainError);
    const adj = await adjustBalance(engine, { billingAccountId: line.accountId, amountMicros: -EUR, reason: 'goodwill reversal', actor: 'support:1', idempotencyKey: key });
    expect(adj.balanceMicros).toBe(4n * EUR);
    const entry = await t.db('journal_entries').where({ id: adj.journalEntryId }).first();
    expect(entry).toMatchObject({ entry_type: 'adjustment', reason: 'goodwill reversal', actor: 'support:1' });
  });

  test('a retry of a wallet operation in the same batch as the first call gets the same journal entry', async () => {
    const line = await seedLine(t.db, { planId });
    const key = `topup-${crypto.randomUUID()}`;
    const op = { billingAccountId: line.accountId, amountMicros: 3n * EUR, idempotencyKey: key, actor: 'workflow:top-up' };
    // Sent together, the two calls are decided in one batch.
    const [a, b] = await Promise.all([creditWallet(engine, op), creditWallet(engine, op)]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual(['applied', 'duplicate']);
    expect(a.journalEntryId).toMatch(/^\d+$/);
    expect(b.journalEntryId).toBe(a.journalEntryId);
    expect(await t.db('journal_entries').where({ idempotency_key: key }).count<{ count: string }[]>('* as count')).toEqual([{ count: '1' }]);
  });

  test('many concurrent reservations on one small wallet and one shared pool never overspend', async () => {
    const parent = await seedAccount(t.db, { paymentType: 'postpaid' });
    const shared = await seedBucket(t.db, { accountId: parent, subscriptionId: null, service: 'data', units: 30n * MB });
    const kids = await Promise.all(Array.from({ length: 6 }, () => seedLine(t.db, { planId, parentAccountId: parent })));
    for (const k of kids) await fundWallet(t.db, k.accountId, 2n * EUR / 100n); // 2 cents = 4 MB each
    const small = await seedLine(t.db, { planId });
    await fundWallet(t.db, small.accountId, 5n * EUR / 100n);
    const lines = [...kids, small];
    const rnd = (n: number) => crypto.randomInt(n);
    // 40 sessions, each: create, 1–3 updates with usage (sometimes beyond its grant), release; all interleaved.
    await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const line = lines[i % lines.length];
      const c = create(line, [data(BigInt(1 + rnd(6)) * MB)]);
      const a = await engine.charge(c);
      let granted = a.kind === 'response' ? BigInt(a.body?.multipleUnitInformation?.[0]?.grantedUnit?.totalVolume ?? 0) : 0n;
      const updates = 1 + rnd(3);
      for (let s = 1; s <= updates; s++) {
        const used = (granted * BigInt(50 + rnd(70))) / 100n;
        const u = await engine.charge(update(c.ref, s, [data(BigInt(1 + rnd(6)) * MB, [used])]));
        granted = u.kind === 'response' ? BigInt(u.body?.multipleUnitInformation?.[0]?.grantedUnit?.totalVolume ?? 0) : 0n;
      }
      await engine.charge(release(c.ref, updates + 1, [data(undefined, [granted / 2n])]));
    }));
    const report = await verifyBalances(t.db);
    expect(report.overspend).toEqual({ bucketUnits: 0n, walletMicros: 0n });
    expect(report.problems).toEqual([]);
    const consumed = await t.db('postings').where({ ledger_account_id: shared.id }).sum({ s: 'amount' }).first();
    expect(BigInt(consumed!.s)).toBeGreaterThanOrEqual(0n);
    expect((await bucket(shared.id)).reserved).toBe(0n);
  });
});

describe('charging engine: connection state', () => {
  test('a connection that lost its prepared statements (a pooler’s DISCARD ALL) prepares them again', async () => {
    const t = await createTestDatabase();
    const pool = new Pool({ connectionString: t.url, max: 1 });
    const engine = createChargingEngine({ pool, cache: false });
    try {
      const planId = await seedPlan(t.db);
      const line = await seedLine(t.db, { planId });
      await fundWallet(t.db, line.accountId, 1_000_000n);
      const sms = (n: number): CreateOp => ({
        kind: 'create', ref: `prep-${n}-${crypto.randomUUID()}`, sequenceNumber: 0, invocationTime: new Date(), raw: {}, oneTimeEvent: 'IEC',
        context: { zone: 'home', destination: '491701234567' }, units: [{ ratingGroup: 30, requested: 1n, used: [] }],
        subscriber: { kind: 'imsi', value: line.imsi }, subscriberIdentifier: `imsi-${line.imsi}`,
      });
      expect(await engine.charge(sms(1))).toMatchObject({ kind: 'response', httpStatus: 201 });
      await pool.query('DEALLOCATE ALL');
      expect(await engine.charge(sms(2))).toMatchObject({ kind: 'response', httpStatus: 201 });
      expect(await engine.charge(sms(3))).toMatchObject({ kind: 'response', httpStatus: 201 });
      const w = await t.db('wallets').where({ billing_account_id: line.accountId }).first();
      expect(BigInt(w.balance_micros)).toBe(1_000_000n - 3n * 50_000n);
    } finally {
      await engine.close();
      await pool.end();
      await t.drop();
    }
  });
});
