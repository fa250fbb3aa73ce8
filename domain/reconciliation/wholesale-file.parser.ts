/**
 * Streaming parser for the host MNO's monthly wholesale usage file.
 *
 * Canonical format (see `CANONICAL_WHOLESALE_MAPPING`): UTF-8 CSV, header row, columns
 *   record_id, imsi, msisdn, service, started_at, volume, zone, wholesale_amount, currency
 * optionally gzip-compressed (detected by the magic bytes 1f 8b, never by the file name;
 * concatenated gzip members are accepted). Other partner layouts are described by a
 * `WholesaleColumnMapping` (column names, delimiter, service codes, timestamp format, amount
 * scale, decimal separator).
 *
 * Design decisions (one place):
 *  - Output: `parseWholesaleFile(input)` returns a one-shot async iterable of items, either
 *    `{ kind: 'record', … }` or `{ kind: 'rejected', lineNumber, reason, issues, raw }`. A
 *    malformed row is never dropped: the caller decides what to do with a rejection. For
 *    throughput prefer `.batches()` (one array per input chunk, no promise per row).
 *  - Fatal problems (missing/duplicate header columns, empty file, corrupt gzip, a record
 *    longer than `maxRecordLength` — usually an unterminated quote) throw a
 *    `WholesaleFileError` from the iteration; rows already yielded stay valid.
 *  - Line numbers are physical lines, 1-based, counted in the decompressed text; the header
 *    is line 1 (or later if the file starts with empty lines). A record whose quoted field
 *    contains line breaks gets the number of its first line.
 *  - Hashes: `rawSha256` is the SHA-256 of the bytes exactly as received (equals
 *    `sha256sum <file>`; identifies the upload), `contentSha256` the SHA-256 of the
 *    decompressed bytes (identical to `rawSha256` for an uncompressed file). Use
 *    `contentSha256` to refuse a file that was already imported: it is the same whether the
 *    partner sends the file plain or re-compressed (gzip headers carry a time stamp and name).
 *    Both are only known once the whole input has been read (`summary()`).
 *  - Line endings LF or CRLF (a lone CR is not a line break); a UTF-8 BOM is skipped; a final
 *    newline is optional. Fields may be quoted RFC 4180 style ("" = one quote, quoted fields
 *    may contain the delimiter and line breaks). A quote inside an unquoted field or text
 *    after a closing quote rejects the row.
 *  - Empty lines (nothing but an optional CR) are not records: by default they are skipped
 *    and counted (`emptyLines` in the stats) — `emptyLines: 'reject'` reports each as a
 *    rejection instead. A line of only delimiters or blanks is a malformed row (rejected).
 *  - Header names match case-insensitively after trimming blanks; unmapped extra columns are
 *    allowed and ignored; every row must have as many fields as the header.
 *  - Values are not trimmed. Strict field rules:
 *      record_id  1–128 characters, no control characters
 *      imsi       6–15 digits
 *      msisdn     empty (→ null) or an optional '+' and 1–15 digits (normalised: digits only)
 *      service    'data' | 'voice' | 'sms', or a code listed in `serviceValues`
 *      started_at iso8601: YYYY-MM-DD('T'|' ')HH:MM:SS[.fraction] followed by 'Z' or an
 *                 offset ±HH:MM / ±HHMM / ±HH (required: a time without offset is rejected);
 *                 years 1900–9999; fractions beyond milliseconds are truncated.
 *                 epoch-seconds: digits with up to 3 fractional digits; epoch-millis: digits.
 *                 Normalised to `startedAtMs` (epoch milliseconds, UTC).
 *      volume     non-negative integer digits (bytes / seconds / messages), ≤ 2^63-1
 *      zone       1–64 characters, no control characters
 *      amount     see `parseDecimalMicros`: exact, to bigint micro-units, |x| ≤ 2^63-1 micros
 *      currency   3 upper-case letters (ISO 4217), or the mapping's fixed `currency`
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { pipeline } from 'node:stream';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export const WHOLESALE_SERVICES = ['data', 'voice', 'sms'] as const;
export type WholesaleService = (typeof WHOLESALE_SERVICES)[number];

/** The logical fields of a wholesale record (keys of `WholesaleColumnMapping.columns`). */
export type WholesaleField =
  | 'recordId'
  | 'imsi'
  | 'msisdn'
  | 'service'
  | 'startedAt'
  | 'volume'
  | 'zone'
  | 'wholesaleAmount'
  | 'currency';

export type WholesaleTimestampFormat = 'iso8601' | 'epoch-seconds' | 'epoch-millis';

/**
 * How one partner lays out its file. JSON-safe, so it can live in the partner's configuration
 * (validate it with `parseWholesaleColumnMapping`).
 */
export interface WholesaleColumnMapping {
  /** Header name of each field's column. `msisdn` and `currency` may be left out. */
  columns: {
    recordId: string;
    imsi: string;
    msisdn?: string;
    service: string;
    startedAt: string;
    volume: string;
    zone: string;
    wholesaleAmount: string;
    currency?: string;
  };
  /** Partner service codes → canonical service ('GPRS' → 'data'). Canonical names are always accepted. */
  serviceValues?: Record<string, WholesaleService>;
  /** Field delimiter; default ','. */
  delimiter?: ',' | ';' | '\t' | '|';
  /** How `startedAt` is written; default 'iso8601'. */
  timestampFormat?: WholesaleTimestampFormat;
  /**
   * The amount column is in units of 10^-amountScale of the major unit: 0 (default) = major
   * units ("12.5" = 12.50 EUR), 2 = cents ("1250" = 12.50 EUR), 6 = micros. The amount may
   * still carry (6 - amountScale) fractional digits, so the result is always exact in micros.
   */
  amountScale?: number;
  /** Decimal separator of the amount; default '.'. ',' needs a delimiter other than ','. */
  decimalSeparator?: '.' | ',';
  /** Currency of every record when the file has no currency column. */
  currency?: string;
}

/** The canonical layout (the default). */
export const CANONICAL_WHOLESALE_MAPPING: Readonly<WholesaleColumnMapping> = Object.freeze({
  columns: Object.freeze({
    recordId: 'record_id',
    imsi: 'imsi',
    msisdn: 'msisdn',
    service: 'service',
    startedAt: 'started_at',
    volume: 'volume',
    zone: 'zone',
    wholesaleAmount: 'wholesale_amount',
    currency: 'currency',
  }),
  delimiter: ',',
  timestampFormat: 'iso8601',
  amountScale: 0,
  decimalSeparator: '.',
}) as Readonly<WholesaleColumnMapping>;

/** The canonical header, in canonical column order. */
export const CANONICAL_WHOLESALE_HEADER = [
  'record_id',
  'imsi',
  'msisdn',
  'service',
  'started_at',
  'volume',
  'zone',
  'wholesale_amount',
  'currency',
] as const;

export interface WholesaleRecord {
  kind: 'record';
  /** Physical line (1-based) where the record starts. */
  lineNumber: number;
  recordId: string;
  imsi: string;
  /** Digits only (a leading '+' removed); null when the partner left it empty or has no column. */
  msisdn: string | null;
  service: WholesaleService;
  /** Usage start, epoch milliseconds (UTC). */
  startedAtMs: number;
  /** Bytes (data), seconds (voice), messages (SMS). */
  volume: bigint;
  zone: string;
  /** Exact wholesale amount in micro-units (1e-6) of `currency`; may be negative (credit). */
  wholesaleAmountMicros: bigint;
  currency: string;
}

export interface WholesaleFieldIssue {
  /** Logical field, or null for a row-level problem (field count, quoting, empty line). */
  field: WholesaleField | null;
  /** The file's column name for `field`, when there is one. */
  column: string | null;
  message: string;
}

export interface WholesaleRejectedRow {
  kind: 'rejected';
  lineNumber: number;
  /** Human-readable, all issues joined: "wholesale_amount: exponent notation is not allowed ('1e3')". */
  reason: string;
  issues: WholesaleFieldIssue[];
  /** The raw text of the row (without line ending), cut at `maxRawLength` characters. */
  raw: string;
}

export type WholesaleParseItem = WholesaleRecord | WholesaleRejectedRow;

export interface WholesaleParseStats {
  /** Physical lines seen so far, header and empty lines included. */
  lines: number;
  records: number;
  rejected: number;
  /** Empty lines skipped (with `emptyLines: 'skip'`; otherwise they count as rejected). */
  emptyLines: number;
}

export interface WholesaleParseSummary extends WholesaleParseStats {
  /** SHA-256 (hex) of the bytes as received. */
  rawSha256: string;
  /** SHA-256 (hex) of the decompressed content: the key to refuse a re-import. */
  contentSha256: string;
  compression: 'gzip' | 'none';
  rawBytes: number;
  contentBytes: number;
  /** The header as it appears in the file. */
  header: string[];
}

export interface WholesaleParseOptions {
  /** Partner layout; default `CANONICAL_WHOLESALE_MAPPING`. */
  mapping?: WholesaleColumnMapping;
  /** 'skip' (default): empty lines are counted in `emptyLines`; 'reject': each is a rejection. */
  emptyLines?: 'skip' | 'reject';
  /** A record longer than this many characters is fatal (runaway quote). Default 65,536. */
  maxRecordLength?: number;
  /** Cut `raw` of a rejection at this many characters. Default 1,024. */
  maxRawLength?: number;
}

export type WholesaleFileErrorCode =
  | 'INVALID_MAPPING'
  | 'EMPTY_FILE'
  | 'HEADER_MISSING_COLUMNS'
  | 'HEADER_DUPLICATE_COLUMNS'
  | 'MALFORMED_HEADER'
  | 'RECORD_TOO_LONG'
  | 'DECOMPRESSION_FAILED'
  | 'NOT_FINISHED';

/** A problem with the file as a whole: nothing after it can be trusted. */
export class WholesaleFileError extends Error {
  override readonly name = 'WholesaleFileError';
  constructor(
    readonly code: WholesaleFileErrorCode,
    message: string,
    readonly details: { lineNumber?: number; missingColumns?: string[]; duplicateColumns?: string[] } = {},
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Mapping validation
// ---------------------------------------------------------------------------------------------

const columnName = z.string().trim().min(1);
const mappingSchema = z
  .object({
    columns: z.object({
      recordId: columnName,
      imsi: columnName,
      msisdn: columnName.optional(),
      service: columnName,
      startedAt: columnName,
      volume: columnName,
      zone: columnName,
      wholesaleAmount: columnName,
      currency: columnName.optional(),
    }),
    serviceValues: z.record(z.string(), z.enum(WHOLESALE_SERVICES)).optional(),
    delimiter: z.enum([',', ';', '\t', '|']).optional(),
    timestampFormat: z.enum(['iso8601', 'epoch-seconds', 'epoch-millis']).optional(),
    amountScale: z.number().int().min(0).max(6).optional(),
    decimalSeparator: z.enum(['.', ',']).optional(),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code: 3 upper-case letters')
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (m.columns.currency === undefined && m.currency === undefined) {
      ctx.addIssue({ code: 'custom', path: ['currency'], message: 'needs a currency column or a fixed currency' });
    }
    if ((m.decimalSeparator ?? '.') === (m.delimiter ?? ',')) {
      ctx.addIssue({ code: 'custom', path: ['decimalSeparator'], message: 'must differ from the delimiter' });
    }
    const names = Object.values(m.columns).filter((c): c is string => c !== undefined).map((c) => c.trim().toLowerCase());
    const dup = names.filter((n, i) => names.indexOf(n) !== i);
    if (dup.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['columns'], message: `a column is mapped twice: ${[...new Set(dup)].join(', ')}` });
    }
  });

/** Validate a mapping from configuration; throws `WholesaleFileError('INVALID_MAPPING')`. */
export function parseWholesaleColumnMapping(input: unknown): WholesaleColumnMapping {
  const r = mappingSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(mapping)'}: ${i.message}`).join('; ');
    throw new WholesaleFileError('INVALID_MAPPING', `invalid wholesale column mapping: ${msg}`);
  }
  return r.data as WholesaleColumnMapping;
}

// ---------------------------------------------------------------------------------------------
// Exact field parsers (exported: the generator and the matcher use the same rules)
// ---------------------------------------------------------------------------------------------

export const INT64_MAX = 9223372036854775807n;

/**
 * Exact decimal → bigint micro-units. Returns the bigint, or a string saying what is wrong.
 * Accepted: an optional leading '-', at least one digit, optionally the decimal separator
 * followed by 1..(6 - amountScale) digits. Refused: empty, '+', blanks, exponents, thousands
 * separators, a bare separator ('.5', '5.'), more fractional digits than micros can hold,
 * |value| > 2^63-1 micros. '-0' is 0.
 */
export function parseDecimalMicros(s: string, amountScale = 0, decimalSeparator: '.' | ',' = '.'): bigint | string {
  const len = s.length;
  if (len === 0) return 'empty';
  const maxFrac = 6 - amountScale;
  const sep = decimalSeparator.charCodeAt(0);
  let i = 0;
  const neg = s.charCodeAt(0) === 45; /* - */
  if (neg) i = 1;
  const intStart = i;
  while (i < len) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  const intEnd = i;
  let frac = '';
  if (i < len) {
    if (s.charCodeAt(i) !== sep) return decimalProblem(s, i, decimalSeparator);
    i++;
    const fracStart = i;
    while (i < len) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return decimalProblem(s, i, decimalSeparator);
      i++;
    }
    if (i === fracStart) return `no digits after the decimal separator ('${s}')`;
    if (i - fracStart > maxFrac) return `more than ${maxFrac} fractional digits ('${s}')`;
    frac = s.slice(fracStart);
  }
  if (intEnd === intStart) return `no digits before the decimal separator ('${s}')`;
  const digits = s.slice(intStart, intEnd) + (frac.length === maxFrac ? frac : frac + ZEROS.slice(0, maxFrac - frac.length));
  const v = BigInt(digits);
  if (v > INT64_MAX) return `out of range ('${s}')`;
  return neg ? -v : v;
}
const ZEROS = '000000';

function decimalProblem(s: string, i: number, sep: string): string {
  const c = s[i];
  if (c === 'e' || c === 'E') return `exponent notation is not allowed ('${s}')`;
  if (c === '+' || c === '-') return `only a single leading '-' is allowed ('${s}')`;
  if (c === ' ' || c === '\t' || c === '\u00a0') return `blanks are not allowed ('${s}')`;
  if (c === '.' || c === ',') {
    return c === sep ? `more than one decimal separator ('${s}')` : `unexpected '${c}' (decimal separator is '${sep}') ('${s}')`;
  }
  return `not a decimal number ('${s}')`;
}

/** Non-negative integer digits → bigint (≤ 2^63-1), or a reason. */
export function parseVolume(s: string): bigint | string {
  const len = s.length;
  if (len === 0) return 'empty';
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) {
      if (i === 0 && c === 45) return `must not be negative ('${s}')`;
      return `not a non-negative integer ('${s}')`;
    }
  }
  const v = BigInt(s);
  return len >= 19 && v > INT64_MAX ? `out of range ('${s}')` : v;
}

const MAX_EPOCH_MS = 253402300799999; // 9999-12-31T23:59:59.999Z
const MIN_EPOCH_MS = -2208988800000; // 1900-01-01T00:00:00Z

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9) return -1;
  return a * 10 + b;
}

/**
 * Strict ISO 8601 / RFC 3339 date-time with offset → epoch ms, or a reason.
 * YYYY-MM-DD('T'|'t'|' ')HH:MM:SS[(.|,)fraction](Z|z|±HH:MM|±HHMM|±HH); fractions beyond ms are truncated.
 */
export function parseIsoTimestamp(s: string): number | string {
  const len = s.length;
  if (len === 0) return 'empty';
  if (len < 19) return `not an ISO 8601 date-time with offset ('${s}')`;
  const y0 = twoDigits(s, 0);
  const y1 = twoDigits(s, 2);
  const mo = twoDigits(s, 5);
  const d = twoDigits(s, 8);
  const h = twoDigits(s, 11);
  const mi = twoDigits(s, 14);
  const sec = twoDigits(s, 17);
  const sepT = s.charCodeAt(10);
  if (
    y0 < 0 || y1 < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0 ||
    s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 ||
    (sepT !== 84 && sepT !== 116 && sepT !== 32)
  ) {
    return `not an ISO 8601 date-time with offset ('${s}')`;
  }
  const y = y0 * 100 + y1;
  if (y < 1900) return `year out of range ('${s}')`;
  if (mo < 1 || mo > 12) return `month out of range ('${s}')`;
  if (d < 1 || d > daysInMonth(y, mo)) return `day out of range ('${s}')`;
  if (h > 23 || mi > 59 || sec > 59) return `time of day out of range ('${s}')`;
  let i = 19;
  let ms = 0;
  let c = s.charCodeAt(i);
  if (c === 46 || c === 44) {
    i++;
    const fs = i;
    while (i < len) {
      const dc = s.charCodeAt(i) - 48;
      if (dc < 0 || dc > 9) break;
      if (i - fs < 3) ms = ms * 10 + dc;
      i++;
    }
    const n = i - fs;
    if (n === 0 || n > 9) return `bad fractional seconds ('${s}')`;
    if (n === 1) ms *= 100;
    else if (n === 2) ms *= 10;
    c = s.charCodeAt(i);
  }
  let offsetMin: number;
  if ((c === 90 || c === 122) && i === len - 1) {
    offsetMin = 0;
  } else if (c === 43 || c === 45) {
    const rest = len - i - 1;
    const oh = twoDigits(s, i + 1);
    let om = 0;
    if (rest === 5 && s.charCodeAt(i + 3) === 58) om = twoDigits(s, i + 4);
    else if (rest === 4) om = twoDigits(s, i + 3);
    else if (rest !== 2) return `bad UTC offset ('${s}')`;
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return `bad UTC offset ('${s}')`;
    offsetMin = (oh * 60 + om) * (c === 45 ? -1 : 1);
  } else if (i === len) {
    return `missing UTC offset ('${s}')`;
  } else {
    return `not an ISO 8601 date-time with offset ('${s}')`;
  }
  const t = (daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offsetMin * 60) * 1000 + ms;
  if (t > MAX_EPOCH_MS || t < MIN_EPOCH_MS) return `out of range ('${s}')`;
  return t;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

const EPOCH_SECONDS_RE = /^\d{1,12}(?:\.\d{1,3})?$/;
const EPOCH_MILLIS_RE = /^\d{1,15}$/;

/** Epoch seconds (up to 3 fractional digits) or epoch milliseconds → epoch ms, or a reason. */
export function parseEpochTimestamp(s: string, unit: 'seconds' | 'millis'): number | string {
  if (s.length === 0) return 'empty';
  let t: number;
  if (unit === 'seconds') {
    if (!EPOCH_SECONDS_RE.test(s)) return `not epoch seconds ('${s}')`;
    const dot = s.indexOf('.');
    if (dot === -1) t = +s * 1000;
    else t = +s.slice(0, dot) * 1000 + +(s.slice(dot + 1) + '00').slice(0, 3);
  } else {
    if (!EPOCH_MILLIS_RE.test(s)) return `not epoch milliseconds ('${s}')`;
    t = +s;
  }
  if (t > MAX_EPOCH_MS) return `out of range ('${s}')`;
  return t;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL COPY (text format) encoding
// ---------------------------------------------------------------------------------------------

/** Column order of `encodeCopyRow` (after any leading columns of `createCopyRowEncoder`). */
export const WHOLESALE_COPY_COLUMNS = [
  'line_number',
  'record_id',
  'imsi',
  'msisdn',
  'service',
  'started_at',
  'volume',
  'zone',
  'wholesale_amount_micros',
  'currency',
] as const;

export type CopyValue = string | number | bigint | boolean | Date | null | undefined;

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_G = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Escape a text value for COPY text format (backslash, tab, newline, carriage return). */
export function escapeCopyText(s: string): string {
  return COPY_SPECIAL.test(s) ? s.replace(COPY_SPECIAL_G, (c) => COPY_ESCAPES[c]) : s;
}

/** One value in COPY text format: null/undefined → \N, Date → ISO 8601 UTC, text escaped. */
export function encodeCopyValue(v: CopyValue): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'string') return escapeCopyText(v);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return String(v);
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let isoDayStart = NaN;
let isoDayPrefix = '';

/** Epoch ms → "YYYY-MM-DDTHH:MM:SS.mmmZ" (same as Date#toISOString; the date part is cached per day). */
export function formatUtcIso(ms: number): string {
  let tod = ms - isoDayStart;
  if (!(tod >= 0 && tod < 86_400_000)) {
    if (!Number.isInteger(ms)) return new Date(ms).toISOString();
    isoDayStart = Math.floor(ms / 86_400_000) * 86_400_000;
    isoDayPrefix = new Date(isoDayStart).toISOString().slice(0, 11);
    tod = ms - isoDayStart;
  }
  const sec = Math.floor(tod / 1000);
  return (
    isoDayPrefix + PAD2[Math.floor(sec / 3600)] + ':' + PAD2[Math.floor(sec / 60) % 60] + ':' + PAD2[sec % 60] + '.' +
    PAD3[tod - sec * 1000] + 'Z'
  );
}

/**
 * One line (with its trailing '\n') of COPY text format for `WHOLESALE_COPY_COLUMNS`:
 * `COPY staging (line_number, record_id, …, currency) FROM STDIN` — started_at as ISO 8601
 * UTC with milliseconds (for a timestamptz column), volume and amount as integer digits.
 */
export function encodeCopyRow(r: WholesaleRecord): string {
  return (
    r.lineNumber +
    '\t' + escapeCopyText(r.recordId) +
    '\t' + r.imsi +
    '\t' + (r.msisdn === null ? '\\N' : r.msisdn) +
    '\t' + r.service +
    '\t' + formatUtcIso(r.startedAtMs) +
    '\t' + r.volume +
    '\t' + escapeCopyText(r.zone) +
    '\t' + r.wholesaleAmountMicros +
    '\t' + r.currency +
    '\n'
  );
}

/**
 * An encoder that puts fixed leading values (e.g. the import id) before the record's columns;
 * the prefix is encoded once.
 */
export function createCopyRowEncoder(leading: readonly CopyValue[] = []): (r: WholesaleRecord) => string {
  if (leading.length === 0) return encodeCopyRow;
  const prefix = leading.map(encodeCopyValue).join('\t') + '\t';
  return (r) => prefix + encodeCopyRow(r);
}

// ---------------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------------

const LF = 10;
const CR = 13;
const QUOTE = 34;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const IMSI_RE = /^\d{6,15}$/;
const MSISDN_RE = /^\+?\d{1,15}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;

export type WholesaleInput = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

/** Parse a wholesale file. The result can be iterated once (items or batches). */
export function parseWholesaleFile(input: WholesaleInput, options: WholesaleParseOptions = {}): WholesaleFileParse {
  return new WholesaleFileParse(input, options);
}

/** Resolved column indices etc. for the hot loop. */
interface Layout {
  fieldCount: number;
  iRecordId: number;
  iImsi: number;
  iMsisdn: number; // -1 = no column
  iService: number;
  iStartedAt: number;
  iVolume: number;
  iZone: number;
  iAmount: number;
  iCurrency: number; // -1 = fixed currency
}

interface QuotedRecord {
  fields: string[];
  /** Index just after the record's line ending. */
  next: number;
  /** Index of the record's end (before CR LF). */
  end: number;
  /** Line breaks inside quoted fields. */
  innerLines: number;
  error: string | null;
}

export class WholesaleFileParse implements AsyncIterable<WholesaleParseItem> {
  /** Live counts (final once iteration has ended). */
  readonly stats: WholesaleParseStats = { lines: 0, records: 0, rejected: 0, emptyLines: 0 };

  private readonly mapping: WholesaleColumnMapping;
  private readonly delimiter: string;
  private readonly delimCode: number;
  private readonly timestampFormat: WholesaleTimestampFormat;
  private readonly amountScale: number;
  private readonly decimalSeparator: '.' | ',';
  private readonly fixedCurrency: string | null;
  private readonly services: Map<string, WholesaleService>;
  private readonly rejectEmptyLines: boolean;
  private readonly maxRecordLength: number;
  private readonly maxRawLength: number;

  private started = false;
  private readonly scratch: string[] = [];
  private carry = '';
  private bomChecked = false;
  private header: string[] | null = null;
  private layout: Layout | null = null;
  private columnOf: Record<WholesaleField, string | null> | null = null;

  private readonly rawHash: Hash = createHash('sha256');
  private contentHash: Hash | null = null;
  private rawBytes = 0;
  private contentBytes = 0;
  private compression: 'gzip' | 'none' = 'none';
  private result: WholesaleParseSummary | null = null;

  constructor(
    private readonly input: WholesaleInput,
    options: WholesaleParseOptions,
  ) {
    const mapping = options.mapping ? parseWholesaleColumnMapping(options.mapping) : CANONICAL_WHOLESALE_MAPPING;
    this.mapping = mapping;
    this.delimiter = mapping.delimiter ?? ',';
    this.delimCode = this.delimiter.charCodeAt(0);
    this.timestampFormat = mapping.timestampFormat ?? 'iso8601';
    this.amountScale = mapping.amountScale ?? 0;
    this.decimalSeparator = mapping.decimalSeparator ?? '.';
    this.fixedCurrency = mapping.columns.currency === undefined ? (mapping.currency ?? null) : null;
    this.services = new Map<string, WholesaleService>();
    for (const s of WHOLESALE_SERVICES) this.services.set(s, s);
    for (const [code, s] of Object.entries(mapping.serviceValues ?? {})) this.services.set(code, s);
    this.rejectEmptyLines = options.emptyLines === 'reject';
    this.maxRecordLength = options.maxRecordLength ?? 65536;
    this.maxRawLength = options.maxRawLength ?? 1024;
  }

  /** Hashes, sizes and final counts; throws `NOT_FINISHED` before the iteration has ended. */
  summary(): WholesaleParseSummary {
    if (!this.result) throw new WholesaleFileError('NOT_FINISHED', 'the wholesale file has not been read to the end');
    return this.result;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WholesaleParseItem> {
    for await (const batch of this.batches()) {
      for (const item of batch) yield item;
    }
  }

  /** Items grouped per input chunk (never empty arrays): the fast way to consume the file. */
  async *batches(): AsyncGenerator<WholesaleParseItem[], void, undefined> {
    if (this.started) throw new Error('a WholesaleFileParse can be iterated only once');
    this.started = true;
    const decoder = new StringDecoder('utf8');
    for await (const chunk of this.contentChunks()) {
      this.contentBytes += chunk.length;
      this.contentHash?.update(chunk);
      const out: WholesaleParseItem[] = [];
      this.consume(decoder.write(chunk), false, out);
      if (out.length > 0) yield out;
    }
    const out: WholesaleParseItem[] = [];
    this.consume(decoder.end(), true, out);
    if (this.header === null) throw new WholesaleFileError('EMPTY_FILE', 'the wholesale file is empty (no header row)');
    if (out.length > 0) yield out;
    const raw = this.rawHash.digest('hex');
    this.result = {
      ...this.stats,
      rawSha256: raw,
      contentSha256: this.contentHash ? this.contentHash.digest('hex') : raw,
      compression: this.compression,
      rawBytes: this.rawBytes,
      contentBytes: this.contentBytes,
      header: this.header,
    };
  }

  /** Raw bytes → (hashed) → gunzip if the magic bytes say so → content bytes. */
  private async *contentChunks(): AsyncGenerator<Buffer> {
    const source = this.input;
    const it: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array | string> =
      Symbol.asyncIterator in source
        ? (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]()
        : (source as Iterable<Uint8Array | string>)[Symbol.iterator]();
    const next = async (): Promise<Buffer | null> => {
      for (;;) {
        const r = await it.next();
        if (r.done) return null;
        const b = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
        if (b.length === 0) continue;
        this.rawHash.update(b);
        this.rawBytes += b.length;
        return b;
      }
    };
    let finished = false;
    try {
      // Peek at least two bytes for the gzip magic number.
      const head: Buffer[] = [];
      let headLen = 0;
      while (headLen < 2) {
        const b = await next();
        if (b === null) break;
        head.push(b);
        headLen += b.length;
      }
      const first = head.length === 1 ? head[0] : Buffer.concat(head);
      if (!(first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b)) {
        if (first.length > 0) yield first;
        for (let b = await next(); b !== null; b = await next()) yield b;
        finished = true;
        return;
      }
      this.compression = 'gzip';
      this.contentHash = createHash('sha256');
      async function* compressed(): AsyncGenerator<Buffer> {
        yield first;
        for (let b = await next(); b !== null; b = await next()) yield b;
      }
      const gunzip = createGunzip({ chunkSize: 64 * 1024 });
      pipeline(Readable.from(compressed(), { objectMode: false }), gunzip, () => undefined);
      try {
        for await (const c of gunzip) yield c as Buffer;
      } catch (err) {
        if ((err as { code?: string }).code?.startsWith('Z_')) {
          throw new WholesaleFileError('DECOMPRESSION_FAILED', `gzip: ${(err as Error).message}`);
        }
        throw err;
      }
      finished = true;
    } finally {
      if (!finished) await it.return?.();
    }
  }

  /** Cut `text` (appended to the carried-over partial record) into records. */
  private consume(text: string, final: boolean, out: WholesaleParseItem[]): void {
    if (!this.bomChecked && text.length > 0) {
      this.bomChecked = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const buf = this.carry.length === 0 ? text : this.carry + text;
    const len = buf.length;
    const delim = this.delimiter;
    const f = this.scratch;
    let pos = 0;
    let q = buf.indexOf('"');
    let d = buf.indexOf(delim); // next delimiter at or after the current field (cached: O(n) overall)
    while (pos < len) {
      let nl = buf.indexOf('\n', pos);
      if (q !== -1 && q < pos) q = buf.indexOf('"', pos);
      if (q === -1 || (nl !== -1 && q > nl)) {
        // Fast path: the line has no quote.
        if (nl === -1) {
          if (!final) break;
          nl = len;
        }
        let end = nl;
        if (end > pos && buf.charCodeAt(end - 1) === CR) end--;
        const lineNumber = ++this.stats.lines;
        if (end === pos) {
          this.emptyLine(lineNumber, out);
        } else {
          let k = 0;
          let s = pos;
          for (;;) {
            if (d !== -1 && d < s) d = buf.indexOf(delim, s);
            if (d === -1 || d >= end) {
              f[k++] = buf.slice(s, end);
              break;
            }
            f[k++] = buf.slice(s, d);
            s = d + 1;
          }
          this.row(f, k, lineNumber, buf, pos, end, null, out);
        }
        pos = nl + 1;
      } else {
        const rec = this.quotedRecord(buf, pos, final);
        if (rec === null) break;
        const lineNumber = this.stats.lines + 1;
        this.stats.lines += 1 + rec.innerLines;
        this.row(rec.fields, rec.fields.length, lineNumber, buf, pos, rec.end, rec.error, out);
        pos = rec.next;
      }
    }
    this.carry = pos < len ? buf.slice(pos) : '';
    if (this.carry.length > this.maxRecordLength) {
      throw new WholesaleFileError(
        'RECORD_TOO_LONG',
        `line ${this.stats.lines + 1}: record longer than ${this.maxRecordLength} characters (unterminated quote?)`,
        { lineNumber: this.stats.lines + 1 },
      );
    }
  }

  /** RFC 4180 record starting at `pos` (contains a quote); null = needs more input. */
  private quotedRecord(buf: string, pos: number, final: boolean): QuotedRecord | null {
    const len = buf.length;
    const delim = this.delimCode;
    const fields: string[] = [];
    let innerLines = 0;
    let error: string | null = null;
    let i = pos;
    for (;;) {
      let prefix = '';
      if (i < len && buf.charCodeAt(i) === QUOTE) {
        const open = i;
        let seg = i + 1;
        let j = seg;
        let closed = false;
        for (;;) {
          const nq = buf.indexOf('"', j);
          if (nq === -1 || (nq + 1 >= len && !final)) {
            if (!final) return null;
            prefix += buf.slice(seg);
            i = len;
            break;
          }
          if (nq + 1 < len && buf.charCodeAt(nq + 1) === QUOTE) {
            prefix += buf.slice(seg, nq + 1);
            j = seg = nq + 2;
            continue;
          }
          prefix += buf.slice(seg, nq);
          i = nq + 1;
          closed = true;
          break;
        }
        innerLines += countLineBreaks(buf, open, i);
        if (!closed) {
          error ??= `unterminated quoted field ${fields.length + 1}`;
          fields.push(prefix);
          return { fields, next: len, end: len, innerLines, error };
        }
        if (i >= len) {
          fields.push(prefix);
          return { fields, next: len, end: len, innerLines, error };
        }
        const c = buf.charCodeAt(i);
        if (c === delim) {
          fields.push(prefix);
          i++;
          continue;
        }
        if (c === LF) {
          fields.push(prefix);
          return { fields, next: i + 1, end: i, innerLines, error };
        }
        if (c === CR) {
          if (i + 1 >= len && !final) return null;
          if (i + 1 >= len || buf.charCodeAt(i + 1) === LF) {
            fields.push(prefix);
            return { fields, next: Math.min(i + 2, len), end: i, innerLines, error };
          }
        }
        error ??= `unexpected text after the closing quote of field ${fields.length + 1}`;
        // fall through: the rest of the field is read as unquoted text
      }
      let j = i;
      for (; j < len; j++) {
        const c = buf.charCodeAt(j);
        if (c === delim || c === LF) break;
        if (c === QUOTE) error ??= `quote inside unquoted field ${fields.length + 1}`;
      }
      if (j >= len && !final) return null;
      if (j >= len || buf.charCodeAt(j) === LF) {
        const end = j > i && buf.charCodeAt(j - 1) === CR ? j - 1 : j;
        fields.push(prefix + buf.slice(i, end));
        return { fields, next: j >= len ? len : j + 1, end, innerLines, error };
      }
      fields.push(prefix + buf.slice(i, j));
      i = j + 1;
    }
  }

  private emptyLine(lineNumber: number, out: WholesaleParseItem[]): void {
    if (this.header === null || !this.rejectEmptyLines) {
      this.stats.emptyLines++;
      return;
    }
    this.stats.rejected++;
    out.push({
      kind: 'rejected',
      lineNumber,
      reason: 'empty line',
      issues: [{ field: null, column: null, message: 'empty line' }],
      raw: '',
    });
  }

  /** `f[0..n)` are the row's fields (`f` may be a reused scratch array: copy what you keep). */
  private row(
    f: string[],
    n: number,
    lineNumber: number,
    buf: string,
    start: number,
    end: number,
    syntaxError: string | null,
    out: WholesaleParseItem[],
  ): void {
    const L = this.layout;
    if (L === null) {
      this.setHeader(f.slice(0, n), lineNumber, syntaxError);
      return;
    }
    if (syntaxError !== null) {
      this.reject(out, lineNumber, buf, start, end, [{ field: null, column: null, message: syntaxError }]);
      return;
    }
    if (n !== L.fieldCount) {
      this.reject(out, lineNumber, buf, start, end, [
        { field: null, column: null, message: `expected ${L.fieldCount} fields, got ${n}` },
      ]);
      return;
    }
    const recordId = f[L.iRecordId];
    const imsi = f[L.iImsi];
    let msisdn: string | null = L.iMsisdn < 0 ? null : f[L.iMsisdn];
    const service = this.services.get(f[L.iService]);
    const ts = f[L.iStartedAt];
    const startedAtMs =
      this.timestampFormat === 'iso8601'
        ? parseIsoTimestamp(ts)
        : parseEpochTimestamp(ts, this.timestampFormat === 'epoch-seconds' ? 'seconds' : 'millis');
    const volume = parseVolume(f[L.iVolume]);
    const zone = f[L.iZone];
    const amount = parseDecimalMicros(f[L.iAmount], this.amountScale, this.decimalSeparator);
    const currency = L.iCurrency < 0 ? (this.fixedCurrency as string) : f[L.iCurrency];
    if (msisdn !== null) {
      if (msisdn.length === 0) msisdn = null;
      else if (msisdn.charCodeAt(0) === 43) msisdn = msisdn.slice(1);
    }
    if (
      recordId.length === 0 || recordId.length > 128 || CONTROL_CHARS.test(recordId) ||
      !IMSI_RE.test(imsi) ||
      (msisdn !== null && !MSISDN_RE.test(f[L.iMsisdn])) ||
      service === undefined ||
      typeof startedAtMs !== 'number' ||
      typeof volume !== 'bigint' ||
      zone.length === 0 || zone.length > 64 || CONTROL_CHARS.test(zone) ||
      typeof amount !== 'bigint' ||
      !CURRENCY_RE.test(currency)
    ) {
      this.reject(out, lineNumber, buf, start, end, this.fieldIssues(f, L, startedAtMs, volume, amount));
      return;
    }
    this.stats.records++;
    out.push({
      kind: 'record',
      lineNumber,
      recordId,
      imsi,
      msisdn,
      service,
      startedAtMs,
      volume,
      zone,
      wholesaleAmountMicros: amount,
      currency,
    });
  }

  /** The slow path: say exactly what is wrong with each field of a row. */
  private fieldIssues(
    f: string[],
    L: Layout,
    startedAtMs: number | string,
    volume: bigint | string,
    amount: bigint | string,
  ): WholesaleFieldIssue[] {
    const issues: WholesaleFieldIssue[] = [];
    const cols = this.columnOf as Record<WholesaleField, string | null>;
    const add = (field: WholesaleField, message: string) => issues.push({ field, column: cols[field], message });
    const text = (field: 'recordId' | 'zone', v: string, max: number) => {
      if (v.length === 0) add(field, 'empty');
      else if (v.length > max) add(field, `longer than ${max} characters`);
      else if (CONTROL_CHARS.test(v)) add(field, 'contains control characters');
    };
    text('recordId', f[L.iRecordId], 128);
    const imsi = f[L.iImsi];
    if (!IMSI_RE.test(imsi)) add('imsi', imsi.length === 0 ? 'empty' : `not 6 to 15 digits ('${imsi}')`);
    if (L.iMsisdn >= 0) {
      const m = f[L.iMsisdn];
      if (m.length > 0 && !MSISDN_RE.test(m)) add('msisdn', `not an E.164 number: optional '+' and 1 to 15 digits ('${m}')`);
    }
    const s = f[L.iService];
    if (!this.services.has(s)) {
      add('service', s.length === 0 ? 'empty' : `unknown service '${s}' (expected one of ${[...this.services.keys()].join(', ')})`);
    }
    if (typeof startedAtMs === 'string') add('startedAt', startedAtMs);
    if (typeof volume === 'string') add('volume', volume);
    text('zone', f[L.iZone], 64);
    if (typeof amount === 'string') add('wholesaleAmount', amount);
    if (L.iCurrency >= 0) {
      const c = f[L.iCurrency];
      if (!CURRENCY_RE.test(c)) add('currency', c.length === 0 ? 'empty' : `not an ISO 4217 code ('${c}')`);
    }
    return issues;
  }

  private reject(
    out: WholesaleParseItem[],
    lineNumber: number,
    buf: string,
    start: number,
    end: number,
    issues: WholesaleFieldIssue[],
  ): void {
    this.stats.rejected++;
    const rawEnd = Math.min(end, start + this.maxRawLength);
    out.push({
      kind: 'rejected',
      lineNumber,
      reason: issues.map((i) => (i.column ?? i.field ? `${i.column ?? i.field}: ${i.message}` : i.message)).join('; '),
      issues,
      raw: buf.slice(start, rawEnd),
    });
  }

  private setHeader(fields: string[], lineNumber: number, syntaxError: string | null): void {
    if (syntaxError !== null) {
      throw new WholesaleFileError('MALFORMED_HEADER', `line ${lineNumber}: malformed header: ${syntaxError}`, { lineNumber });
    }
    const names = fields.map((h) => h.trim().toLowerCase());
    const cols = this.mapping.columns;
    const columnOf = {} as Record<WholesaleField, string | null>;
    const index = {} as Record<WholesaleField, number>;
    const missing: string[] = [];
    const duplicate: string[] = [];
    for (const field of Object.keys(cols) as WholesaleField[]) {
      const name = cols[field];
      columnOf[field] = name ?? null;
      if (name === undefined) {
        index[field] = -1;
        continue;
      }
      const key = name.trim().toLowerCase();
      const at = names.indexOf(key);
      if (at === -1) missing.push(name);
      else if (names.indexOf(key, at + 1) !== -1) duplicate.push(name);
      index[field] = at;
    }
    for (const f of ['msisdn', 'currency'] as const) {
      if (!(f in index)) {
        index[f] = -1;
        columnOf[f] = null;
      }
    }
    if (missing.length > 0) {
      throw new WholesaleFileError(
        'HEADER_MISSING_COLUMNS',
        `line ${lineNumber}: the header lacks column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}` +
          ` (found: ${fields.map((h) => `'${h}'`).join(', ')}; delimiter '${this.delimiter === '\t' ? '\\t' : this.delimiter}')`,
        { lineNumber, missingColumns: missing },
      );
    }
    if (duplicate.length > 0) {
      throw new WholesaleFileError(
        'HEADER_DUPLICATE_COLUMNS',
        `line ${lineNumber}: the header has column${duplicate.length > 1 ? 's' : ''} ${duplicate.map((m) => `'${m}'`).join(', ')} more than once`,
        { lineNumber, duplicateColumns: duplicate },
      );
    }
    this.header = fields;
    this.columnOf = columnOf;
    this.layout = {
      fieldCount: fields.length,
      iRecordId: index.recordId,
      iImsi: index.imsi,
      iMsisdn: index.msisdn,
      iService: index.service,
      iStartedAt: index.startedAt,
      iVolume: index.volume,
      iZone: index.zone,
      iAmount: index.wholesaleAmount,
      iCurrency: index.currency,
    };
  }
}

function countLineBreaks(s: string, from: number, to: number): number {
  let n = 0;
  for (let k = s.indexOf('\n', from); k !== -1 && k < to; k = s.indexOf('\n', k + 1)) n++;
  return n;
}

/** Read a whole (small) file into arrays; for tests and tools, not for 10M-row files. */
export async function parseWholesaleFileToArrays(
  input: WholesaleInput,
  options: WholesaleParseOptions = {},
): Promise<{ records: WholesaleRecord[]; rejected: WholesaleRejectedRow[]; summary: WholesaleParseSummary }> {
  const parse = parseWholesaleFile(input, options);
  const records: WholesaleRecord[] = [];
  const rejected: WholesaleRejectedRow[] = [];
  for await (const batch of parse.batches()) {
    for (const item of batch) {
      if (item.kind === 'record') records.push(item);
      else rejected.push(item);
    }
  }
  return { records, rejected, summary: parse.summary() };
}
