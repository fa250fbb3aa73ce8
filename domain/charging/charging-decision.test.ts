import fc from 'fast-check';
import { decideBatch, type BatchInput } from './charging-decision';
import { DEFAULT_POLICY } from './charging-policy';
import { PREPAID_EXAMPLE_TARIFF } from './tariff.example';
import { parseTariff } from './tariff.types';
import type { BucketState, ChargingOp, CreateOp, SessionState, SubscriberInfo, UpdateOp, WalletState } from './charging.types';

const NOW = Date.parse('2025-03-05T10:00:00Z'); // Wednesday 11:00 local: peak
const MB = 1_000_000n;
const tariff = parseTariff(PREPAID_EXAMPLE_TARIFF);
const SYSTEM = new Map([
  ['allowance_usage:bytes', '1'], ['allowance_usage:seconds', '2'], ['allowance_usage:messages', '3'],
  ['revenue:EUR', '10'], ['adjustments:EUR', '11'], ['gateway_cash:EUR', '12'], ['receivables:EUR', '13'], ['discounts:EUR', '14'],
]);

const sub = (over: Partial<SubscriberInfo> = {}): SubscriberInfo => ({
  id: 'sub-1', msisdn: '491510000001', imsi: '262010000000001', state: 'active', billingAccountId: 'acct-1', parentAccountId: null,
  paymentType: 'prepaid', currency: 'EUR', subscriptionId: 'subscription-1', planId: 'plan-1', ...over,
});
const bucket = (id: string, over: Partial<BucketState> = {}): BucketState => ({
  id, billingAccountId: 'acct-1', subscriptionId: 'subscription-1', service: 'data', unit: 'bytes', initial: 10n * MB, balance: 10n * MB,
  reserved: 0n, priority: 100, validFrom: NOW - 86_400_000, validUntil: NOW + 86_400_000, ...over,
});
const wallet = (over: Partial<WalletState> = {}): WalletState => ({
  id: '500', billingAccountId: 'acct-1', currency: 'EUR', balance: 0n, reserved: 0n, creditLimit: 0n, ...over,
});

function input(ops: ChargingOp[], over: Partial<BatchInput> = {}): BatchInput {
  return {
    now: NOW, ops, sessions: new Map(), subscribers: [sub()], buckets: [], wallets: [wallet()], tariffs: new Map([['plan-1', tariff]]),
    priorAnswers: new Map(), priorWalletEntries: new Map(), systemAccounts: SYSTEM, policy: DEFAULT_POLICY, ...over,
  };
}

const create = (ref: string, ratingGroup: number, requested: bigint | undefined, extra: Partial<CreateOp> = {}): CreateOp => ({
  kind: 'create', ref, sequenceNumber: 0, invocationTime: new Date(NOW), raw: {}, context: { zone: 'home' },
  units: [{ ratingGroup, requested, used: [] }], subscriber: { kind: 'imsi', value: '262010000000001' }, subscriberIdentifier: 'imsi-262010000000001', ...extra,
});
const update = (ref: string, seq: number, ratingGroup: number, used: bigint, requested?: bigint, kind: 'update' | 'release' = 'update'): UpdateOp =>
  ({ kind, ref, sequenceNumber: seq, invocationTime: new Date(NOW), raw: {}, context: {}, units: [{ ratingGroup, requested, used: [{ units: used }] }] }) as UpdateOp;

const mui = (out: ReturnType<typeof decideBatch>, i = 0) => {
  const r = out.results[i];
  if (r.kind !== 'response') throw new Error(JSON.stringify(r));
  return r.body?.multipleUnitInformation?.[0];
};

describe('charging decisions (pure)', () => {
  test('grants from buckets in priority then expiry order, then from money, holding both', () => {
    const out = decideBatch(input([create('r1', 10, 25n * MB)], {
      buckets: [bucket('b-late', { priority: 1, validUntil: NOW + 9e6 }), bucket('b-soon', { priority: 1, validUntil: NOW + 1e6 }), bucket('b-low', { priority: 5 })],
      wallets: [wallet({ balance: 10_000n })], // 1 cent: 2 MB
    }));
    expect(mui(out)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 25_000_000 } });
    const session = out.sessions[0];
    expect(session.reservations[0].holds.map((h) => [h.account, h.amount])).toEqual([['b-soon', 10n * MB], ['b-late', 10n * MB], ['b-low', 5n * MB]]);
    const out2 = decideBatch(input([create('r1', 10, 35n * MB)], { buckets: [bucket('b1'), bucket('b2')], wallets: [wallet({ balance: 10_000n })] }));
    expect(mui(out2)).toMatchObject({ grantedUnit: { totalVolume: 22_000_000 }, finalUnitIndication: { finalUnitAction: 'TERMINATE' } });
    expect(out2.walletDeltas).toEqual([{ id: '500', balance: 0n, reserved: 10_000n }]);
    expect(out2.entries).toEqual([]); // holding is not spending
  });

  test('never consumes an expired or not-yet-valid bucket; prepaid ignores a credit limit', () => {
    const out = decideBatch(input([create('r1', 10, MB)], {
      buckets: [bucket('old', { validUntil: NOW }), bucket('future', { validFrom: NOW + 1 })],
      wallets: [wallet({ creditLimit: 1_000_000n })],
    }));
    expect(mui(out)).toEqual({ resultCode: 'QUOTA_LIMIT_REACHED', ratingGroup: 10 });
    const post = decideBatch(input([create('r1', 10, MB)], { subscribers: [sub({ paymentType: 'postpaid' })], wallets: [wallet({ creditLimit: 1_000_000n })] }));
    expect(mui(post)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { totalVolume: 1_000_000 } });
  });

  test('voice 60/1 is priced per call across reports, not per report', () => {
    const session: SessionState = {
      ref: 'call', subscriberId: 'sub-1', billingAccountId: 'acct-1', subscriberIdentifier: 'x', msisdn: null, imsi: null, nfConsumer: null,
      state: 'open', lastSequenceNumber: 0, createdAt: NOW, releasedAt: null, reservations: [],
    };
    let state = input([create('call', 20, 120n, { context: { zone: 'home', destination: '4930123456' } })], { wallets: [wallet({ balance: 1_000_000n })] });
    let out = decideBatch(state);
    expect(mui(out)).toMatchObject({ grantedUnit: { time: 120 } });
    const wallets = (o: typeof out, w: WalletState) => ({ ...w, balance: w.balance + (o.walletDeltas[0]?.balance ?? 0n), reserved: w.reserved + (o.walletDeltas[0]?.reserved ?? 0n) });
    let w = wallets(out, state.wallets[0]);
    // 20 s, then 20 s, then 30 s: one 70 s call at 10 cents/min 60/1 = 70/60 × 10 cents = 11.67 → 116,667 micros
    for (const [seq, used, kind] of [[1, 20n, 'update'], [2, 20n, 'update'], [3, 30n, 'release']] as const) {
      state = { ...state, ops: [update('call', seq, 20, used, kind === 'update' ? 60n : undefined, kind)], sessions: new Map([['call', out.sessions[0] ?? session]]), wallets: [w] };
      out = decideBatch(state);
      w = wallets(out, w);
    }
    expect(w.balance).toBe(1_000_000n - 116_667n);
    expect(w.reserved).toBe(0n);
  });

  test('usage is charged at the granted rate even when the tariff changes mid-session, and the journal says so', () => {
    const first = decideBatch(input([create('s1', 10, 10n * MB)], { wallets: [wallet({ balance: 1_000_000n })] }));
    const session = first.sessions[0];
    const w = wallet({ balance: 1_000_000n, reserved: first.walletDeltas[0].reserved });
    const dearer = parseTariff({ ...PREPAID_EXAMPLE_TARIFF, rates: PREPAID_EXAMPLE_TARIFF.rates.map((r) => (r.service === 'data' && r.zone === 'home' ? { ...r, priceMicros: '50000' } : r)) });
    const same = decideBatch(input([update('s1', 1, 10, 2n * MB)], { sessions: new Map([['s1', session]]), wallets: [w] }));
    const changed = decideBatch(input([update('s1', 1, 10, 2n * MB)], { sessions: new Map([['s1', session]]), wallets: [w], tariffs: new Map([['plan-1', dearer]]) }));
    // 2 MB at the granted 0.5 cent/MB = 1 cent, in both cases
    expect(same.walletDeltas[0].balance).toBe(-10_000n);
    expect(changed.walletDeltas[0].balance).toBe(-10_000n);
    const line = (o: typeof same) => (o.entries[0].details.lines as { rating: Record<string, unknown> }[])[0].rating;
    expect(line(same)).toMatchObject({ priceSource: 'base', basePriceMicros: '5000', matched: { zone: 'home' } });
    expect(line(changed)).toEqual({ rate: { priceMicros: '5000', perUnits: '1000000', initialIncrement: '100000', subsequentIncrement: '100000' }, note: expect.stringMatching(/tariff changed/) });
  });

  test('money buckets pay before the wallet', () => {
    const out = decideBatch(input([{ ...create('sms', 30, 1n, { oneTimeEvent: 'IEC' }) }], {
      buckets: [bucket('bonus', { service: 'money', unit: 'EUR', initial: 30_000n, balance: 30_000n })], wallets: [wallet({ balance: 1_000_000n })],
    }));
    expect(mui(out)).toMatchObject({ resultCode: 'SUCCESS', grantedUnit: { serviceSpecificUnits: 1 } });
    expect(out.bucketDeltas).toEqual([{ id: 'bonus', balance: -50_000n + 20_000n, reserved: 0n }]);
    expect(out.walletDeltas).toEqual([{ id: '500', balance: -20_000n, reserved: 0n }]);
    const postings = out.entries[0].postings.map((p) => [p.account, p.amount]);
    expect(postings).toEqual(expect.arrayContaining([['bonus', -30_000n], ['500', -20_000n], ['10', 50_000n]]));
  });

  test('a retransmission in the same batch gets the first answer and charges once', () => {
    const op = create('e1', 30, 1n, { oneTimeEvent: 'IEC' });
    const out = decideBatch(input([op, { ...op }], { wallets: [wallet({ balance: 1_000_000n })] }));
    expect(out.results[1]).toEqual(out.results[0]);
    expect(out.entries).toHaveLength(1);
    expect(out.requests).toHaveLength(1);
  });

  test('property: whatever the operations, balances stay within limits and every entry balances', () => {
    const opArb = fc.oneof(
      fc.record({ k: fc.constant('create' as const), s: fc.integer({ min: 0, max: 3 }), rg: fc.constantFrom(10, 20, 30), q: fc.bigInt({ min: 0n, max: 30n * MB }) }),
      fc.record({ k: fc.constant('update' as const), s: fc.integer({ min: 0, max: 3 }), rg: fc.constantFrom(10, 20), used: fc.bigInt({ min: 0n, max: 40n * MB }), q: fc.option(fc.bigInt({ min: 0n, max: 30n * MB })) }),
      fc.record({ k: fc.constant('release' as const), s: fc.integer({ min: 0, max: 3 }), rg: fc.constantFrom(10, 20), used: fc.bigInt({ min: 0n, max: 40n * MB }) }),
    );
    fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.bigInt({ min: 0n, max: 200_000n }), fc.boolean(), (specs, money, postpaid) => {
      const seqs = [1, 1, 1, 1];
      const ops: ChargingOp[] = specs.map((s) => {
        if (s.k === 'create') return create(`r${s.s}`, s.rg, s.q, { context: { zone: 'home', destination: '4930123' } });
        return update(`r${s.s}`, seqs[s.s]++, s.rg, s.used, s.k === 'update' ? (s.q ?? undefined) : undefined, s.k);
      });
      const w = wallet({ balance: money, creditLimit: 50_000n });
      const pool = bucket('pool', { subscriptionId: null, initial: 20n * MB, balance: 20n * MB });
      const own = bucket('own', { initial: 5n * MB, balance: 5n * MB });
      const out = decideBatch(input(ops, { buckets: [pool, own], wallets: [w], subscribers: [sub({ paymentType: postpaid ? 'postpaid' : 'prepaid' })] }));
      const floor = postpaid ? -50_000n : 0n;
      const wd = out.walletDeltas[0] ?? { balance: 0n, reserved: 0n };
      expect(w.balance + wd.balance - (w.reserved + wd.reserved)).toBeGreaterThanOrEqual(floor);
      expect(w.reserved + wd.reserved).toBeGreaterThanOrEqual(0n);
      for (const b of [pool, own]) {
        const d = out.bucketDeltas.find((x) => x.id === b.id) ?? { balance: 0n, reserved: 0n };
        expect(b.balance + d.balance - (b.reserved + d.reserved)).toBeGreaterThanOrEqual(0n);
        expect(b.reserved + d.reserved).toBeGreaterThanOrEqual(0n);
      }
      for (const e of out.entries) {
        const sums = new Map<string, bigint>();
        for (const p of e.postings) sums.set(p.unit, (sums.get(p.unit) ?? 0n) + p.amount);
        for (const v of sums.values()) expect(v).toBe(0n);
      }
      // Reserved equals what the sessions hold.
      let held = 0n;
      for (const s of out.sessions) for (const r of s.reservations) for (const h of r.holds) if (h.kind === 'wallet') held += h.amount;
      expect(w.reserved + wd.reserved).toBe(held);
    }), { numRuns: 300 });
  });
});
