import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  CANONICAL_WHOLESALE_HEADER,
  INT64_MAX,
  WholesaleFileError,
  createCopyRowEncoder,
  encodeCopyRow,
  formatUtcIso,
  parseDecimalMicros,
  parseIsoTimestamp,
  parseWholesaleColumnMapping,
  parseWholesaleFile,
  parseWholesaleFileToArrays,
} from './wholesale-file.parser';
import type { WholesaleColumnMapping, WholesaleParseItem, WholesaleParseOptions, WholesaleRecord } from './wholesale-file.parser';

const HEADER = CANONICAL_WHOLESALE_HEADER.join(',');
const ROW = 'R1,262011234567890,4915112345678,data,2025-03-01T10:00:00+01:00,1048576,home,0.001024,EUR';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Parse text given as chunks (strings or buffers). */
function parse(chunks: (string | Buffer)[] | string, options?: WholesaleParseOptions) {
  return parseWholesaleFileToArrays(typeof chunks === 'string' ? [chunks] : chunks, options);
}

async function expectFileError(p: Promise<unknown>, code: string): Promise<WholesaleFileError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WholesaleFileError);
  expect((err as WholesaleFileError).code).toBe(code);
  return err as WholesaleFileError;
}

describe('canonical file', () => {
  it('normalises a record', async () => {
    const { records, rejected, summary } = await parse(`${HEADER}\n${ROW}\n`);
    expect(rejected).toEqual([]);
    expect(records).toEqual<WholesaleRecord[]>([
      {
        kind: 'record',
        lineNumber: 2,
        recordId: 'R1',
        imsi: '262011234567890',
        msisdn: '4915112345678',
        service: 'data',
        startedAtMs: Date.UTC(2025, 2, 1, 9, 0, 0),
        volume: 1048576n,
        zone: 'home',
        wholesaleAmountMicros: 1024n,
        currency: 'EUR',
      },
    ]);
    expect(summary).toMatchObject({ lines: 2, records: 1, rejected: 0, emptyLines: 0, compression: 'none' });
    expect(summary.header).toEqual([...CANONICAL_WHOLESALE_HEADER]);
  });

  it('normalises msisdn: "+" removed, empty → null', async () => {
    const { records } = await parse(
      `${HEADER}\nA,262011234567890,+4915112345678,sms,2025-03-01T10:00:00Z,1,home,0.01,EUR\n` +
        `B,262011234567890,,sms,2025-03-01T10:00:00Z,1,home,0.01,EUR\n`,
    );
    expect(records.map((r) => r.msisdn)).toEqual(['4915112345678', null]);
  });

  it('yields the same items one by one and in batches; summary only at the end; one pass only', async () => {
    const text = `${HEADER}\n${ROW}\nbad\n${ROW.replace('R1', 'R2')}\n`;
    const items: WholesaleParseItem[] = [];
    const p = parseWholesaleFile([text]);
    expect(() => p.summary()).toThrow(WholesaleFileError);
    for await (const item of p) items.push(item);
    expect(items.map((i) => [i.kind, i.lineNumber])).toEqual([
      ['record', 2],
      ['rejected', 3],
      ['record', 4],
    ]);
    expect(p.stats).toEqual({ lines: 4, records: 2, rejected: 1, emptyLines: 0 });
    expect(p.summary().records).toBe(2);
    await expect(async () => {
      for await (const _ of p.batches()) void _;
    }).rejects.toThrow(/only once/);
  });

  it('a header without rows (and without a final newline) is an empty, valid file', async () => {
    const { records, rejected, summary } = await parse(HEADER);
    expect([records, rejected]).toEqual([[], []]);
    expect(summary).toMatchObject({ lines: 1, records: 0, rejected: 0 });
  });

  it('header names match case-insensitively and ignore surrounding blanks; extra columns are ignored', async () => {
    const header = ' Record_ID ,IMSI,msisdn,Service,started_at,volume,zone,wholesale_amount,currency,extra';
    const { records } = await parse(`${header}\n${ROW},whatever\n`);
    expect(records).toHaveLength(1);
  });

  it('reads a file stream from disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wholesale-parser-'));
    try {
      const path = join(dir, 'm.csv');
      await writeFile(path, `${HEADER}\n${ROW}\n`);
      const { records, summary } = await parseWholesaleFileToArrays(createReadStream(path, { highWaterMark: 7 }));
      expect(records).toHaveLength(1);
      expect(summary.rawSha256).toBe(sha256(`${HEADER}\n${ROW}\n`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('malformed rows are rejected with line number and reason', () => {
  // Each case: one row placed at line 3 between two valid rows (lines 2 and 4).
  const base = ROW.split(',');
  const withField = (i: number, v: string) => base.map((x, k) => (k === i ? v : x)).join(',');
  const F = { recordId: 0, imsi: 1, msisdn: 2, service: 3, startedAt: 4, volume: 5, zone: 6, amount: 7, currency: 8 };
  const cases: Array<[string, string, string | null, RegExp]> = [
    ['too few fields', base.slice(0, 8).join(','), null, /expected 9 fields, got 8/],
    ['too many fields', ROW + ',x', null, /expected 9 fields, got 10/],
    ['blank line with spaces', '   ', null, /expected 9 fields, got 1/],
    ['empty record id', withField(F.recordId, ''), 'record_id', /empty/],
    ['record id too long', withField(F.recordId, 'x'.repeat(129)), 'record_id', /longer than 128/],
    ['imsi with letters', withField(F.imsi, '26201ABC'), 'imsi', /not 6 to 15 digits \('26201ABC'\)/],
    ['imsi too long', withField(F.imsi, '2620112345678901'), 'imsi', /not 6 to 15 digits/],
    ['empty imsi', withField(F.imsi, ''), 'imsi', /empty/],
    ['msisdn with letters', withField(F.msisdn, '49151abc'), 'msisdn', /not an E\.164 number/],
    ['unknown service', withField(F.service, 'mms'), 'service', /unknown service 'mms'/],
    ['service in wrong case', withField(F.service, 'DATA'), 'service', /unknown service 'DATA'/],
    ['time without offset', withField(F.startedAt, '2025-03-01T10:00:00'), 'started_at', /missing UTC offset/],
    ['date that does not exist', withField(F.startedAt, '2025-02-29T10:00:00Z'), 'started_at', /day out of range/],
    ['month 13', withField(F.startedAt, '2025-13-01T10:00:00Z'), 'started_at', /month out of range/],
    ['hour 24', withField(F.startedAt, '2025-03-01T24:00:00Z'), 'started_at', /time of day out of range/],
    ['not a date', withField(F.startedAt, 'yesterday'), 'started_at', /not an ISO 8601 date-time/],
    ['epoch in ISO column', withField(F.startedAt, '1740819600'), 'started_at', /not an ISO 8601/],
    ['bad offset', withField(F.startedAt, '2025-03-01T10:00:00+1:00'), 'started_at', /bad UTC offset/],
    ['empty time', withField(F.startedAt, ''), 'started_at', /empty/],
    ['negative volume', withField(F.volume, '-5'), 'volume', /must not be negative/],
    ['decimal volume', withField(F.volume, '1.5'), 'volume', /not a non-negative integer/],
    ['empty volume', withField(F.volume, ''), 'volume', /empty/],
    ['volume beyond int64', withField(F.volume, '9223372036854775808'), 'volume', /out of range/],
    ['empty zone', withField(F.zone, ''), 'zone', /empty/],
    ['amount with exponent', withField(F.amount, '1e3'), 'wholesale_amount', /exponent notation is not allowed \('1e3'\)/],
    ['amount with 7 decimals', withField(F.amount, '1.1234567'), 'wholesale_amount', /more than 6 fractional digits/],
    ['amount with plus sign', withField(F.amount, '+1.00'), 'wholesale_amount', /only a single leading '-'/],
    ['amount empty', withField(F.amount, ''), 'wholesale_amount', /empty/],
    ['lowercase currency', withField(F.currency, 'eur'), 'currency', /not an ISO 4217 code \('eur'\)/],
    ['empty currency', withField(F.currency, ''), 'currency', /empty/],
    ['quote inside unquoted field', withField(F.zone, 'ho"me'), null, /quote inside unquoted field 7/],
    ['text after closing quote', withField(F.zone, '"home"x'), null, /unexpected text after the closing quote of field 7/],
  ];

  it.each(cases)('%s', async (_name, bad, column, message) => {
    const text = `${HEADER}\n${ROW}\n${bad}\n${ROW.replace('R1', 'R3')}\n`;
    const { records, rejected, summary } = await parse(text);
    expect(records.map((r) => [r.recordId, r.lineNumber])).toEqual([
      ['R1', 2],
      ['R3', 4],
    ]);
    expect(rejected).toHaveLength(1);
    const [r] = rejected;
    expect(r.lineNumber).toBe(3);
    expect(r.raw).toBe(bad);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0].column).toBe(column);
    expect(r.issues[0].message).toMatch(message);
    expect(r.reason).toMatch(message);
    if (column) expect(r.reason.startsWith(`${column}: `)).toBe(true);
    expect(summary).toMatchObject({ records: 2, rejected: 1, lines: 4 });
  });

  it('lists every problem of a row, naming logical field and column', async () => {
    const { rejected } = await parse(`${HEADER}\nR1,12,4915,voice,2025-03-01 10:00:00,x,home,1.0000001,EURO\n`);
    expect(rejected[0].issues.map((i) => [i.field, i.column])).toEqual([
      ['imsi', 'imsi'],
      ['startedAt', 'started_at'],
      ['volume', 'volume'],
      ['wholesaleAmount', 'wholesale_amount'],
      ['currency', 'currency'],
    ]);
    expect(rejected[0].reason).toContain("imsi: not 6 to 15 digits ('12'); started_at: missing UTC offset");
  });

  it('a row of only delimiters: every required field is empty (msisdn may be)', async () => {
    const { rejected } = await parse(`${HEADER}\n,,,,,,,,\n`);
    expect(rejected[0].lineNumber).toBe(2);
    expect(rejected[0].issues.map((i) => i.column)).toEqual([
      'record_id', 'imsi', 'service', 'started_at', 'volume', 'zone', 'wholesale_amount', 'currency',
    ]);
    expect(rejected[0].issues.every((i) => i.message === 'empty')).toBe(true);
  });

  it('an unterminated quote at the end of the file rejects that row', async () => {
    const { records, rejected } = await parse(`${HEADER}\n${ROW}\nR9,"262011234567890,x\nmore\n`);
    expect(records).toHaveLength(1);
    expect(rejected).toMatchObject([{ lineNumber: 3, reason: 'unterminated quoted field 2' }]);
  });

  it('cuts the raw text of a rejection', async () => {
    const { rejected } = await parse(`${HEADER}\n${'x'.repeat(5000)}\n`, { maxRawLength: 10 });
    expect(rejected[0].raw).toBe('x'.repeat(10));
  });
});

describe('exact amounts', () => {
  const ok: Array<[string, bigint]> = [
    ['0.000001', 1n],
    ['12.5', 12_500_000n],
    ['-3.25', -3_250_000n],
    ['0', 0n],
    ['-0', 0n],
    ['007.10', 7_100_000n],
    ['0.1', 100_000n],
    ['123456789012.123456', 123456789012123456n],
    ['9223372036854.775807', INT64_MAX],
    ['-9223372036854.775807', -INT64_MAX],
  ];
  it.each(ok)('%s → %p micros', (s, micros) => {
    expect(parseDecimalMicros(s)).toBe(micros);
  });

  const bad: Array<[string, RegExp]> = [
    ['1e3', /exponent/],
    ['1E-3', /exponent/],
    ['1.1234567', /more than 6 fractional digits/],
    ['', /empty/],
    ['+1', /single leading '-'/],
    ['--1', /single leading '-'/],
    ['1-', /single leading '-'/],
    ['-', /no digits before/],
    ['.5', /no digits before/],
    ['5.', /no digits after/],
    ['1.2.3', /more than one decimal separator/],
    ['1,5', /decimal separator is '.'/],
    ['1 000', /blanks/],
    [' 1', /blanks/],
    ['1,000.00', /decimal separator is '.'/],
    ['NaN', /not a decimal number/],
    ['Infinity', /not a decimal number/],
    ['0x10', /not a decimal number/],
    ['9223372036854.775808', /out of range/],
  ];
  it.each(bad)('%p is refused', (s, reason) => {
    const r = parseDecimalMicros(s);
    expect(typeof r).toBe('string');
    expect(r).toMatch(reason);
  });

  it('amountScale and decimal comma', () => {
    expect(parseDecimalMicros('1250', 2)).toBe(12_500_000n); // cents
    expect(parseDecimalMicros('1234.5', 2)).toBe(12_345_000n);
    expect(parseDecimalMicros('1234.56789', 2)).toMatch(/more than 4 fractional digits/);
    expect(parseDecimalMicros('42', 6)).toBe(42n);
    expect(parseDecimalMicros('4.2', 6)).toMatch(/more than 0 fractional digits/);
    expect(parseDecimalMicros('12,50', 0, ',')).toBe(12_500_000n);
    expect(parseDecimalMicros('12.50', 0, ',')).toMatch(/decimal separator is ','/);
  });

  it('round-trips every micro amount exactly (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -INT64_MAX, max: INT64_MAX }), (m) => {
        const a = m < 0n ? -m : m;
        const s = `${m < 0n ? '-' : ''}${a / 1_000_000n}.${(a % 1_000_000n).toString().padStart(6, '0')}`;
        expect(parseDecimalMicros(s)).toBe(m);
      }),
    );
  });
});

describe('timestamps', () => {
  const ok: Array<[string, number]> = [
    ['2025-03-01T10:00:00Z', Date.UTC(2025, 2, 1, 10)],
    ['2025-03-01t10:00:00z', Date.UTC(2025, 2, 1, 10)],
    ['2025-03-01 10:00:00+00:00', Date.UTC(2025, 2, 1, 10)],
    ['2025-03-01T10:00:00-00:00', Date.UTC(2025, 2, 1, 10)],
    ['2025-03-01T10:00:00+01:00', Date.UTC(2025, 2, 1, 9)],
    ['2025-03-01T10:00:00+0530', Date.UTC(2025, 2, 1, 4, 30)],
    ['2025-03-01T10:00:00-03', Date.UTC(2025, 2, 1, 13)],
    ['2025-03-01T00:30:00+01:00', Date.UTC(2025, 1, 28, 23, 30)],
    ['2024-02-29T23:59:59.5Z', Date.UTC(2024, 1, 29, 23, 59, 59, 500)],
    ['2025-03-01T10:00:00.123456789Z', Date.UTC(2025, 2, 1, 10, 0, 0, 123)],
    ['2025-03-01T10:00:00,25Z', Date.UTC(2025, 2, 1, 10, 0, 0, 250)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['1970-01-01T00:00:00Z', 0],
  ];
  it.each(ok)('%s', (s, ms) => expect(parseIsoTimestamp(s)).toBe(ms));

  const bad = [
    '2025-03-01T10:00:00',
    '2025-03-01T10:00Z',
    '2100-02-29T00:00:00Z',
    '2025-03-01T10:00:60Z',
    '2025-03-01T10:00:00.Z',
    '2025-03-01T10:00:00.1234567890Z',
    '2025-03-01T10:00:00+24:00',
    '2025-03-01T10:00:00Zjunk',
    '25-03-01T10:00:00Z',
    '2025/03/01T10:00:00Z',
    '1899-12-31T23:59:59Z',
  ];
  it.each(bad)('%s is refused', (s) => expect(typeof parseIsoTimestamp(s)).toBe('string'));

  it('agrees with Date.parse on random valid instants (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1900, 0, 1) + 86_400_000, max: Date.UTC(9999, 11, 30) }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        (ms, off) => {
          const local = new Date(ms + off * 60_000).toISOString().slice(0, 23);
          const a = Math.abs(off);
          const tz = `${off < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
          expect(parseIsoTimestamp(local + tz)).toBe(ms);
        },
      ),
    );
  });
});

describe('line endings, BOM, quoting, empty lines', () => {
  it('CRLF with a BOM and no final newline', async () => {
    const text = `\uFEFF${HEADER}\r\n${ROW}\r\n${ROW.replace('R1', 'R2')}`;
    const { records, rejected, summary } = await parse(text);
    expect(rejected).toEqual([]);
    expect(records.map((r) => [r.recordId, r.lineNumber, r.currency])).toEqual([
      ['R1', 2, 'EUR'],
      ['R2', 3, 'EUR'],
    ]);
    expect(summary.header[0]).toBe('record_id');
  });

  it('a BOM split across chunks is still skipped', async () => {
    const bytes = Buffer.from(`\uFEFF${HEADER}\n${ROW}\n`);
    const { records } = await parse([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]);
    expect(records).toHaveLength(1);
  });

  it('empty lines are skipped and counted (default)', async () => {
    const { records, rejected, summary } = await parse(`\n${HEADER}\n\n${ROW}\r\n\r\n\n${ROW.replace('R1', 'R2')}\n\n`);
    expect(rejected).toEqual([]);
    expect(records.map((r) => r.lineNumber)).toEqual([4, 7]);
    expect(summary).toMatchObject({ emptyLines: 5, lines: 8 });
  });

  it("empty lines are rejections with emptyLines: 'reject'", async () => {
    const { rejected, summary } = await parse(`${HEADER}\n${ROW}\n\n${ROW}\n`, { emptyLines: 'reject' });
    expect(rejected).toMatchObject([{ lineNumber: 3, reason: 'empty line', raw: '' }]);
    expect(summary.emptyLines).toBe(0);
  });

  it('quoted fields: delimiter, escaped quotes, line breaks (later line numbers stay physical)', async () => {
    const text =
      `"record_id",imsi,msisdn,service,started_at,volume,"zone",wholesale_amount,currency\r\n` +
      `"R""1",262011234567890,,data,2025-03-01T10:00:00Z,1,"roam,eu",1.5,EUR\r\n` +
      `"R\n2",262011234567890,,data,2025-03-01T10:00:00Z,1,"multi\r\nline",1.5,"EUR"\r\n` +
      `R3,262011234567890,,data,2025-03-01T10:00:00Z,1,home,1.5,EUR\r\n` +
      `R4,262011234567890,,data,2025-03-01T10:00:00Z,1,home,1.5,""\n`;
    const { records, rejected, summary } = await parse(text);
    expect(records.map((r) => [r.lineNumber, r.recordId, r.zone])).toEqual([
      [2, 'R"1', 'roam,eu'],
      [6, 'R3', 'home'],
    ]);
    // line breaks are control characters: not allowed in ids and zones
    expect(rejected.map((r) => [r.lineNumber, r.reason])).toEqual([
      [3, 'record_id: contains control characters; zone: contains control characters'],
      [7, 'currency: empty'],
    ]);
    expect(rejected[0].raw).toBe('"R\n2",262011234567890,,data,2025-03-01T10:00:00Z,1,"multi\r\nline",1.5,"EUR"');
    expect(summary.lines).toBe(7);
  });
});

describe('chunking does not change the result', () => {
  const text =
    `\uFEFF${HEADER}\r\n${ROW}\r\n` +
    `"R""2",262011234567890,"+4915112345678",voice,2025-03-01T10:00:00.250+01:00,61,"zürich, 東京",0.000001,CHF\r\n` +
    `\r\nbad,row\r\n"R4",262011234567890,,"sms",2025-03-01T10:00:00Z,1,"a""b",-3.25,EUR`;
  const bytes = Buffer.from(text, 'utf8');

  it('any split of the bytes gives the same items (property)', async () => {
    const whole = await parse([bytes]);
    expect(whole.records.map((r) => r.recordId)).toEqual(['R1', 'R"2', 'R4']);
    expect(whole.records[1].zone).toBe('zürich, 東京');
    expect(whole.rejected.map((r) => r.lineNumber)).toEqual([5]);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = points.slice(1).map((end, i) => bytes.subarray(points[i], end));
        const r = await parse(chunks);
        expect(r.records).toEqual(whole.records);
        expect(r.rejected).toEqual(whole.rejected);
        expect(r.summary).toEqual(whole.summary);
      }),
      { numRuns: 200 },
    );
  });

  it('one byte at a time', async () => {
    const whole = await parse([bytes]);
    const r = await parse([...bytes].map((b) => Buffer.from([b])));
    expect(r.records).toEqual(whole.records);
    expect(r.rejected).toEqual(whole.rejected);
  });
});

describe('gzip', () => {
  const plain = Buffer.from(`${HEADER}\n${ROW}\n${ROW.replace('R1', 'R2')}\n`);
  const gz = gzipSync(plain);

  it('is detected by magic bytes; hashes of raw and decompressed bytes', async () => {
    const a = await parse([plain]);
    const b = await parse([gz]);
    expect(b.records).toEqual(a.records);
    expect(b.summary.compression).toBe('gzip');
    expect(a.summary.compression).toBe('none');
    expect(b.summary.rawSha256).toBe(sha256(gz));
    expect(b.summary.contentSha256).toBe(sha256(plain));
    expect(a.summary.rawSha256).toBe(sha256(plain));
    expect(a.summary.contentSha256).toBe(a.summary.rawSha256);
    expect(b.summary).toMatchObject({ rawBytes: gz.length, contentBytes: plain.length });
  });

  it('re-compressing the same content keeps contentSha256 (re-import key)', async () => {
    const again = gzipSync(plain, { level: 1 });
    expect(again.equals(gz)).toBe(false);
    const [x, y] = await Promise.all([parse([gz]), parse([again])]);
    expect(x.summary.rawSha256).not.toBe(y.summary.rawSha256);
    expect(x.summary.contentSha256).toBe(y.summary.contentSha256);
  });

  it('works when the magic bytes arrive in separate chunks, from a file named .csv, and from a Readable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wholesale-gz-'));
    try {
      const path = join(dir, 'not-compressed-by-name.csv');
      await writeFile(path, gz);
      const r = await parseWholesaleFileToArrays(createReadStream(path, { highWaterMark: 1 }));
      expect(r.records).toHaveLength(2);
      expect(r.summary.compression).toBe('gzip');
      const plainNamedGz = join(dir, 'plain.csv.gz');
      await writeFile(plainNamedGz, plain);
      expect((await parseWholesaleFileToArrays(createReadStream(plainNamedGz))).summary.compression).toBe('none');
      expect((await parseWholesaleFileToArrays(Readable.from([gz]))).records).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accepts concatenated gzip members', async () => {
    const two = Buffer.concat([gzipSync(`${HEADER}\n${ROW}\n`), gzipSync(`${ROW.replace('R1', 'R2')}\n`)]);
    const r = await parse([two]);
    expect(r.records.map((x) => [x.recordId, x.lineNumber])).toEqual([
      ['R1', 2],
      ['R2', 3],
    ]);
  });

  it('a corrupt or truncated gzip stream is a file error', async () => {
    const corrupt = Buffer.from(gz);
    corrupt[gz.length - 12] ^= 0xff;
    await expectFileError(parse([corrupt]), 'DECOMPRESSION_FAILED');
    await expectFileError(parse([gz.subarray(0, gz.length - 10)]), 'DECOMPRESSION_FAILED');
  });
});

describe('partner column mappings', () => {
  const partner: WholesaleColumnMapping = {
    columns: {
      recordId: 'CDR_ID',
      imsi: 'IMSI',
      service: 'SERVICE_TYPE',
      startedAt: 'START_TIME',
      volume: 'UNITS',
      zone: 'TADIG',
      wholesaleAmount: 'CHARGE',
    },
    serviceValues: { GPRS: 'data', MOC: 'voice', MTC: 'voice', 'SMS-MO': 'sms' },
    delimiter: ';',
    timestampFormat: 'epoch-seconds',
    decimalSeparator: ',',
    currency: 'EUR',
  };

  it('semicolon-separated, epoch seconds, service codes, decimal comma, fixed currency, extra columns', async () => {
    const text =
      'cdr_id;Operator;IMSI;SERVICE_TYPE;START_TIME;UNITS;TADIG;CHARGE\n' +
      'A1;X;262011234567890;GPRS;1740823200;2048;DEUD1;0,002\n' +
      'A2;X;262011234567890;MOC;1740823200.5;61;FRAF1;0,02\n' +
      'A3;X;262011234567890;SMS-MO;1740823200;1;DEUD1;-0,01\n' +
      'A4;X;262011234567890;MMS;2025-03-01T10:00:00Z;1;DEUD1;0,01\n' +
      'A5;X;262011234567890;GPRS;1740823200;1;DEUD1;0.01\n';
    const { records, rejected } = await parse(text, { mapping: partner });
    expect(records).toEqual([
      {
        kind: 'record', lineNumber: 2, recordId: 'A1', imsi: '262011234567890', msisdn: null, service: 'data',
        startedAtMs: 1740823200000, volume: 2048n, zone: 'DEUD1', wholesaleAmountMicros: 2000n, currency: 'EUR',
      },
      {
        kind: 'record', lineNumber: 3, recordId: 'A2', imsi: '262011234567890', msisdn: null, service: 'voice',
        startedAtMs: 1740823200500, volume: 61n, zone: 'FRAF1', wholesaleAmountMicros: 20000n, currency: 'EUR',
      },
      {
        kind: 'record', lineNumber: 4, recordId: 'A3', imsi: '262011234567890', msisdn: null, service: 'sms',
        startedAtMs: 1740823200000, volume: 1n, zone: 'DEUD1', wholesaleAmountMicros: -10000n, currency: 'EUR',
      },
    ]);
    expect(rejected.map((r) => [r.lineNumber, r.issues.map((i) => i.column)])).toEqual([
      [5, ['SERVICE_TYPE', 'START_TIME']],
      [6, ['CHARGE']],
    ]);
    expect(rejected[0].reason).toMatch(/unknown service 'MMS'/);
    expect(rejected[0].reason).toMatch(/START_TIME: not epoch seconds/);
  });

  it('tab-separated, epoch millis, amounts in cents', async () => {
    const mapping: WholesaleColumnMapping = {
      columns: { ...partner.columns, currency: 'CUR' },
      delimiter: '\t',
      timestampFormat: 'epoch-millis',
      amountScale: 2,
    };
    const text = 'CDR_ID\tIMSI\tSERVICE_TYPE\tSTART_TIME\tUNITS\tTADIG\tCHARGE\tCUR\nB1\t262011234567890\tdata\t1740823200123\t5\tDEUD1\t1250\tGBP\n';
    const { records } = await parse(text, { mapping });
    expect(records[0]).toMatchObject({ startedAtMs: 1740823200123, wholesaleAmountMicros: 12_500_000n, currency: 'GBP' });
  });

  it('missing columns → one error naming all of them', async () => {
    const err = await expectFileError(parse('CDR_ID;SERVICE_TYPE;START_TIME;UNITS;CHARGE\n', { mapping: partner }), 'HEADER_MISSING_COLUMNS');
    expect(err.details.missingColumns).toEqual(['IMSI', 'TADIG']);
    expect(err.message).toMatch(/line 1: the header lacks columns 'IMSI', 'TADIG'/);
  });

  it('a canonical file read with the wrong delimiter says which delimiter was expected', async () => {
    const err = await expectFileError(parse(`${HEADER}\n${ROW}\n`, { mapping: partner }), 'HEADER_MISSING_COLUMNS');
    expect(err.message).toContain("delimiter ';'");
  });

  it('duplicate header columns are refused', async () => {
    await expectFileError(parse(`${HEADER},imsi\n`), 'HEADER_DUPLICATE_COLUMNS');
  });

  it('an empty file is refused', async () => {
    await expectFileError(parse(''), 'EMPTY_FILE');
    await expectFileError(parse('\n\r\n'), 'EMPTY_FILE');
  });

  it('invalid mappings are refused', () => {
    expect(() => parseWholesaleColumnMapping({ ...partner, delimiter: ',', decimalSeparator: ',' })).toThrow(/must differ from the delimiter/);
    expect(() => parseWholesaleColumnMapping({ ...partner, currency: undefined })).toThrow(/currency column or a fixed currency/);
    expect(() => parseWholesaleColumnMapping({ ...partner, amountScale: 7 })).toThrow(WholesaleFileError);
    expect(() => parseWholesaleColumnMapping({ ...partner, serviceValues: { X: 'fax' } })).toThrow(WholesaleFileError);
    expect(() => parseWholesaleColumnMapping({ ...partner, columns: { ...partner.columns, zone: 'imsi' } })).toThrow(/mapped twice/);
    expect(() => parseWholesaleFile([], { mapping: { ...partner, timestampFormat: 'unix' as never } })).toThrow(WholesaleFileError);
  });

  it('a runaway quote is a file error, not unbounded buffering', async () => {
    const err = await expectFileError(
      parse([`${HEADER}\n${ROW}\n"R2,`, 'x'.repeat(2000), 'y'.repeat(2000)], { maxRecordLength: 1000 }),
      'RECORD_TOO_LONG',
    );
    expect(err.details.lineNumber).toBe(3);
  });
});

describe('PostgreSQL COPY text encoding', () => {
  const rec: WholesaleRecord = {
    kind: 'record',
    lineNumber: 7,
    recordId: 'a\\b\tc\nd\re',
    imsi: '262011234567890',
    msisdn: null,
    service: 'voice',
    startedAtMs: Date.UTC(2025, 2, 1, 9, 0, 0, 5),
    volume: 61n,
    zone: 'roam\\eu',
    wholesaleAmountMicros: -3_250_000n,
    currency: 'EUR',
  };

  it('escapes backslash, tab, newline and CR; null as \\N', () => {
    expect(encodeCopyRow(rec)).toBe(
      '7\ta\\\\b\\tc\\nd\\re\t262011234567890\t\\N\tvoice\t2025-03-01T09:00:00.005Z\t61\troam\\\\eu\t-3250000\tEUR\n',
    );
    expect(encodeCopyRow(rec).split('\t')).toHaveLength(10);
  });

  it('formats timestamps exactly like Date#toISOString (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(9999, 11, 31) }), { minLength: 1, maxLength: 20 }), (xs) => {
        // includes repeats on the same day (cached date part) and jumps back and forth
        for (const ms of [...xs, ...xs.map((x) => x + 1), ...xs.map((x) => x - 86_400_000)]) {
          expect(formatUtcIso(ms)).toBe(new Date(ms).toISOString());
        }
      }),
    );
    expect(formatUtcIso(0.5)).toBe(new Date(0.5).toISOString());
  });

  it('leading columns are encoded once', () => {
    const enc = createCopyRowEncoder([42n, 'imp\t1', null]);
    expect(enc({ ...rec, msisdn: '4915', recordId: 'X', zone: 'home' })).toBe(
      '42\timp\\t1\t\\N\t7\tX\t262011234567890\t4915\tvoice\t2025-03-01T09:00:00.005Z\t61\thome\t-3250000\tEUR\n',
    );
  });
});
