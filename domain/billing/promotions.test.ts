import { priceCycle } from './promotions';
import { prorate, roundHalfAwayFromZero } from './proration';

describe('promotions', () => {
  it('discounts a percentage for N cycles, then charges the full fee', () => {
    const offer = { kind: 'discount_percent' as const, cycles: 3, terms: { percent: 25 } };
    expect(priceCycle(999n, 1, offer)).toMatchObject({ discountMinor: 250n, amountMinor: 749n });
    expect(priceCycle(999n, 3, offer).amountMinor).toBe(749n);
    expect(priceCycle(999n, 4, offer)).toMatchObject({ discountMinor: 0n, amountMinor: 999n });
  });
  it('never discounts a fixed amount below zero', () => {
    expect(priceCycle(500n, 1, { kind: 'discount_fixed', cycles: null, terms: { amountMinor: 800 } }).amountMinor).toBe(0n);
    expect(priceCycle(500n, 9, { kind: 'discount_fixed', cycles: null, terms: { amountMinor: 200 } }).amountMinor).toBe(300n);
  });
  it('free trial: waived for N cycles, then converts or lapses', () => {
    const converts = { kind: 'free_trial' as const, cycles: 2, terms: {} };
    const lapses = { kind: 'free_trial' as const, cycles: 2, terms: { convert: false } };
    expect(priceCycle(1500n, 2, converts).amountMinor).toBe(0n);
    expect(priceCycle(1500n, 3, converts)).toMatchObject({ amountMinor: 1500n, lapse: false });
    expect(priceCycle(1500n, 3, lapses)).toMatchObject({ amountMinor: 0n, lapse: true });
  });
  it('bonus allowance for N cycles', () => {
    const offer = { kind: 'bonus_allowance' as const, cycles: 2, terms: { service: 'data' as const, units: '1000' } };
    expect(priceCycle(100n, 2, offer).bonus).toEqual({ service: 'data', units: 1000n });
    expect(priceCycle(100n, 3, offer).bonus).toBeNull();
  });
});

describe('proration', () => {
  const start = new Date('2026-01-01T00:00:00Z');
  const end = new Date('2026-01-31T00:00:00Z');
  it('credits the unused old fee and charges the rest of the new one', () => {
    const p = prorate({ periodStart: start, periodEnd: end, changeAt: new Date('2026-01-16T00:00:00Z'), oldFeeMinor: 1000n, newFeeMinor: 3000n });
    expect(p).toEqual({ remainingPpm: 500000n, creditMinor: 500n, chargeMinor: 1500n, netMinor: 1000n });
  });
  it('clamps changes outside the period', () => {
    expect(prorate({ periodStart: start, periodEnd: end, changeAt: new Date('2025-12-01'), oldFeeMinor: 10n, newFeeMinor: 20n }).netMinor).toBe(10n);
    expect(prorate({ periodStart: start, periodEnd: end, changeAt: new Date('2026-03-01'), oldFeeMinor: 10n, newFeeMinor: 20n }).netMinor).toBe(0n);
  });
  it('rounds half away from zero', () => {
    expect(roundHalfAwayFromZero(5n, 2n)).toBe(3n);
    expect(roundHalfAwayFromZero(-5n, 2n)).toBe(-3n);
    expect(roundHalfAwayFromZero(4n, 3n)).toBe(1n);
  });
});
