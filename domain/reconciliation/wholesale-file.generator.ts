/**
 * Generator of realistic MNO wholesale files (canonical CSV, optionally gzip) from the
 * project's own rated usage events, with deterministic injected faults — for tests, demos and
 * the 10M-record reconciliation benchmark.
 *
 * Streaming: events are pulled from a (sync or async) iterable as the output is read, rows
 * are written in ~64 KiB chunks with back-pressure, and nothing proportional to the number of
 * rows is kept (only faults when `collectFaults` is on, and at most a few pending duplicates).
 *
 * Decisions:
 *  - Wholesale amount = ceil(volume / unitSize) × microsPerUnit, exact bigint, per record
 *    (every started unit is charged; volume 0 costs 0). `wholesaleAmountMicros` is exported
 *    so the matcher prices the same way. Amounts are written with 6 decimals ("0.012000").
 *  - The MNO prices ITS OWN volume: when a volume is drifted (clean or not) the amount is
 *    recomputed from the drifted volume, so a rate check compares amount with the rate card
 *    applied to the MNO volume, and the volume check compares volumes with the tolerance.
 *  - Tolerances (`WholesaleTolerances`, shared with the matcher through the exported
 *    predicates): times match when |Δt| ≤ timeWindowMs; volumes when
 *    |Δv| ≤ max(absolute[service], floor(expected × relativePpm / 1e6)) with `expected` our
 *    rated volume; amounts when |Δ| ≤ amountMicros. Faults are always strictly beyond the
 *    tolerance, clean drift (`cleanDriftRate`) always within it and must not be flagged.
 *  - Faults: each event independently gets at most one fault with probability `faultRate`,
 *    the kind drawn by `faultWeights` (default: all kinds equally). Kinds:
 *      dropped       the event's record is not written (missing on the MNO side)
 *      duplicate     the record is written again 0..maxDuplicateDelayRows rows later, half of
 *                    the time with the same record_id (a re-sent line), half with a new one
 *                    (re-billed); the fault names the second copy
 *      time_drift    started_at moved by more than the window (window + 1 s … + 6 h, ±)
 *      volume_drift  volume off by more than the tolerance (amount priced on that volume)
 *      wrong_rate    amount ≠ rate card: the unit price off by ±5–50 % (at least beyond the
 *                    amount tolerance; a zero-volume record gets a positive amount)
 *      unknown_imsi  the event's record is written, plus a record for an IMSI no subscriber
 *                    has (`unknownImsiPrefix` + digits, default MCC 999 / MNC 99, which ITU
 *                    reserves for internal use) near the same time
 *      extra_on_mno  the event's record is written, plus a session of the same subscriber we
 *                    never rated: same service and zone, started 2–8 windows + up to 6 h
 *                    away from the event, a fresh realistic volume (missing on our side)
 *  - PRNG: sfc32 seeded through splitmix32 from a number or string seed (no Math.random);
 *    same events + same options → byte-identical file and fault list.
 *  - record_id: `recordIdPrefix` + a 12-digit sequence in file order ("MNO000000000001").
 *  - started_at: ISO 8601 with milliseconds in `utcOffsetMinutes` ('Z' for 0).
 *  - Line numbers in faults are file lines (header = line 1), as the parser reports them.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { CANONICAL_WHOLESALE_HEADER } from './wholesale-file.parser';
import type { WholesaleService } from './wholesale-file.parser';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** One usage event as the project rated it. */
export interface RatedUsageEvent {
  usageEventId: string;
  imsi: string;
  msisdn: string | null;
  service: WholesaleService;
  /** Date or epoch milliseconds. */
  startedAt: Date | number;
  /** Bytes (data), seconds (voice), messages (SMS). */
  volume: bigint;
  zone: string;
}

export interface WholesaleRate {
  /** Price of one unit, in micro-units of the currency. */
  microsPerUnit: bigint;
  /** Size of one charged unit: 1024n bytes, 60n seconds, 1n message. */
  unitSize: bigint;
}

/** The partner's wholesale prices: service → zone → rate. */
export type WholesaleRateCard = { [S in WholesaleService]?: { [zone: string]: WholesaleRate } };

export const WHOLESALE_FAULT_KINDS = [
  'dropped',
  'duplicate',
  'time_drift',
  'volume_drift',
  'wrong_rate',
  'unknown_imsi',
  'extra_on_mno',
] as const;
export type WholesaleFaultKind = (typeof WHOLESALE_FAULT_KINDS)[number];

/** What the generator injected. JSON-safe (bigints as strings in `detail`). */
export interface InjectedFault {
  fault: WholesaleFaultKind;
  /** The event the fault was derived from (every fault has one; for unknown_imsi and extra_on_mno it is the neighbour the extra record was placed next to). */
  usageEventId: string;
  /** The MNO record that carries the fault (absent for `dropped`). */
  recordId?: string;
  /** File line of that record (absent for `dropped`). */
  lineNumber?: number;
  detail?: Record<string, string | number | boolean>;
}

export interface WholesaleTolerances {
  /** Start times match when |Δ| ≤ this many milliseconds. */
  timeWindowMs: number;
  /** Relative volume tolerance in parts per million of OUR rated volume (10,000 = 1 %). */
  volumeRelativePpm: number;
  /** Absolute volume tolerance per service (bytes, seconds, messages). */
  volumeAbsolute: { [S in WholesaleService]?: bigint };
  /** Amounts (priced from the MNO's volume) match when |Δ| ≤ this many micros. */
  amountMicros: bigint;
}

export const DEFAULT_WHOLESALE_TOLERANCES: Readonly<WholesaleTolerances> = Object.freeze({
  timeWindowMs: 120_000,
  volumeRelativePpm: 10_000,
  volumeAbsolute: Object.freeze({ data: 1024n, voice: 1n, sms: 0n }),
  amountMicros: 0n,
});

export interface WholesaleGeneratorOptions {
  /** PRNG seed. */
  seed: number | string;
  /** Probability per event of (exactly) one fault; default 0. */
  faultRate?: number;
  /** Relative weights of the fault kinds; a kind left out (or 0) is never injected. Default: all 1. */
  faultWeights?: Partial<Record<WholesaleFaultKind, number>>;
  /** Probability per otherwise clean record of time and volume drift WITHIN tolerance; default 0. */
  cleanDriftRate?: number;
  tolerances?: Partial<WholesaleTolerances>;
  /** ISO 4217 currency of every record; default 'EUR'. */
  currency?: string;
  /** Offset of the written timestamps; default 0 ('Z'). */
  utcOffsetMinutes?: number;
  /** Default 'MNO'. */
  recordIdPrefix?: string;
  /** IMSIs for `unknown_imsi` records start with this; default '99999' (MCC 999, MNC 99). */
  unknownImsiPrefix?: string;
  /** Default '999'. */
  unknownMsisdnPrefix?: string;
  /** Duplicates follow their original after 0..this many rows; default 50. */
  maxDuplicateDelayRows?: number;
  /** Compress the output; `true` = zlib level 6. */
  gzip?: boolean | { level: number };
  /** Keep the fault list in memory for `summary.faults`; default true (turn off for big runs). */
  collectFaults?: boolean;
  /** Also write each fault as one JSON line here (the caller owns and ends the stream). */
  faultLog?: Writable;
}

export interface WholesaleGenerationSummary {
  eventsRead: number;
  /** Data rows written (header excluded). */
  rowsWritten: number;
  faultCounts: Record<WholesaleFaultKind, number>;
  /** Records written with drift within tolerance. */
  cleanDrifted: number;
  /** Null when `collectFaults` is false. */
  faults: InjectedFault[] | null;
}

export interface WholesaleGeneration {
  /** The file's bytes. */
  stream: Readable;
  /** Resolves once the last row was produced (read `stream` to the end). */
  done: Promise<WholesaleGenerationSummary>;
}

// ---------------------------------------------------------------------------------------------
// Pricing and tolerance rules (shared with the matcher)
// ---------------------------------------------------------------------------------------------

export function findWholesaleRate(card: WholesaleRateCard, service: WholesaleService, zone: string): WholesaleRate | undefined {
  const byZone = card[service];
  return byZone && Object.prototype.hasOwnProperty.call(byZone, zone) ? byZone[zone] : undefined;
}

/** ceil(volume / unitSize) × microsPerUnit. */
export function priceWholesale(rate: WholesaleRate, volume: bigint): bigint {
  return ((volume + rate.unitSize - 1n) / rate.unitSize) * rate.microsPerUnit;
}

/** The rate card's amount for a record; throws when the card has no rate for service/zone. */
export function wholesaleAmountMicros(card: WholesaleRateCard, service: WholesaleService, zone: string, volume: bigint): bigint {
  const rate = findWholesaleRate(card, service, zone);
  if (!rate) throw new Error(`no wholesale rate for service '${service}' in zone '${zone}'`);
  return priceWholesale(rate, volume);
}

export function resolveTolerances(t: Partial<WholesaleTolerances> = {}): WholesaleTolerances {
  return {
    timeWindowMs: t.timeWindowMs ?? DEFAULT_WHOLESALE_TOLERANCES.timeWindowMs,
    volumeRelativePpm: t.volumeRelativePpm ?? DEFAULT_WHOLESALE_TOLERANCES.volumeRelativePpm,
    volumeAbsolute: t.volumeAbsolute ?? DEFAULT_WHOLESALE_TOLERANCES.volumeAbsolute,
    amountMicros: t.amountMicros ?? DEFAULT_WHOLESALE_TOLERANCES.amountMicros,
  };
}

/** Largest accepted |Δvolume| for our rated volume `expected`. */
export function volumeToleranceFor(expected: bigint, service: WholesaleService, t: WholesaleTolerances): bigint {
  const abs = t.volumeAbsolute[service] ?? 0n;
  const rel = (expected * BigInt(t.volumeRelativePpm)) / 1_000_000n;
  return rel > abs ? rel : abs;
}

export function isVolumeWithinTolerance(expected: bigint, actual: bigint, service: WholesaleService, t: WholesaleTolerances): boolean {
  const d = actual - expected;
  return (d < 0n ? -d : d) <= volumeToleranceFor(expected, service, t);
}

export function isTimeWithinWindow(expectedMs: number, actualMs: number, t: WholesaleTolerances): boolean {
  return Math.abs(actualMs - expectedMs) <= t.timeWindowMs;
}

export function isAmountWithinTolerance(expected: bigint, actual: bigint, t: WholesaleTolerances): boolean {
  const d = actual - expected;
  return (d < 0n ? -d : d) <= t.amountMicros;
}

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG
// ---------------------------------------------------------------------------------------------

export interface SeededRandom {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform in [0, 1). */
  float(): number;
  /** Uniform integer in [0, n) for 0 < n ≤ 2^53. */
  int(n: number): number;
  /** Uniform-ish bigint in [0, n) (float-based: fine for test data, not for cryptography). */
  bigint(n: bigint): bigint;
}

/** sfc32 seeded by splitmix32 (strings hashed with FNV-1a). */
export function createSeededRandom(seed: number | string): SeededRandom {
  let h: number;
  if (typeof seed === 'string') {
    h = 0x811c9dc5;
    for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193);
  } else {
    h = (seed ^ Math.floor(seed / 0x100000000)) | 0;
  }
  const splitmix = () => {
    h = (h + 0x9e3779b9) | 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const u32 = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) u32();
  const float = (): number => (u32() * 0x200000 + (u32() >>> 11)) / 0x20000000000000;
  return {
    u32,
    float,
    int: (n) => Math.floor(float() * n),
    bigint: (n) => {
      if (n <= 0n) return 0n;
      if (n <= 0x20000000000000n) return BigInt(Math.floor(float() * Number(n)));
      const r = BigInt(Math.floor(float() * 0x20000000000000));
      return (r * n) / 0x20000000000000n;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

/** Micros → decimal string with 6 fractional digits: 12500000n → "12.500000". */
export function formatMicros(m: bigint): string {
  const neg = m < 0n;
  let s = (neg ? -m : m).toString();
  if (s.length < 7) s = '0000000'.slice(s.length) + s;
  return (neg ? '-' : '') + s.slice(0, s.length - 6) + '.' + s.slice(s.length - 6);
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

const CSV_SPECIAL = /[",\r\n]/;
function csvField(s: string): string {
  return CSV_SPECIAL.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

function offsetSuffix(minutes: number): string {
  if (minutes === 0) return 'Z';
  const a = Math.abs(minutes);
  return (minutes < 0 ? '-' : '+') + String(Math.floor(a / 60)).padStart(2, '0') + ':' + String(a % 60).padStart(2, '0');
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

type EventSource = Iterable<RatedUsageEvent> | AsyncIterable<RatedUsageEvent>;

interface PendingDuplicate {
  line: string; // without record id: ",imsi,...\n"
  recordId: string;
  originalLineNumber: number;
  usageEventId: string;
}

const CHUNK_CHARS = 64 * 1024;
const SIX_HOURS_MS = 6 * 3600_000;

/** Build the file as a stream; see the module comment for the rules. */
export function generateWholesaleFile(
  events: EventSource,
  rateCard: WholesaleRateCard,
  options: WholesaleGeneratorOptions,
): WholesaleGeneration {
  const rng = createSeededRandom(options.seed);
  const tol = resolveTolerances(options.tolerances);
  const faultRate = options.faultRate ?? 0;
  const cleanDriftRate = options.cleanDriftRate ?? 0;
  const currency = options.currency ?? 'EUR';
  if (!/^[A-Z]{3}$/.test(currency)) throw new Error(`currency must be an ISO 4217 code, got '${currency}'`);
  const offsetMinutes = options.utcOffsetMinutes ?? 0;
  if (!Number.isInteger(offsetMinutes) || Math.abs(offsetMinutes) > 18 * 60) {
    throw new Error(`utcOffsetMinutes must be a whole number of minutes within ±18 h, got ${offsetMinutes}`);
  }
  const utcOffsetMs = offsetMinutes * 60_000;
  const tz = offsetSuffix(options.utcOffsetMinutes ?? 0);
  const recordIdPrefix = options.recordIdPrefix ?? 'MNO';
  const unknownImsiPrefix = options.unknownImsiPrefix ?? '99999';
  const unknownMsisdnPrefix = options.unknownMsisdnPrefix ?? '999';
  const maxDupDelay = options.maxDuplicateDelayRows ?? 50;
  const collect = options.collectFaults ?? true;
  const faultLog = options.faultLog;

  // Fault kind table (cumulative weights).
  const kinds: WholesaleFaultKind[] = [];
  const cumulative: number[] = [];
  let totalWeight = 0;
  for (const k of WHOLESALE_FAULT_KINDS) {
    const w = options.faultWeights ? (options.faultWeights[k] ?? 0) : 1;
    if (w < 0 || !Number.isFinite(w)) throw new Error(`fault weight of '${k}' must be a finite number ≥ 0`);
    if (w > 0) {
      totalWeight += w;
      kinds.push(k);
      cumulative.push(totalWeight);
    }
  }
  if (faultRate > 0 && totalWeight === 0) throw new Error('faultRate > 0 but every fault weight is 0');
  const pickKind = (): WholesaleFaultKind => {
    const x = rng.float() * totalWeight;
    for (let i = 0; i < cumulative.length; i++) if (x < cumulative[i]) return kinds[i];
    return kinds[kinds.length - 1];
  };

  const faultCounts = Object.fromEntries(WHOLESALE_FAULT_KINDS.map((k) => [k, 0])) as Record<WholesaleFaultKind, number>;
  const faults: InjectedFault[] | null = collect ? [] : null;
  let faultLines = '';
  const addFault = (f: InjectedFault) => {
    faultCounts[f.fault]++;
    faults?.push(f);
    if (faultLog) faultLines += JSON.stringify(f) + '\n';
  };

  // Caches: zones (escaped) and rates per service+zone.
  const zoneCsv = new Map<string, string>();
  const rateCache = new Map<string, WholesaleRate>();
  const rateOf = (service: WholesaleService, zone: string): WholesaleRate => {
    const key = service + '\u0000' + zone;
    let r = rateCache.get(key);
    if (r === undefined) {
      r = findWholesaleRate(rateCard, service, zone);
      if (!r) throw new Error(`no wholesale rate for service '${service}' in zone '${zone}'`);
      if (r.unitSize <= 0n) throw new Error(`unitSize of '${service}'/'${zone}' must be > 0`);
      rateCache.set(key, r);
    }
    return r;
  };
  const zoneField = (zone: string): string => {
    let z = zoneCsv.get(zone);
    if (z === undefined) {
      z = csvField(zone);
      zoneCsv.set(zone, z);
    }
    return z;
  };
  // ISO 8601 with ms: the date part is cached per day, the time of day is assembled from tables.
  let dayStart = NaN;
  let dayPrefix = '';
  const formatTime = (ms: number): string => {
    const local = ms + utcOffsetMs;
    let tod = local - dayStart;
    if (!(tod >= 0 && tod < 86_400_000)) {
      dayStart = Math.floor(local / 86_400_000) * 86_400_000;
      dayPrefix = new Date(dayStart).toISOString().slice(0, 11);
      tod = local - dayStart;
    }
    const sec = Math.floor(tod / 1000);
    return (
      dayPrefix + PAD2[Math.floor(sec / 3600)] + ':' + PAD2[Math.floor(sec / 60) % 60] + ':' + PAD2[sec % 60] + '.' +
      PAD3[tod - sec * 1000] + tz
    );
  };
  const randomVolume = (service: WholesaleService): bigint => {
    if (service === 'sms') return 1n;
    if (service === 'voice') return BigInt(1 + rng.int(1200));
    return BigInt(Math.floor(1024 * Math.pow(100_000, rng.float()))); // 1 KiB … 100 MiB, log-uniform
  };
  const randomDigits = (n: number): string => {
    let s = '';
    while (s.length < n) s += String(rng.u32() % 1_000_000_000).padStart(9, '0');
    return s.slice(0, n);
  };

  let seq = 0;
  const nextRecordId = () => recordIdPrefix + String(++seq).padStart(12, '0');
  let line = 1; // header
  let rowsWritten = 0;
  let eventsRead = 0;
  let cleanDrifted = 0;
  let chunk = CANONICAL_WHOLESALE_HEADER.join(',') + '\n';
  const pending = new Map<number, PendingDuplicate[]>();

  /** Writes one row; returns its line number. `rest` = ",imsi,...\n". */
  const emit = (recordId: string, rest: string): number => {
    chunk += recordId + rest;
    rowsWritten++;
    return ++line;
  };
  const rowRest = (
    imsi: string,
    msisdn: string | null,
    service: WholesaleService,
    ms: number,
    volume: bigint,
    zone: string,
    amount: bigint,
  ): string =>
    ',' + csvField(imsi) + ',' + (msisdn === null ? '' : csvField(msisdn)) + ',' + service + ',' + formatTime(ms) + ',' +
    volume + ',' + zoneField(zone) + ',' + formatMicros(amount) + ',' + currency + '\n';

  /** Write the duplicates due after event `due`; a new record id is taken when written (ids stay in file order). */
  const flushDue = (due: number) => {
    const list = pending.get(due);
    if (list === undefined) return;
    pending.delete(due);
    for (const d of list) {
      const reused = d.recordId !== '';
      const recordId = reused ? d.recordId : nextRecordId();
      const ln = emit(recordId, d.line);
      addFault({
        fault: 'duplicate',
        usageEventId: d.usageEventId,
        recordId,
        lineNumber: ln,
        detail: { originalLineNumber: d.originalLineNumber, sameRecordId: reused },
      });
    }
  };

  /** One event → its row(s); `index` is the event's position (duplicates are due by it). */
  const processEvent = (ev: RatedUsageEvent, index: number): void => {
    const { service, zone } = ev;
    let volume = ev.volume;
    if (typeof volume !== 'bigint' || volume < 0n) {
      throw new Error(`usage event ${ev.usageEventId}: volume must be a non-negative bigint`);
    }
    let ms = Math.floor(typeof ev.startedAt === 'number' ? ev.startedAt : ev.startedAt.getTime());
    if (!Number.isFinite(ms)) throw new Error(`usage event ${ev.usageEventId}: invalid startedAt`);
    const rate = rateOf(service, zone);
    const kind = faultRate > 0 && rng.float() < faultRate ? pickKind() : null;

    if (kind === 'dropped') {
      addFault({ fault: 'dropped', usageEventId: ev.usageEventId });
      return;
    }
    let amount: bigint;
    let detail: Record<string, string | number | boolean> | undefined;
    if (kind === 'time_drift') {
      const shift = (tol.timeWindowMs + 1000 + rng.int(SIX_HOURS_MS)) * (rng.float() < 0.5 ? -1 : 1);
      ms += shift;
      amount = priceWholesale(rate, volume);
      detail = { shiftMs: shift };
    } else if (kind === 'volume_drift') {
      const t = volumeToleranceFor(volume, service, tol);
      let spread = volume / 2n;
      if (spread < t) spread = t;
      if (spread < 1n) spread = 1n;
      const delta = t + 1n + rng.bigint(spread);
      const expected = volume;
      volume = rng.float() < 0.5 && volume - delta >= 0n ? volume - delta : volume + delta;
      amount = priceWholesale(rate, volume);
      detail = { expectedVolume: expected.toString(), volume: volume.toString() };
    } else if (kind === 'wrong_rate') {
      const correct = priceWholesale(rate, volume);
      const units = (volume + rate.unitSize - 1n) / rate.unitSize;
      const pct = BigInt(5 + rng.int(46)) * (rng.float() < 0.5 ? -1n : 1n);
      let wrongRate = (rate.microsPerUnit * (100n + pct)) / 100n;
      if (wrongRate === rate.microsPerUnit) wrongRate += 1n;
      amount = units * wrongRate;
      const diff = amount - correct;
      if ((diff < 0n ? -diff : diff) <= tol.amountMicros) amount = correct + tol.amountMicros + 1n;
      detail = { expectedAmountMicros: correct.toString(), amountMicros: amount.toString() };
    } else {
      // clean record (possibly with a duplicate / extra record after it)
      if (cleanDriftRate > 0 && rng.float() < cleanDriftRate) {
        cleanDrifted++;
        ms += rng.int(2 * tol.timeWindowMs + 1) - tol.timeWindowMs;
        const t = volumeToleranceFor(volume, service, tol);
        const delta = rng.bigint(2n * t + 1n) - t;
        volume = volume + delta < 0n ? 0n : volume + delta;
      }
      amount = priceWholesale(rate, volume);
    }

    const recordId = nextRecordId();
    const rest = rowRest(ev.imsi, ev.msisdn, service, ms, volume, zone, amount);
    const ln = emit(recordId, rest);
    if (kind === 'time_drift' || kind === 'volume_drift' || kind === 'wrong_rate') {
      addFault({ fault: kind, usageEventId: ev.usageEventId, recordId, lineNumber: ln, detail });
    } else if (kind === 'duplicate') {
      const same = rng.float() < 0.5;
      const due = index + rng.int(maxDupDelay + 1);
      const d: PendingDuplicate = { line: rest, recordId: same ? recordId : '', originalLineNumber: ln, usageEventId: ev.usageEventId };
      const list = pending.get(due);
      if (list) list.push(d);
      else pending.set(due, [d]);
    } else if (kind === 'unknown_imsi') {
      const imsi = unknownImsiPrefix + randomDigits(Math.max(0, 15 - unknownImsiPrefix.length));
      const msisdn = unknownMsisdnPrefix + randomDigits(Math.max(0, 12 - unknownMsisdnPrefix.length));
      const v = randomVolume(service);
      const t = ms + rng.int(2 * 3600_000) - 3600_000;
      const id = nextRecordId();
      const l2 = emit(id, rowRest(imsi, msisdn, service, t, v, zone, priceWholesale(rate, v)));
      addFault({ fault: 'unknown_imsi', usageEventId: ev.usageEventId, recordId: id, lineNumber: l2, detail: { imsi } });
    } else if (kind === 'extra_on_mno') {
      const v = randomVolume(service);
      const away = tol.timeWindowMs * (2 + rng.int(7)) + rng.int(SIX_HOURS_MS);
      const t = ms + (rng.float() < 0.5 ? -away : away);
      const id = nextRecordId();
      const l2 = emit(id, rowRest(ev.imsi, ev.msisdn, service, t, v, zone, priceWholesale(rate, v)));
      addFault({ fault: 'extra_on_mno', usageEventId: ev.usageEventId, recordId: id, lineNumber: l2 });
    }
  };

  // ---- the stream ----------------------------------------------------------------------------
  const isAsync = Symbol.asyncIterator in (events as object);
  const syncIt = isAsync ? null : (events as Iterable<RatedUsageEvent>)[Symbol.iterator]();
  const asyncIt = isAsync ? (events as AsyncIterable<RatedUsageEvent>)[Symbol.asyncIterator]() : null;
  let exhausted = false;
  let resolveDone!: (s: WholesaleGenerationSummary) => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<WholesaleGenerationSummary>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined); // the caller may only watch the stream

  const handle = (ev: RatedUsageEvent) => {
    const index = eventsRead++;
    processEvent(ev, index);
    flushDue(index);
  };

  /** Produce the next chunk of text, or null at the end. */
  const produce = async (): Promise<string | null> => {
    while (chunk.length < CHUNK_CHARS && !exhausted) {
      if (syncIt) {
        const r = syncIt.next();
        if (r.done) exhausted = true;
        else handle(r.value);
      } else {
        const r = await (asyncIt as AsyncIterator<RatedUsageEvent>).next();
        if (r.done) exhausted = true;
        else handle(r.value);
      }
    }
    if (exhausted && pending.size > 0) {
      for (const due of [...pending.keys()].sort((x, y) => x - y)) flushDue(due);
    }
    if (faultLog && faultLines.length > 0) {
      const ok = faultLog.write(faultLines);
      faultLines = '';
      if (!ok) await once(faultLog, 'drain');
    }
    if (chunk.length === 0) return null;
    const out = chunk;
    chunk = '';
    return out;
  };

  let pumping = false;
  let finished = false;
  const readable = new Readable({
    highWaterMark: CHUNK_CHARS,
    read() {
      if (pumping || finished) return;
      pumping = true;
      void (async () => {
        try {
          for (;;) {
            const text = await produce();
            if (text === null) {
              finished = true;
              readable.push(null);
              resolveDone({ eventsRead, rowsWritten, faultCounts, cleanDrifted, faults });
              return;
            }
            if (!readable.push(text, 'utf8')) return;
          }
        } catch (err) {
          finished = true;
          rejectDone(err);
          readable.destroy(err as Error);
        } finally {
          pumping = false;
        }
      })();
    },
    destroy(err, cb) {
      if (!finished) {
        finished = true;
        rejectDone(err ?? new Error('wholesale file stream destroyed before the end'));
        void syncIt?.return?.();
        void asyncIt?.return?.();
      }
      cb(err);
    },
  });

  if (!options.gzip) return { stream: readable, done };
  const level = options.gzip === true ? 6 : options.gzip.level;
  const gz = createGzip({ level, chunkSize: 64 * 1024 });
  pipeline(readable, gz, () => undefined);
  return { stream: gz, done };
}

/**
 * Write a wholesale file (and optionally the fault list as JSONL) to disk.
 * For big runs pass `collectFaults: false` and a `faultLogPath`.
 */
export async function writeWholesaleFile(
  path: string,
  events: EventSource,
  rateCard: WholesaleRateCard,
  options: Omit<WholesaleGeneratorOptions, 'faultLog'> & { faultLogPath?: string },
): Promise<WholesaleGenerationSummary> {
  const faultLog = options.faultLogPath ? createWriteStream(options.faultLogPath) : undefined;
  const gen = generateWholesaleFile(events, rateCard, { ...options, faultLog });
  try {
    await pipelineAsync(gen.stream, createWriteStream(path));
    return await gen.done;
  } finally {
    if (faultLog) {
      faultLog.end();
      await once(faultLog, 'close');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic rated usage (for tests and benchmarks)
// ---------------------------------------------------------------------------------------------

/** A small, realistic wholesale rate card in EUR micros (data per KiB, voice per minute, SMS each). */
export const SAMPLE_WHOLESALE_RATE_CARD: WholesaleRateCard = {
  data: {
    home: { microsPerUnit: 1n, unitSize: 1024n },
    'roam-eu': { microsPerUnit: 2n, unitSize: 1024n },
    'roam-world': { microsPerUnit: 40n, unitSize: 1024n },
  },
  voice: {
    home: { microsPerUnit: 5_000n, unitSize: 60n },
    'roam-eu': { microsPerUnit: 10_000n, unitSize: 60n },
    'roam-world': { microsPerUnit: 450_000n, unitSize: 60n },
  },
  sms: {
    home: { microsPerUnit: 8_000n, unitSize: 1n },
    'roam-eu': { microsPerUnit: 10_000n, unitSize: 1n },
    'roam-world': { microsPerUnit: 150_000n, unitSize: 1n },
  },
};

export interface SyntheticUsageOptions {
  count: number;
  seed: number | string;
  /** Distinct subscribers; default max(1, count / 50). */
  subscribers?: number;
  /** First event; default 2025-01-01T00:00:00Z. */
  periodStartMs?: number;
  /** Events spread over this span in time order; default 31 days. */
  periodMs?: number;
  /** Home network IMSI prefix (MCC+MNC); default '26201'. */
  imsiPrefix?: string;
  /** MSISDN prefix (country code + range); default '4915'. */
  msisdnPrefix?: string;
}

/**
 * A lazily generated, time-ordered stream of rated usage events: data 60 %, voice 25 %,
 * SMS 15 %; zones home 85 %, roam-eu 12 %, roam-world 3 %. Constant memory.
 */
export function* syntheticRatedUsageEvents(o: SyntheticUsageOptions): Generator<RatedUsageEvent> {
  const rng = createSeededRandom(o.seed);
  const subs = Math.max(1, o.subscribers ?? Math.floor(o.count / 50));
  const start = o.periodStartMs ?? Date.UTC(2025, 0, 1);
  const period = o.periodMs ?? 31 * 86_400_000;
  const imsiPrefix = o.imsiPrefix ?? '26201';
  const msisdnPrefix = o.msisdnPrefix ?? '4915';
  const step = period / Math.max(1, o.count);
  const idPrefix = 'ue-' + String(o.seed) + '-';
  let t = start;
  for (let i = 0; i < o.count; i++) {
    t += step * 2 * rng.float();
    const sub = rng.int(subs);
    const x = rng.float();
    const service: WholesaleService = x < 0.6 ? 'data' : x < 0.85 ? 'voice' : 'sms';
    const z = rng.float();
    const zone = z < 0.85 ? 'home' : z < 0.97 ? 'roam-eu' : 'roam-world';
    const volume =
      service === 'sms' ? 1n : service === 'voice' ? BigInt(1 + rng.int(900)) : BigInt(Math.floor(512 * Math.pow(200_000, rng.float())));
    yield {
      usageEventId: idPrefix + i,
      imsi: imsiPrefix + String(sub).padStart(15 - imsiPrefix.length, '0'),
      msisdn: msisdnPrefix + String(sub).padStart(11 - msisdnPrefix.length, '0'),
      service,
      startedAt: Math.floor(t),
      volume,
      zone,
    };
  }
}
