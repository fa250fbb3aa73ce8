/** Proration of a plan change in the middle of a cycle. Pure: no I/O.
 *
 * Rule: the unused part of the old plan's fee is credited and the remaining part of the new plan's
 * fee is charged, each as `fee × remaining / period`, computed in milliseconds and rounded half up
 * to the currency's minor unit once per component. The customer sees both lines; the net is what
 * moves in the wallet. A change at the very start of the cycle credits/charges the whole fee; at its
 * end, nothing. */
export interface ProrationInput {
  oldFeeMinor: bigint;
  newFeeMinor: bigint;
  periodStart: Date;
  periodEnd: Date;
  at: Date;
}

export interface Proration {
  /** Remaining share of the period, as remainingMs / periodMs. */
  remainingMs: bigint;
  periodMs: bigint;
  creditMinor: bigint;
  chargeMinor: bigint;
  /** chargeMinor - creditMinor: positive = the customer pays, negative = the customer gets money back. */
  netMinor: bigint;
}

function share(fee: bigint, remaining: bigint, period: bigint): bigint {
  // half up: (2·fee·remaining + period) / (2·period)
  return (2n * fee * remaining + period) / (2n * period);
}

export function prorate(input: ProrationInput): Proration {
  const start = BigInt(input.periodStart.getTime());
  const end = BigInt(input.periodEnd.getTime());
  if (end <= start) throw new Error('period end must be after its start');
  if (input.oldFeeMinor < 0n || input.newFeeMinor < 0n) throw new Error('fees are not negative');
  let at = BigInt(input.at.getTime());
  if (at < start) at = start;
  if (at > end) at = end;
  const periodMs = end - start;
  const remainingMs = end - at;
  const creditMinor = share(input.oldFeeMinor, remainingMs, periodMs);
  const chargeMinor = share(input.newFeeMinor, remainingMs, periodMs);
  return { remainingMs, periodMs, creditMinor, chargeMinor, netMinor: chargeMinor - creditMinor };
}
