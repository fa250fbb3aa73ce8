import fc from 'fast-check';
import { prorate } from './proration';

const d = (s: string) => new Date(s);

describe('prorate', () => {
  const period = { periodStart: d('2026-11-01T00:00:00Z'), periodEnd: d('2026-12-01T00:00:00Z') };

  test('half way through a 30-day cycle: half the old fee back, half the new fee charged', () => {
    const p = prorate({ ...period, oldFeeMinor: 1000n, newFeeMinor: 3000n, at: d('2026-11-16T00:00:00Z') });
    expect(p).toMatchObject({ creditMinor: 500n, chargeMinor: 1500n, netMinor: 1000n });
  });

  test('a downgrade gives money back', () => {
    const p = prorate({ ...period, oldFeeMinor: 3000n, newFeeMinor: 1000n, at: d('2026-11-16T00:00:00Z') });
    expect(p.netMinor).toBe(-1000n);
  });

  test('at the start the whole fee, at the end nothing; outside the period is clamped', () => {
    expect(prorate({ ...period, oldFeeMinor: 999n, newFeeMinor: 1999n, at: d('2026-10-01T00:00:00Z') }).netMinor).toBe(1000n);
    expect(prorate({ ...period, oldFeeMinor: 999n, newFeeMinor: 1999n, at: d('2026-12-05T00:00:00Z') }).netMinor).toBe(0n);
  });

  test('rounds half up per component', () => {
    // 1 cent over 3 equal parts, 2/3 remaining → 0.667 → 1
    const p = prorate({ oldFeeMinor: 0n, newFeeMinor: 1n, periodStart: d('2026-01-01T00:00:00Z'), periodEnd: d('2026-01-01T00:00:03Z'), at: d('2026-01-01T00:00:01Z') });
    expect(p.chargeMinor).toBe(1n);
  });

  test('never more than the fees, never negative components', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 9n }), fc.bigInt({ min: 0n, max: 10n ** 9n }), fc.integer({ min: 0, max: 30 * 86_400_000 }), (a, b, off) => {
      const p = prorate({ ...period, oldFeeMinor: a, newFeeMinor: b, at: new Date(period.periodStart.getTime() + off) });
      return p.creditMinor >= 0n && p.creditMinor <= a && p.chargeMinor >= 0n && p.chargeMinor <= b && p.netMinor === p.chargeMinor - p.creditMinor;
    }));
  });
});
