/**
 * The tariff model: plain JSON, stored per plan in a PostgreSQL jsonb column.
 *
 * Number encoding (one rule): every amount of MONEY or USAGE UNITS is a string of decimal
 * digits ("5000", "1000000"), because the rating code works in bigint and jsonb numbers
 * would silently lose precision past 2^53. Calendar and clock settings (offset minutes,
 * weekdays, "HH:MM") are plain JSON numbers/strings, which are always small.
 *
 * Units: money in micro-units of `currency` (1 micro = 1/1,000,000 major unit, 1 cent =
 * 10,000 micros); data in bytes; voice in seconds; SMS in messages.
 *
 * Rating functions expect a tariff that went through `parseTariff` (they do not re-check it).
 */
import { z } from 'zod';

export type Service = 'data' | 'voice' | 'sms';
export const SERVICES = ['data', 'voice', 'sms'] as const;

/** Non-negative integer as decimal digits, no sign, no leading zeros. */
export type DecimalString = string;

/**
 * One line of the rate table: the price of `service` used in `zone`, optionally narrowed to
 * called numbers starting with `destinationPrefix` (voice/SMS only, E.164 digits, no '+').
 * An entry without a prefix is the zone's catch-all for any destination; leave it out when
 * unlisted destinations must be refused ("no tariff"). The most specific (longest) prefix wins.
 */
export interface RateEntry {
  service: Service;
  /** Where the usage happens: 'home', or a roaming zone such as 'roam-eu'. */
  zone: string;
  destinationPrefix?: string;
  /** Price, in micros, of `perUnits` units: 0.5 cent/MB = { priceMicros: "5000", perUnits: "1000000" }. */
  priceMicros: DecimalString;
  perUnits: DecimalString;
  /**
   * Usage is rounded UP to these steps before pricing: first step `initial`, then steps of
   * `subsequent`. Voice 60/1 = { initial: "60", subsequent: "1" }; data rounded to 100 kB =
   * { initial: "100000", subsequent: "100000" }. Default 1/1 (no rounding).
   */
  increments?: { initial: DecimalString; subsequent: DecimalString };
  /** Price (micros per `perUnits`) while a named time band applies: { "off-peak": "50000" }. */
  bandPrices?: Record<string, DecimalString>;
}

/**
 * A local time window, evaluated in the tariff's UTC offset on the usage's START time.
 * A usage is in the band when its local ISO weekday (1 = Monday … 7 = Sunday) is in `days`
 * and its local time of day t satisfies from <= t < to, or, when the window crosses midnight
 * (from > to, e.g. 20:00–08:00), t >= from OR t < to. Days refer to the usage's own local day,
 * so Mon–Fri 20:00–08:00 does not cover Saturday 02:00.
 */
export interface TimeBand {
  id: string;
  /** Omitted = every day. */
  days?: number[];
  /** "HH:MM"; `to` may be "24:00". */
  from: string;
  to: string;
}

/**
 * A time-limited price for a service in a zone (optionally only for destinations starting
 * with `destinationPrefix`). Applies when validFrom <= usage start < validTo. It replaces the
 * price only; units, increments and the need for a base rate entry stay. Promotions are
 * discounts: the cheapest matching one applies, and only if it is below the price it replaces.
 */
export interface Promotion {
  id: string;
  service: Service;
  zone: string;
  destinationPrefix?: string;
  /** Micros per `perUnits` of the rate entry it applies to. */
  priceMicros: DecimalString;
  /** ISO 8601 instants with a zone designator: "2025-06-01T00:00:00Z". */
  validFrom: string;
  validTo: string;
}

export interface Tariff {
  schemaVersion: 1;
  /** ISO 4217 code of every price in this tariff. */
  currency: string;
  /** Fixed offset used for time bands (e.g. 60 for UTC+01:00). DST changes mean a new tariff version. */
  utcOffsetMinutes: number;
  rates: RateEntry[];
  timeBands?: TimeBand[];
  promotions?: Promotion[];
}

// ---- validation ----------------------------------------------------------------------------

const digits = z.string().regex(/^(0|[1-9]\d{0,29})$/, 'a non-negative integer as a decimal string');
const positiveDigits = z.string().regex(/^[1-9]\d{0,29}$/, 'a positive integer as a decimal string');
const prefix = z.string().regex(/^\d{1,15}$/, 'E.164 digits without "+"');
const service = z.enum(SERVICES);
const zone = z.string().min(1).max(64);
const hhmm = /^([01]\d|2[0-3]):[0-5]\d$/;

const rateEntrySchema = z.strictObject({
  service,
  zone,
  destinationPrefix: prefix.optional(),
  priceMicros: digits,
  perUnits: positiveDigits,
  increments: z.strictObject({ initial: positiveDigits, subsequent: positiveDigits }).optional(),
  bandPrices: z.record(z.string(), digits).optional(),
});

const timeBandSchema = z
  .strictObject({
    id: z.string().min(1),
    days: z.array(z.number().int().min(1).max(7)).min(1).optional(),
    from: z.string().regex(hhmm, '"HH:MM"'),
    to: z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, '"HH:MM" or "24:00"'),
  })
  .refine((b) => b.from !== b.to, { message: 'from and to must differ', path: ['to'] });

const promotionSchema = z
  .strictObject({
    id: z.string().min(1),
    service,
    zone,
    destinationPrefix: prefix.optional(),
    priceMicros: digits,
    validFrom: z.iso.datetime({ offset: true }),
    validTo: z.iso.datetime({ offset: true }),
  })
  .refine((p) => Date.parse(p.validFrom) < Date.parse(p.validTo), {
    message: 'validFrom must be before validTo',
    path: ['validTo'],
  });

export const TariffSchema: z.ZodType<Tariff> = z
  .strictObject({
    schemaVersion: z.literal(1),
    currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code'),
    utcOffsetMinutes: z.number().int().min(-720).max(840),
    rates: z.array(rateEntrySchema),
    timeBands: z.array(timeBandSchema).optional(),
    promotions: z.array(promotionSchema).optional(),
  })
  .superRefine((t, ctx) => {
    // Selection must be unambiguous: one entry per (service, zone, prefix).
    const keys = new Set<string>();
    const bandIds = new Set((t.timeBands ?? []).map((b) => b.id));
    if (bandIds.size !== (t.timeBands ?? []).length) {
      ctx.addIssue({ code: 'custom', message: 'duplicate time band id', path: ['timeBands'] });
    }
    t.rates.forEach((r, i) => {
      const key = `${r.service}|${r.zone}|${r.destinationPrefix ?? ''}`;
      if (keys.has(key)) ctx.addIssue({ code: 'custom', message: `duplicate rate ${key}`, path: ['rates', i] });
      keys.add(key);
      if (r.service === 'data' && r.destinationPrefix !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'data rates have no destination', path: ['rates', i, 'destinationPrefix'] });
      }
      for (const band of Object.keys(r.bandPrices ?? {})) {
        if (!bandIds.has(band)) {
          ctx.addIssue({ code: 'custom', message: `unknown time band ${band}`, path: ['rates', i, 'bandPrices', band] });
        }
      }
    });
    const promoIds = new Set<string>();
    (t.promotions ?? []).forEach((p, i) => {
      if (promoIds.has(p.id)) ctx.addIssue({ code: 'custom', message: `duplicate promotion ${p.id}`, path: ['promotions', i] });
      promoIds.add(p.id);
      if (p.service === 'data' && p.destinationPrefix !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'data promotions have no destination', path: ['promotions', i] });
      }
    });
  });

/** Validates tariff JSON (e.g. read from jsonb); throws a ZodError naming every problem. */
export function parseTariff(json: unknown): Tariff {
  return TariffSchema.parse(json);
}
