/**
 * Proration for a plan change in the middle of a billing period, pure. The customer gets back the
 * unused part of the old plan's fee and pays the remaining part of the new plan's fee, both by the
 * fraction of the period's time that is left. Amounts are integer minor units; the one rounding rule
 * at the point of billing is half away from zero (domain/ledger/money.ts), applied once per amount.
 */
export interface ProrationInput {
  periodStart: Date;
  periodEnd: Date;
  changeAt: Date;
  oldFeeMinor: bigint;
  newFeeMinor: bigint;
}

export interface Proration {
  /** Parts per million of the period still to run after the change. */
  remainingPpm: bigint;
  /** Unused part of the old fee, given back (≥ 0). */
  creditMinor: bigint;
  /** Remaining part of the new fee, charged (≥ 0). */
  chargeMinor: bigint;
  /** charge − credit: > 0 the customer pays, < 0 the customer is credited. */
  netMinor: bigint;
}

export function roundHalfAwayFromZero(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const sign = numerator < 0n ? -1n : 1n;
  const abs = numerator * sign;
  return sign * ((abs * 2n + denominator) / (2n * denominator));
}

/** Whole seconds are the unit of time; a change at or before the start is a full period, at or after the end nothing. */
export function prorate(input: ProrationInput): Proration {
  const start = BigInt(Math.floor(input.periodStart.getTime() / 1000));
  const end = BigInt(Math.floor(input.periodEnd.getTime() / 1000));
  if (end <= start) throw new RangeError('the period must end after it starts');
  if (input.oldFeeMinor < 0n || input.newFeeMinor < 0n) throw new RangeError('fees must not be negative');
  let at = BigInt(Math.floor(input.changeAt.getTime() / 1000));
  if (at < start) at = start;
  if (at > end) at = end;
  const total = end - start;
  const left = end - at;
  const creditMinor = roundHalfAwayFromZero(input.oldFeeMinor * left, total);
  const chargeMinor = roundHalfAwayFromZero(input.newFeeMinor * left, total);
  return { remainingPpm: roundHalfAwayFromZero(left * 1_000_000n, total), creditMinor, chargeMinor, netMinor: chargeMinor - creditMinor };
}
