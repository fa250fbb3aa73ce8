import { addBillingPeriods, periodContaining, isoDate } from './billing-period';

describe('billing periods', () => {
  test.each([
    ['2026-01-31T00:00:00Z', 'month', 1, 1, '2026-02-28'],
    ['2026-01-31T00:00:00Z', 'month', 1, 2, '2026-03-31'],
    ['2028-01-31T00:00:00Z', 'month', 1, 1, '2028-02-29'],
    ['2026-11-15T00:00:00Z', 'month', 1, 2, '2027-01-15'],
    ['2026-11-15T00:00:00Z', 'week', 1, 1, '2026-11-22'],
    ['2026-11-15T00:00:00Z', 'day', 30, 1, '2026-12-15'],
  ] as const)('%s + %s x%d (%d periods) = %s', (anchor, unit, count, periods, expected) => {
    expect(isoDate(addBillingPeriods(new Date(anchor), unit, count, periods))).toBe(expected);
  });

  test('finds the period containing an instant', () => {
    const p = periodContaining(new Date('2026-01-31T00:00:00Z'), 'month', 1, new Date('2026-03-05T00:00:00Z'));
    expect(isoDate(p.start)).toBe('2026-02-28');
    expect(isoDate(p.end)).toBe('2026-03-31');
    expect(p.index).toBe(1);
  });
});
