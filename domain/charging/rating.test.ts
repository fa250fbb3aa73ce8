import fc from 'fast-check';
import {
  billableUnits,
  microsToMinorUnits,
  minorUnitsToMicros,
  priceOf,
  rateFromDecision,
  rateUsage,
  selectRate,
  unitsAffordable,
  type Rate,
  type RatedUsage,
  type Usage,
} from './rating';
import { PREPAID_EXAMPLE_TARIFF } from './tariff.example';
import { parseTariff, type Promotion, type Service, type Tariff } from './tariff.types';

const T: Tariff = parseTariff(PREPAID_EXAMPLE_TARIFF);
const CENT = 10_000n;
// 2025-03-05 is a Wednesday; the example tariff is UTC+01:00, so 10:00Z = 11:00 local (peak).
const PEAK = new Date('2025-03-05T10:00:00Z');

const rate = (price: bigint, per: bigint, initial = 1n, subsequent = 1n): Rate => ({
  priceMicros: price,
  perUnits: per,
  initialIncrement: initial,
  subsequentIncrement: subsequent,
});

function rated(r: RatedUsage) {
  if (r.status !== 'rated') throw new Error(`expected rated, got ${r.reason}`);
  return r;
}

const usage = (u: Partial<Usage> & { service: Service; units: bigint }): Usage => ({ zone: 'home', startedAt: PEAK, ...u });

describe('tariff validation', () => {
  test('the example tariff is valid and JSON round-trips unchanged', () => {
    expect(parseTariff(JSON.parse(JSON.stringify(PREPAID_EXAMPLE_TARIFF)))).toEqual(PREPAID_EXAMPLE_TARIFF);
  });

  const base = { schemaVersion: 1, currency: 'EUR', utcOffsetMinutes: 0 };
  const sms = { service: 'sms', zone: 'home', priceMicros: '1', perUnits: '1' };
  test.each([
    ['money as a JSON number', { ...base, rates: [{ ...sms, priceMicros: 50000 }] }],
    ['fractional money', { ...base, rates: [{ ...sms, priceMicros: '0.5' }] }],
    ['perUnits zero', { ...base, rates: [{ ...sms, perUnits: '0' }] }],
    ['zero increment', { ...base, rates: [{ ...sms, increments: { initial: '0', subsequent: '1' } }] }],
    ['duplicate entry', { ...base, rates: [sms, { ...sms, priceMicros: '2' }] }],
    ['data with a prefix', { ...base, rates: [{ ...sms, service: 'data', destinationPrefix: '44' }] }],
    ['unknown band', { ...base, rates: [{ ...sms, bandPrices: { night: '0' } }] }],
    ['empty band window', { ...base, rates: [], timeBands: [{ id: 'x', from: '08:00', to: '08:00' }] }],
    ['prefix with +', { ...base, rates: [{ ...sms, destinationPrefix: '+44' }] }],
    [
      'promotion ending before it starts',
      { ...base, rates: [], promotions: [{ id: 'p', service: 'sms', zone: 'home', priceMicros: '0', validFrom: '2025-02-01T00:00:00Z', validTo: '2025-01-01T00:00:00Z' }] },
    ],
    ['unknown field', { ...base, rates: [{ ...sms, price: '1' }] }],
  ])('rejects %s', (_name, json) => {
    expect(() => parseTariff(json)).toThrow();
  });
});

describe('increments', () => {
  test.each([
    // scheme, initial, subsequent, used, billable
    ['60/60', 60n, 60n, 0n, 0n],
    ['60/60', 60n, 60n, 1n, 60n],
    ['60/60', 60n, 60n, 60n, 60n],
    ['60/60', 60n, 60n, 61n, 120n],
    ['60/60', 60n, 60n, 121n, 180n],
    ['60/1', 60n, 1n, 1n, 60n],
    ['60/1', 60n, 1n, 59n, 60n],
    ['60/1', 60n, 1n, 61n, 61n],
    ['1/1', 1n, 1n, 0n, 0n],
    ['1/1', 1n, 1n, 61n, 61n],
    ['30/6', 30n, 6n, 31n, 36n],
    ['30/6', 30n, 6n, 36n, 36n],
    ['30/6', 30n, 6n, 37n, 42n],
    ['data 100 kB', 100_000n, 100_000n, 1n, 100_000n],
    ['data 100 kB', 100_000n, 100_000n, 100_000n, 100_000n],
    ['data 100 kB', 100_000n, 100_000n, 100_001n, 200_000n],
    ['data 1 KiB', 1024n, 1024n, 1025n, 2048n],
  ])('%s: %p/%p, %p used → %p billable', (_s, initial, subsequent, used, expected) => {
    expect(billableUnits(rate(1n, 1n, initial, subsequent), used)).toBe(expected);
  });

  test('negative usage is a programming error', () => {
    expect(() => billableUnits(rate(1n, 1n), -1n)).toThrow(RangeError);
    expect(() => rateUsage(T, usage({ service: 'sms', units: -1n }))).toThrow(RangeError);
  });
});

describe('money inside rating rounds up to the next micro', () => {
  test.each([
    ['exact', rate(5000n, 1_000_000n), 1_000_000n, 5000n],
    ['1 micro per 3 units, 1 unit', rate(1n, 3n), 1n, 1n],
    ['1 micro per 3 units, 3 units', rate(1n, 3n), 3n, 1n],
    ['1 micro per 3 units, 4 units', rate(1n, 3n), 4n, 2n],
    ['10 c/min for 61 s', rate(100_000n, 60n), 61n, 101_667n], // 101,666.67 → 101,667
    ['0.5 c per KiB, 1000 bytes', rate(5000n, 1024n), 1000n, 4883n], // 4,882.8 → 4,883
    ['free', rate(0n, 60n), 600n, 0n],
  ])('%s', (_n, r, billable, micros) => {
    expect(priceOf(r, billable)).toBe(micros);
  });
});

describe('rateUsage with the example tariff', () => {
  test.each([
    // name, usage, billable units, amount (micros)
    ['home data 1 byte → 100 kB', usage({ service: 'data', units: 1n }), 100_000n, 500n],
    ['home data 1.5 MB', usage({ service: 'data', units: 1_500_000n }), 1_500_000n, 7_500n],
    ['home data 1.5 MB + 1 byte', usage({ service: 'data', units: 1_500_001n }), 1_600_000n, 8_000n],
    ['national voice 61 s (60/1)', usage({ service: 'voice', units: 61n, destination: '+4930123456' }), 61n, 101_667n],
    ['national voice 30 s (60/1)', usage({ service: 'voice', units: 30n, destination: '4930123456' }), 60n, 10n * CENT],
    ['SMS', usage({ service: 'sms', units: 1n, destination: '+447700900123' }), 1n, 5n * CENT],
    ['SMS without destination (catch-all)', usage({ service: 'sms', units: 2n }), 2n, 10n * CENT],
    ['roam-eu data 1 MB', usage({ service: 'data', zone: 'roam-eu', units: 1_000_000n }), 1_000_000n, 1n * CENT],
    ['roam-eu data 1 byte → 1 kB', usage({ service: 'data', zone: 'roam-eu', units: 1n }), 1000n, 10n],
    ['roam-eu voice to anywhere', usage({ service: 'voice', zone: 'roam-eu', units: 60n, destination: '33612345678' }), 60n, 10n * CENT],
    ['zero data', usage({ service: 'data', units: 0n }), 0n, 0n],
    ['zero-second call', usage({ service: 'voice', units: 0n, destination: '4930123456' }), 0n, 0n],
    // 10^24 bytes (a yottabyte): far past 2^64, exact
    ['very large volume', usage({ service: 'data', units: 10n ** 24n }), 10n ** 24n, 5n * 10n ** 21n],
    ['very large volume + 1', usage({ service: 'data', units: 10n ** 24n + 1n }), 10n ** 24n + 100_000n, 5n * 10n ** 21n + 500n],
  ])('%s', (_n, u, billable, amount) => {
    const r = rated(rateUsage(T, u));
    expect(r.billableUnits).toBe(billable);
    expect(r.amountMicros).toBe(amount);
  });
});

describe('zones and destinations', () => {
  test.each([
    // longest prefix wins: 44 vs 447 vs 4479
    ['442071234567', '44', 20n],
    ['+447700900123', '447', 30n],
    ['447911123456', '4479', 35n],
    ['4479', '4479', 35n],
    ['12125550100', '1', 15n],
    ['4930123456', '49', 10n],
  ])('voice to %s matches prefix %s at %p c/min', (destination, prefix, cents) => {
    const r = rated(rateUsage(T, usage({ service: 'voice', units: 60n, destination })));
    expect(r.decision.matched).toEqual({ zone: 'home', destinationPrefix: prefix });
    expect(r.amountMicros).toBe(cents * CENT);
  });

  test.each([
    ['unknown roaming zone', usage({ service: 'data', zone: 'roam-world', units: 1n }), 'NO_RATE_FOR_ZONE'],
    ['unknown zone for voice', usage({ service: 'voice', zone: 'mars', units: 1n, destination: '4930' }), 'NO_RATE_FOR_ZONE'],
    ['unlisted international destination', usage({ service: 'voice', units: 60n, destination: '33612345678' }), 'NO_RATE_FOR_DESTINATION'],
    ['voice without a destination and no catch-all', usage({ service: 'voice', units: 60n }), 'NO_RATE_FOR_DESTINATION'],
    ['destination that is not E.164', usage({ service: 'voice', units: 60n, destination: '+44 20 7123' }), 'INVALID_DESTINATION'],
    ['destination too long', usage({ service: 'sms', units: 1n, destination: '4'.repeat(16) }), 'INVALID_DESTINATION'],
  ])('%s → no tariff', (_n, u, reason) => {
    const r = rateUsage(T, u);
    expect(r).toMatchObject({ status: 'noTariff', reason });
    expect(selectRate(T, u)).toEqual(r);
  });

  test('a destination on data usage is ignored', () => {
    const r = rated(rateUsage(T, usage({ service: 'data', units: 1n, destination: 'not-a-number' })));
    expect(r.decision.destination).toBeNull();
  });
});

describe('time bands (tariff at UTC+01:00; band off-peak Mon–Fri 20:00–08:00, weekend Sat–Sun)', () => {
  const call = (iso: string) => rated(rateUsage(T, usage({ service: 'voice', units: 60n, destination: '4930123456', startedAt: new Date(iso) })));
  test.each([
    // UTC instant, local time, band, cents for one minute
    ['2025-03-05T18:59:59Z', 'Wed 19:59:59', null, 10n],
    ['2025-03-05T19:00:00Z', 'Wed 20:00', 'off-peak', 5n],
    ['2025-03-05T22:59:00Z', 'Wed 23:59', 'off-peak', 5n],
    ['2025-03-05T23:00:00Z', 'Thu 00:00 (after midnight)', 'off-peak', 5n],
    ['2025-03-06T06:59:59Z', 'Thu 07:59:59', 'off-peak', 5n],
    ['2025-03-06T07:00:00Z', 'Thu 08:00', null, 10n],
    ['2025-03-07T23:00:00Z', 'Sat 00:00: weekend, not Friday night off-peak', 'weekend', 4n],
    ['2025-03-09T23:00:00Z', 'Mon 00:00', 'off-peak', 5n],
    ['2025-03-08T12:00:00Z', 'Sat 13:00', 'weekend', 4n],
  ])('%s (%s) → %s', (iso, _local, band, cents) => {
    const r = call(iso);
    expect(r.decision.timeBand?.id ?? null).toBe(band);
    expect(r.decision.priceSource).toBe(band ? 'timeBand' : 'base');
    expect(r.amountMicros).toBe(cents * CENT);
  });

  test('the whole call is rated at its start time', () => {
    const r = rated(rateUsage(T, usage({ service: 'voice', units: 3600n, destination: '4930', startedAt: new Date('2025-03-05T18:59:00Z') })));
    expect(r.amountMicros).toBe(60n * 10n * CENT);
  });

  test('local day comes from the offset: UTC−05:00, Thu 03:00Z is Wed 22:00 local', () => {
    const t: Tariff = parseTariff({
      schemaVersion: 1,
      currency: 'USD',
      utcOffsetMinutes: -300,
      timeBands: [{ id: 'wed-night', days: [3], from: '21:00', to: '06:00' }],
      rates: [{ service: 'sms', zone: 'home', priceMicros: '100', perUnits: '1', bandPrices: { 'wed-night': '1' } }],
    });
    const at = (iso: string) => rated(rateUsage(t, { service: 'sms', zone: 'home', units: 1n, startedAt: new Date(iso) }));
    expect(at('2025-03-06T03:00:00Z').amountMicros).toBe(1n);
    expect(at('2025-03-06T03:00:00Z').decision.localStart).toBe('2025-03-05T22:00:00-05:00');
    expect(at('2025-03-06T06:00:00Z').amountMicros).toBe(100n); // Thu 01:00 local: not Wednesday
  });
});

describe('promotions', () => {
  const roamData = (iso: string) => rated(rateUsage(T, usage({ service: 'data', zone: 'roam-eu', units: 1_000_000n, startedAt: new Date(iso) })));
  test.each([
    ['2025-05-31T23:59:59.999Z', 'before the window', null, 1n * CENT],
    ['2025-06-01T00:00:00Z', 'at validFrom (inclusive)', 'summer-roam-eu-data', 0n],
    ['2025-08-31T23:59:59.999Z', 'last instant', 'summer-roam-eu-data', 0n],
    ['2025-09-01T00:00:00Z', 'at validTo (exclusive)', null, 1n * CENT],
  ])('%s (%s)', (iso, _n, promo, amount) => {
    const r = roamData(iso);
    expect(r.decision.promotion?.id ?? null).toBe(promo);
    expect(r.amountMicros).toBe(amount);
  });

  test('promotion in another zone does not apply', () => {
    const r = rated(rateUsage(T, usage({ service: 'data', units: 1_000_000n, startedAt: new Date('2025-07-01T00:00:00Z') })));
    expect(r.decision.promotion).toBeNull();
    expect(r.amountMicros).toBe(5000n);
  });

  const window = { validFrom: '2025-01-01T00:00:00Z', validTo: '2026-01-01T00:00:00Z' };
  const withPromos = (promotions: Promotion[]): Tariff => parseTariff({ ...PREPAID_EXAMPLE_TARIFF, promotions });
  const nationalCall = (t: Tariff, iso = '2025-03-05T10:00:00Z') =>
    rated(rateUsage(t, usage({ service: 'voice', units: 60n, destination: '4930123456', startedAt: new Date(iso) })));

  const cases: [string, Promotion[], string, string | null, bigint][] = [
    ['cheapest of several wins', [
      { id: 'a', service: 'voice', zone: 'home', priceMicros: '60000', ...window },
      { id: 'b', service: 'voice', zone: 'home', priceMicros: '20000', ...window },
      { id: 'c', service: 'voice', zone: 'home', destinationPrefix: '49', priceMicros: '30000', ...window },
    ], '2025-03-05T10:00:00Z', 'b', 20_000n],
    ['prefix-scoped promotion applies only to its destinations', [
      { id: 'uk', service: 'voice', zone: 'home', destinationPrefix: '44', priceMicros: '0', ...window },
    ], '2025-03-05T10:00:00Z', null, 100_000n],
    ['never raises the price', [
      { id: 'dear', service: 'voice', zone: 'home', priceMicros: '200000', ...window },
    ], '2025-03-05T10:00:00Z', null, 100_000n],
    ['beats a time band when cheaper', [
      { id: 'p', service: 'voice', zone: 'home', priceMicros: '30000', ...window },
    ], '2025-03-05T21:00:00Z', 'p', 30_000n],
    ['loses to a cheaper time band', [
      { id: 'p', service: 'voice', zone: 'home', priceMicros: '70000', ...window },
    ], '2025-03-05T21:00:00Z', null, 50_000n],
  ];
  test.each(cases)('%s', (_n, promotions, iso, promo, amount) => {
    const r = nationalCall(withPromos(promotions), iso);
    expect(r.decision.promotion?.id ?? null).toBe(promo);
    expect(r.amountMicros).toBe(amount);
  });
});

describe('decision', () => {
  test('is JSON-serialisable, records why, and rebuilds the rate', () => {
    const sel = selectRate(T, { service: 'voice', zone: 'home', destination: '+447911123456', startedAt: PEAK });
    if (sel.status !== 'selected') throw new Error('expected a rate');
    expect(JSON.parse(JSON.stringify(sel.decision))).toEqual(sel.decision);
    expect(sel.decision).toEqual({
      service: 'voice',
      currency: 'EUR',
      zone: 'home',
      destination: '447911123456',
      matched: { zone: 'home', destinationPrefix: '4479' },
      localStart: '2025-03-05T11:00:00+01:00',
      basePriceMicros: '350000',
      timeBand: null,
      promotion: null,
      priceSource: 'base',
      rate: { priceMicros: '350000', perUnits: '60', initialIncrement: '60', subsequentIncrement: '60' },
    });
    expect(rateFromDecision(sel.decision)).toEqual(sel.rate);
  });

  test('invalid startedAt is a programming error', () => {
    expect(() => selectRate(T, { service: 'sms', zone: 'home', startedAt: new Date('nope') })).toThrow(RangeError);
  });
});

describe('unitsAffordable', () => {
  const voice60by1 = rate(100_000n, 60n, 60n, 1n); // 10 c/min, 60/1
  const voice60by60 = rate(100_000n, 60n, 60n, 60n);
  const data100k = rate(5_000n, 1_000_000n, 100_000n, 100_000n); // 500 micros per 100 kB
  test.each([
    ['60/1, exactly the first minute', voice60by1, 100_000n, 60n],
    ['60/1, one micro short of the first minute', voice60by1, 99_999n, 0n],
    ['60/1, one micro short of 61 s (101,667)', voice60by1, 101_666n, 60n],
    ['60/1, exactly 61 s', voice60by1, 101_667n, 61n],
    ['60/1, 1 €', voice60by1, 1_000_000n, 600n],
    ['60/60, just short of 2 min', voice60by60, 199_999n, 60n],
    ['60/60, exactly 2 min', voice60by60, 200_000n, 120n],
    ['data, 499 micros', data100k, 499n, 0n],
    ['data, 500 micros', data100k, 500n, 100_000n],
    ['data, 999 micros', data100k, 999n, 100_000n],
    ['data, 1000 micros', data100k, 1000n, 200_000n],
    ['nothing available', voice60by1, 0n, 0n],
    ['negative balance', voice60by1, -5n, 0n],
    ['huge balance, no overflow', data100k, 10n ** 30n, 2n * 10n ** 32n],
    ['free rate', rate(0n, 1n), 0n, 'unlimited'],
  ])('%s', (_n, r, available, expected) => {
    expect(unitsAffordable(r, available)).toBe(expected);
  });
});

describe('microsToMinorUnits / minorUnitsToMicros', () => {
  test.each([
    // micros, exponent, minor units: half away from zero, symmetric
    [5_000n, 2, 1n],
    [4_999n, 2, 0n],
    [14_999n, 2, 1n],
    [15_000n, 2, 2n],
    [-5_000n, 2, -1n],
    [-4_999n, 2, 0n],
    [-15_000n, 2, -2n],
    [0n, 2, 0n],
    [500_000n, 0, 1n], // JPY-like
    [499_999n, 0, 0n],
    [500n, 3, 1n], // BHD/KWD-like
    [1_234_567n, 6, 1_234_567n],
    [10n ** 30n + 5_000n, 2, 10n ** 26n + 1n],
  ])('%p micros at exponent %p → %p', (micros, exp, minor) => {
    expect(microsToMinorUnits(micros, exp)).toBe(minor);
  });

  test.each([
    [1n, 2, 10_000n],
    [-3n, 2, -30_000n],
    [1n, 0, 1_000_000n],
    [1n, 3, 1_000n],
  ])('%p minor units at exponent %p → %p micros', (minor, exp, micros) => {
    expect(minorUnitsToMicros(minor, exp)).toBe(micros);
    expect(microsToMinorUnits(micros, exp)).toBe(minor);
  });

  test.each([-1, 7, 2.5])('exponent %p is refused', (exp) => {
    expect(() => microsToMinorUnits(1n, exp)).toThrow(RangeError);
    expect(() => minorUnitsToMicros(1n, exp)).toThrow(RangeError);
  });
});

describe('properties', () => {
  const arbRate = fc.record({
    priceMicros: fc.bigInt({ min: 0n, max: 10n ** 9n }),
    perUnits: fc.bigInt({ min: 1n, max: 10n ** 9n }),
    initialIncrement: fc.bigInt({ min: 1n, max: 10n ** 6n }),
    subsequentIncrement: fc.bigInt({ min: 1n, max: 10n ** 6n }),
  });
  const service = fc.constantFrom<Service>('data', 'voice', 'sms');
  const tariffOf = (s: Service, r: Rate): Tariff =>
    parseTariff({
      schemaVersion: 1,
      currency: 'EUR',
      utcOffsetMinutes: 0,
      rates: [{
        service: s, zone: 'home', priceMicros: String(r.priceMicros), perUnits: String(r.perUnits),
        increments: { initial: String(r.initialIncrement), subsequent: String(r.subsequentIncrement) },
      }],
    });
  const rate1 = (t: Tariff, s: Service, units: bigint) => rated(rateUsage(t, { service: s, zone: 'home', units, startedAt: PEAK }));

  test('rating what unitsAffordable grants never exceeds the money, and one more step would', () => {
    fc.assert(
      fc.property(service, arbRate, fc.bigInt({ min: 0n, max: 10n ** 15n }), (s, r, m) => {
        const u = unitsAffordable(r, m);
        if (u === 'unlimited') return r.priceMicros === 0n;
        const t = tariffOf(s, r);
        const got = rate1(t, s, u);
        expect(got.amountMicros).toBeLessThanOrEqual(m);
        expect(got.billableUnits).toBe(u); // the grant is on the increment grid
        const next = u === 0n ? r.initialIncrement : u + r.subsequentIncrement;
        expect(rate1(t, s, next).amountMicros).toBeGreaterThan(m); // and it is the most
        return true;
      }),
    );
  });

  test('rating is monotonic in volume and rounds up by less than one increment', () => {
    fc.assert(
      fc.property(service, arbRate, fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.bigInt({ min: 0n, max: 10n ** 12n }), (s, r, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const t = tariffOf(s, r);
        const x = rate1(t, s, lo);
        const y = rate1(t, s, hi);
        expect(x.amountMicros).toBeLessThanOrEqual(y.amountMicros);
        expect(x.billableUnits).toBeLessThanOrEqual(y.billableUnits);
        expect(y.billableUnits).toBeGreaterThanOrEqual(hi);
        const step = r.initialIncrement > r.subsequentIncrement ? r.initialIncrement : r.subsequentIncrement;
        expect(y.billableUnits - hi).toBeLessThan(step);
      }),
    );
  });
});
