/**
 * The rating engine: pure functions, no I/O, no clock, no floating point.
 *
 * Rounding rules (the only ones):
 *  - Units: a usage > 0 is rounded UP to the rate's increment grid (initial, then subsequent
 *    steps); a zero usage is 0 billable units (an unanswered call or an empty data report
 *    costs nothing).
 *  - Money inside rating: billable units × price is rounded UP to the next micro, so rating
 *    never undercharges by truncation. Amounts stay in micros until billing.
 *  - Money at billing (`microsToMinorUnits`): round half away from zero, symmetric for
 *    negatives so that a refund is exactly the negation of its charge.
 *
 * Time: the whole usage is rated at the rate in force at its START (no splitting a call at a
 * band boundary); the charging engine rates each reported slice separately if it wants that.
 */
import type { Promotion, RateEntry, Service, Tariff, TimeBand } from './tariff.types';

/** A rate ready for arithmetic: price of `perUnits` units, increments in units. */
export interface Rate {
  priceMicros: bigint;
  perUnits: bigint;
  initialIncrement: bigint;
  subsequentIncrement: bigint;
}

export interface UsageContext {
  service: Service;
  /** Where the usage happened: 'home', 'roam-eu', … */
  zone: string;
  /** Called number for voice/SMS, E.164 with or without '+'; ignored for data. */
  destination?: string;
  startedAt: Date;
}

export interface Usage extends UsageContext {
  /** Bytes (data), seconds (voice), messages (SMS). */
  units: bigint;
}

/** Why this price: what the ledger stores for audit. JSON-safe (bigints as strings). */
export interface RatingDecision {
  service: Service;
  currency: string;
  zone: string;
  /** Destination digits as rated (no '+'), null for data or when none was given. */
  destination: string | null;
  /** The rate table entry that matched; prefix null = the zone's catch-all. */
  matched: { zone: string; destinationPrefix: string | null };
  /** Usage start in the tariff's local time, e.g. "2025-03-07T21:15:00+01:00". */
  localStart: string;
  basePriceMicros: string;
  timeBand: { id: string; priceMicros: string } | null;
  promotion: { id: string; priceMicros: string } | null;
  /** Which price was applied. */
  priceSource: 'base' | 'timeBand' | 'promotion';
  /** The effective rate (applied price), as strings. */
  rate: { priceMicros: string; perUnits: string; initialIncrement: string; subsequentIncrement: string };
}

export type NoTariffReason = 'NO_RATE_FOR_ZONE' | 'NO_RATE_FOR_DESTINATION' | 'INVALID_DESTINATION';

/** The tariff does not price this usage: a business outcome (deny / route to default), not a fault. */
export interface NoTariff {
  status: 'noTariff';
  reason: NoTariffReason;
  message: string;
}

export type RateSelection = { status: 'selected'; rate: Rate; decision: RatingDecision } | NoTariff;

export type RatedUsage =
  | { status: 'rated'; billableUnits: bigint; amountMicros: bigint; decision: RatingDecision }
  | NoTariff;

// ---- selection -----------------------------------------------------------------------------

/**
 * Chooses the rate for a usage: the entry for (service, zone) whose destination prefix is the
 * longest match (no prefix = catch-all, length 0); then the cheapest matching time band price
 * replaces the base price; then the cheapest promotion in its validity window replaces that,
 * if cheaper. Ties keep tariff order.
 */
export function selectRate(tariff: Tariff, usage: UsageContext): RateSelection {
  const at = usage.startedAt.getTime();
  if (Number.isNaN(at)) throw new RangeError('startedAt is not a valid date');

  let destination: string | null = null;
  if (usage.service !== 'data' && usage.destination !== undefined) {
    const m = /^\+?(\d{1,15})$/.exec(usage.destination);
    if (!m) return noTariff('INVALID_DESTINATION', `destination ${JSON.stringify(usage.destination)} is not E.164 digits`);
    destination = m[1];
  }

  const inZone = tariff.rates.filter((r) => r.service === usage.service && r.zone === usage.zone);
  if (inZone.length === 0) return noTariff('NO_RATE_FOR_ZONE', `no ${usage.service} rate for zone ${usage.zone}`);

  let entry: RateEntry | undefined;
  for (const r of inZone) {
    const p = r.destinationPrefix ?? '';
    if (!startsWith(destination, p)) continue;
    if (!entry || p.length > (entry.destinationPrefix ?? '').length) entry = r;
  }
  if (!entry) {
    return noTariff('NO_RATE_FOR_DESTINATION', `no ${usage.service} rate in zone ${usage.zone} for destination ${destination ?? '(none)'}`);
  }

  const local = new Date(at + tariff.utcOffsetMinutes * 60_000); // read with getUTC* = local wall clock
  const base = BigInt(entry.priceMicros);
  let price = base;
  let priceSource: RatingDecision['priceSource'] = 'base';

  let timeBand: RatingDecision['timeBand'] = null;
  for (const band of tariff.timeBands ?? []) {
    const bandPrice = entry.bandPrices?.[band.id];
    if (bandPrice === undefined || !inBand(band, local)) continue;
    if (timeBand === null || BigInt(bandPrice) < BigInt(timeBand.priceMicros)) timeBand = { id: band.id, priceMicros: bandPrice };
  }
  if (timeBand) {
    price = BigInt(timeBand.priceMicros);
    priceSource = 'timeBand';
  }

  let promotion: RatingDecision['promotion'] = null;
  for (const p of tariff.promotions ?? []) {
    if (!promotionApplies(p, usage, destination, at)) continue;
    if (promotion === null || BigInt(p.priceMicros) < BigInt(promotion.priceMicros)) promotion = { id: p.id, priceMicros: p.priceMicros };
  }
  if (promotion && BigInt(promotion.priceMicros) < price) {
    price = BigInt(promotion.priceMicros);
    priceSource = 'promotion';
  } else {
    promotion = null; // record only what was applied
  }

  const rate: Rate = {
    priceMicros: price,
    perUnits: BigInt(entry.perUnits),
    initialIncrement: BigInt(entry.increments?.initial ?? '1'),
    subsequentIncrement: BigInt(entry.increments?.subsequent ?? '1'),
  };
  const decision: RatingDecision = {
    service: usage.service,
    currency: tariff.currency,
    zone: usage.zone,
    destination,
    matched: { zone: entry.zone, destinationPrefix: entry.destinationPrefix ?? null },
    localStart: localIso(local, tariff.utcOffsetMinutes),
    basePriceMicros: base.toString(),
    timeBand,
    promotion,
    priceSource,
    rate: {
      priceMicros: rate.priceMicros.toString(),
      perUnits: rate.perUnits.toString(),
      initialIncrement: rate.initialIncrement.toString(),
      subsequentIncrement: rate.subsequentIncrement.toString(),
    },
  };
  return { status: 'selected', rate, decision };
}

/** Rebuilds the rate from a stored decision, e.g. to rate a session's final usage at its reservation's rate. */
export function rateFromDecision(decision: RatingDecision): Rate {
  return {
    priceMicros: BigInt(decision.rate.priceMicros),
    perUnits: BigInt(decision.rate.perUnits),
    initialIncrement: BigInt(decision.rate.initialIncrement),
    subsequentIncrement: BigInt(decision.rate.subsequentIncrement),
  };
}

// ---- arithmetic ----------------------------------------------------------------------------

/** Usage rounded up to the increment grid: 0, initial, initial + k·subsequent. */
export function billableUnits(rate: Rate, units: bigint): bigint {
  if (units < 0n) throw new RangeError('units must be >= 0');
  if (units === 0n) return 0n;
  if (units <= rate.initialIncrement) return rate.initialIncrement;
  return rate.initialIncrement + ceilDiv(units - rate.initialIncrement, rate.subsequentIncrement) * rate.subsequentIncrement;
}

/** Price of already-billable units, rounded UP to the next micro. */
export function priceOf(rate: Rate, billable: bigint): bigint {
  return ceilDiv(billable * rate.priceMicros, rate.perUnits);
}

/** Rates a completed usage. */
export function rateUsage(tariff: Tariff, usage: Usage): RatedUsage {
  if (usage.units < 0n) throw new RangeError('units must be >= 0');
  const sel = selectRate(tariff, usage);
  if (sel.status !== 'selected') return sel;
  const billable = billableUnits(sel.rate, usage.units);
  return { status: 'rated', billableUnits: billable, amountMicros: priceOf(sel.rate, billable), decision: sel.decision };
}

/**
 * The most units on the increment grid whose price fits in `availableMicros` — what a
 * reservation from a monetary wallet may grant. 'unlimited' when the rate is free.
 * Exact: price(u) = ceil(u·p / per) <= m  ⇔  u·p <= m·per  ⇔  u <= floor(m·per / p).
 */
export function unitsAffordable(rate: Rate, availableMicros: bigint): bigint | 'unlimited' {
  if (rate.priceMicros === 0n) return 'unlimited';
  if (availableMicros <= 0n) return 0n;
  const max = (availableMicros * rate.perUnits) / rate.priceMicros;
  if (max < rate.initialIncrement) return 0n;
  return rate.initialIncrement + ((max - rate.initialIncrement) / rate.subsequentIncrement) * rate.subsequentIncrement;
}

// ---- money at the point of billing ----------------------------------------------------------

const MICROS_EXPONENT = 6;

/**
 * Micros → minor units (cents for exponent 2, yen for 0, fils for 3). Rounds half away from
 * zero: 5,000 micros = 0.5 cent → 1 cent, −5,000 → −1 cent, 4,999 → 0.
 */
export function microsToMinorUnits(micros: bigint, currencyExponent: number): bigint {
  const step = microsPerMinorUnit(currencyExponent);
  const abs = micros < 0n ? -micros : micros;
  const rounded = (abs + step / 2n) / step; // step is even (or 1), so step/2 is exact half
  return micros < 0n ? -rounded : rounded;
}

/** Minor units → micros (exact). */
export function minorUnitsToMicros(minor: bigint, currencyExponent: number): bigint {
  return minor * microsPerMinorUnit(currencyExponent);
}

function microsPerMinorUnit(exponent: number): bigint {
  if (!Number.isInteger(exponent) || exponent < 0 || exponent > MICROS_EXPONENT) {
    throw new RangeError(`currency exponent must be an integer 0..${MICROS_EXPONENT}`);
  }
  return 10n ** BigInt(MICROS_EXPONENT - exponent);
}

// ---- helpers -------------------------------------------------------------------------------

function ceilDiv(a: bigint, b: bigint): bigint {
  // a >= 0, b > 0 here
  return (a + b - 1n) / b;
}

function startsWith(destination: string | null, prefix: string): boolean {
  return prefix === '' || (destination !== null && destination.startsWith(prefix));
}

function noTariff(reason: NoTariffReason, message: string): NoTariff {
  return { status: 'noTariff', reason, message };
}

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function inBand(band: TimeBand, local: Date): boolean {
  const isoDay = local.getUTCDay() === 0 ? 7 : local.getUTCDay();
  if (band.days && !band.days.includes(isoDay)) return false;
  const t = local.getUTCHours() * 60 + local.getUTCMinutes();
  const from = minutesOf(band.from);
  const to = minutesOf(band.to);
  return from < to ? t >= from && t < to : t >= from || t < to; // from > to: crosses midnight
}

function promotionApplies(p: Promotion, usage: UsageContext, destination: string | null, at: number): boolean {
  return (
    p.service === usage.service &&
    p.zone === usage.zone &&
    startsWith(destination, p.destinationPrefix ?? '') &&
    Date.parse(p.validFrom) <= at &&
    at < Date.parse(p.validTo)
  );
}

function localIso(local: Date, offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${local.toISOString().slice(0, 19)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
