/** Billing period arithmetic, pure. Months keep the anchor's day of month, clamped to the last day
 * of shorter months (an anchor on the 31st bills on Feb 28/29, then on Mar 31 again). */
export type BillingPeriodUnit = 'day' | 'week' | 'month';

export function addBillingPeriods(anchor: Date, unit: BillingPeriodUnit, count: number, periods = 1): Date {
  const n = count * periods;
  if (unit === 'day') return new Date(anchor.getTime() + n * 86_400_000);
  if (unit === 'week') return new Date(anchor.getTime() + n * 7 * 86_400_000);
  const year = anchor.getUTCFullYear();
  const month = anchor.getUTCMonth() + n;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(anchor.getUTCDate(), lastDay);
  return new Date(Date.UTC(year, month, day, anchor.getUTCHours(), anchor.getUTCMinutes(), anchor.getUTCSeconds(), anchor.getUTCMilliseconds()));
}

/** The period [start, end) that contains `at`, counting whole periods from the anchor. */
export function periodContaining(anchor: Date, unit: BillingPeriodUnit, count: number, at: Date): { start: Date; end: Date; index: number } {
  let index = 0;
  let start = anchor;
  let end = addBillingPeriods(anchor, unit, count, 1);
  while (end <= at) {
    index++;
    start = end;
    end = addBillingPeriods(anchor, unit, count, index + 1);
  }
  return { start, end, index };
}

export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}
