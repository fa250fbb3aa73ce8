import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import {
  SAMPLE_WHOLESALE_RATE_CARD,
  WHOLESALE_FAULT_KINDS,
  createSeededRandom,
  formatMicros,
  generateWholesaleFile,
  isAmountWithinTolerance,
  isTimeWithinWindow,
  isVolumeWithinTolerance,
  priceWholesale,
  resolveTolerances,
  syntheticRatedUsageEvents,
  volumeToleranceFor,
  wholesaleAmountMicros,
  writeWholesaleFile,
} from './wholesale-file.generator';
import type {
  InjectedFault,
  RatedUsageEvent,
  WholesaleGeneratorOptions,
  WholesaleGenerationSummary,
  WholesaleTolerances,
} from './wholesale-file.generator';
import { INT64_MAX, parseDecimalMicros, parseWholesaleFileToArrays } from './wholesale-file.parser';
import type { WholesaleRecord, WholesaleService } from './wholesale-file.parser';

const CARD = SAMPLE_WHOLESALE_RATE_CARD;

async function generate(events: Iterable<RatedUsageEvent> | AsyncIterable<RatedUsageEvent>, options: WholesaleGeneratorOptions) {
  const g = generateWholesaleFile(events, CARD, options);
  const chunks: Buffer[] = [];
  for await (const c of g.stream) chunks.push(c as Buffer);
  return { bytes: Buffer.concat(chunks), summary: await g.done };
}

/**
 * Events that a key-based matcher can tell apart: every subscriber's events are at least a day
 * apart (faults move times by at most ~6 h + 8 windows).
 */
function spacedEvents(count: number, seed: number): RatedUsageEvent[] {
  const rng = createSeededRandom(seed);
  const subscribers = Math.max(1, Math.floor(count / 20));
  const next: number[] = Array.from({ length: subscribers }, () => Date.UTC(2025, 0, 1) + rng.int(86_400_000));
  const services: WholesaleService[] = ['data', 'voice', 'sms'];
  const zones = ['home', 'roam-eu', 'roam-world'];
  const out: RatedUsageEvent[] = [];
  for (let i = 0; i < count; i++) {
    const sub = i % subscribers;
    const service = services[rng.int(3)];
    out.push({
      usageEventId: `ue-${i}`,
      imsi: `26201${String(sub).padStart(10, '0')}`,
      msisdn: sub % 7 === 0 ? null : `4915${String(sub).padStart(8, '0')}`,
      service,
      startedAt: i % 2 === 0 ? next[sub] : new Date(next[sub]),
      volume: service === 'sms' ? 1n : service === 'voice' ? BigInt(rng.int(3600)) : BigInt(rng.int(50_000_000)),
      zone: zones[rng.int(3)],
    });
    next[sub] += 86_400_000 + rng.int(12 * 3_600_000);
  }
  return out;
}

describe('pricing and tolerance rules', () => {
  it('charges every started unit: ceil(volume / unitSize) × microsPerUnit', () => {
    const rate = { microsPerUnit: 5000n, unitSize: 60n };
    expect(priceWholesale(rate, 0n)).toBe(0n);
    expect(priceWholesale(rate, 1n)).toBe(5000n);
    expect(priceWholesale(rate, 60n)).toBe(5000n);
    expect(priceWholesale(rate, 61n)).toBe(10000n);
    expect(wholesaleAmountMicros(CARD, 'data', 'home', 1025n)).toBe(2n);
    expect(() => wholesaleAmountMicros(CARD, 'data', 'mars', 1n)).toThrow(/no wholesale rate for service 'data' in zone 'mars'/);
    expect(() => wholesaleAmountMicros(CARD, 'data', 'constructor', 1n)).toThrow(/no wholesale rate/);
  });

  it('volume tolerance = max(absolute, relative part of our volume); time window inclusive', () => {
    const t = resolveTolerances({ volumeRelativePpm: 10_000, volumeAbsolute: { data: 1024n }, timeWindowMs: 1000 });
    expect(volumeToleranceFor(1_000_000n, 'data', t)).toBe(10_000n);
    expect(volumeToleranceFor(1000n, 'data', t)).toBe(1024n);
    expect(volumeToleranceFor(50n, 'voice', t)).toBe(0n);
    expect(isVolumeWithinTolerance(1_000_000n, 1_010_000n, 'data', t)).toBe(true);
    expect(isVolumeWithinTolerance(1_000_000n, 1_010_001n, 'data', t)).toBe(false);
    expect(isTimeWithinWindow(0, 1000, t)).toBe(true);
    expect(isTimeWithinWindow(0, -1001, t)).toBe(false);
  });

  it('formatMicros is exact and the parser reads it back (property)', () => {
    expect(formatMicros(1n)).toBe('0.000001');
    expect(formatMicros(-3_250_000n)).toBe('-3.250000');
    expect(formatMicros(0n)).toBe('0.000000');
    fc.assert(fc.property(fc.bigInt({ min: -INT64_MAX, max: INT64_MAX }), (m) => expect(parseDecimalMicros(formatMicros(m))).toBe(m)));
  });

  it('the PRNG is deterministic per seed and stays in range', () => {
    const a = createSeededRandom('partner-1');
    const b = createSeededRandom('partner-1');
    const c = createSeededRandom('partner-2');
    const xs = Array.from({ length: 1000 }, () => a.u32());
    expect(Array.from({ length: 1000 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c.u32())).not.toEqual(xs);
    const r = createSeededRandom(1);
    const seen = new Set<number>();
    let ok = true;
    for (let i = 0; i < 10_000; i++) {
      const f = r.float();
      const n = r.int(7);
      const big = r.bigint(3n);
      seen.add(n);
      ok &&= f >= 0 && f < 1 && Number.isInteger(n) && n >= 0 && n < 7 && big >= 0n && big < 3n;
    }
    expect(ok).toBe(true);
    expect(seen.size).toBe(7);
    expect(r.bigint(1n << 80n) < 1n << 80n).toBe(true);
  });
});

describe('clean file', () => {
  it('one exact record per event, in order, canonical CSV', async () => {
    const events = spacedEvents(500, 1);
    const { bytes, summary } = await generate(events, { seed: 1 });
    expect(summary).toMatchObject({ eventsRead: 500, rowsWritten: 500, cleanDrifted: 0, faults: [] });
    const text = bytes.toString('utf8');
    expect(text.startsWith('record_id,imsi,msisdn,service,started_at,volume,zone,wholesale_amount,currency\n')).toBe(true);
    expect(text.split('\n')[1]).toMatch(/^MNO000000000001,26201\d{10},,(data|voice|sms),2025-01-01T\d\d:\d\d:\d\d\.\d{3}Z,\d+,[a-z-]+,\d+\.\d{6},EUR$/);
    const { records, rejected } = await parseWholesaleFileToArrays([bytes]);
    expect(rejected).toEqual([]);
    records.forEach((r, i) => {
      const e = events[i];
      expect(r).toEqual<WholesaleRecord>({
        kind: 'record',
        lineNumber: i + 2,
        recordId: `MNO${String(i + 1).padStart(12, '0')}`,
        imsi: e.imsi,
        msisdn: e.msisdn,
        service: e.service,
        startedAtMs: typeof e.startedAt === 'number' ? e.startedAt : e.startedAt.getTime(),
        volume: e.volume,
        zone: e.zone,
        wholesaleAmountMicros: wholesaleAmountMicros(CARD, e.service, e.zone, e.volume),
        currency: 'EUR',
      });
    });
  });

  it('writes timestamps in the requested offset, other currency, quotes odd zones', async () => {
    const ev: RatedUsageEvent = {
      usageEventId: 'x', imsi: '262010000000001', msisdn: '4915', service: 'sms',
      startedAt: Date.UTC(2025, 0, 31, 23, 30, 0, 7), volume: 1n, zone: 'roam, "eu"',
    };
    const card = { sms: { 'roam, "eu"': { microsPerUnit: 1n, unitSize: 1n } } };
    const g = generateWholesaleFile([ev], card, { seed: 1, utcOffsetMinutes: 90, currency: 'CHF' });
    let text = '';
    for await (const c of g.stream) text += c;
    expect(text.split('\n')[1]).toBe('MNO000000000001,262010000000001,4915,sms,2025-02-01T01:00:00.007+01:30,1,"roam, ""eu""",0.000001,CHF');
    const { records } = await parseWholesaleFileToArrays([text]);
    expect(records[0]).toMatchObject({ startedAtMs: ev.startedAt, zone: 'roam, "eu"', currency: 'CHF' });
  });
});

/** Check every fault against the file and a key-based match of events to records. */
function checkRoundTrip(events: RatedUsageEvent[], records: WholesaleRecord[], summary: WholesaleGenerationSummary, tol: WholesaleTolerances) {
  const faults = summary.faults as InjectedFault[];
  const byLine = new Map(records.map((r) => [r.lineNumber, r]));
  const eventById = new Map(events.map((e) => [e.usageEventId, e]));
  const faultByLine = new Map<number, InjectedFault>();
  const faultByEvent = new Map<string, InjectedFault>();
  for (const f of faults) {
    expect(eventById.has(f.usageEventId as string)).toBe(true);
    if (f.fault === 'dropped') {
      expect(f.lineNumber).toBeUndefined();
    } else {
      const r = byLine.get(f.lineNumber as number) as WholesaleRecord;
      expect(r).toBeDefined();
      expect(r.recordId).toBe(f.recordId);
      expect(faultByLine.has(r.lineNumber)).toBe(false);
      faultByLine.set(r.lineNumber, f);
    }
    // at most one fault per event
    expect(faultByEvent.has(f.usageEventId as string)).toBe(false);
    faultByEvent.set(f.usageEventId as string, f);
  }
  // counts
  const counted = Object.fromEntries(WHOLESALE_FAULT_KINDS.map((k) => [k, faults.filter((f) => f.fault === k).length]));
  expect(counted).toEqual(summary.faultCounts);
  const c = summary.faultCounts;
  expect(records.length).toBe(events.length - c.dropped + c.duplicate + c.unknown_imsi + c.extra_on_mno);
  expect(summary.rowsWritten).toBe(records.length);

  // key-based matching: same IMSI and service, time within window, volume within tolerance
  const eventsByKey = new Map<string, RatedUsageEvent[]>();
  for (const e of events) {
    const k = `${e.imsi}|${e.service}`;
    eventsByKey.set(k, [...(eventsByKey.get(k) ?? []), e]);
  }
  const knownImsis = new Set(events.map((e) => e.imsi));
  const ms = (e: RatedUsageEvent) => (typeof e.startedAt === 'number' ? e.startedAt : e.startedAt.getTime());
  const candidates = (r: WholesaleRecord) =>
    (eventsByKey.get(`${r.imsi}|${r.service}`) ?? []).filter(
      (e) => isTimeWithinWindow(ms(e), r.startedAtMs, tol) && isVolumeWithinTolerance(e.volume, r.volume, e.service, tol),
    );
  const matchedEvents = new Set<string>();
  const recordIds = new Map<string, number>();
  for (const r of records) {
    recordIds.set(r.recordId, (recordIds.get(r.recordId) ?? 0) + 1);
    const f = faultByLine.get(r.lineNumber);
    const priced = wholesaleAmountMicros(CARD, r.service, r.zone, r.volume);
    const cands = candidates(r);
    switch (f?.fault) {
      case 'unknown_imsi':
        expect(knownImsis.has(r.imsi)).toBe(false);
        expect(r.imsi).toMatch(/^99999\d{10}$/);
        expect(r.wholesaleAmountMicros).toBe(priced);
        break;
      case 'extra_on_mno':
      case 'time_drift':
      case 'volume_drift': {
        expect(cands).toEqual([]);
        const e = eventById.get(f.usageEventId as string) as RatedUsageEvent;
        expect(r.imsi).toBe(e.imsi);
        if (f.fault === 'time_drift') {
          expect(isTimeWithinWindow(ms(e), r.startedAtMs, tol)).toBe(false);
          expect(r.volume).toBe(e.volume);
        }
        if (f.fault === 'volume_drift') {
          expect(isVolumeWithinTolerance(e.volume, r.volume, e.service, tol)).toBe(false);
          expect(r.startedAtMs).toBe(ms(e));
        }
        expect(r.wholesaleAmountMicros).toBe(priced);
        break;
      }
      case 'wrong_rate':
        expect(cands.map((e) => e.usageEventId)).toEqual([f.usageEventId]);
        expect(isAmountWithinTolerance(priced, r.wholesaleAmountMicros, tol)).toBe(false);
        break;
      case 'duplicate': {
        expect(cands.map((e) => e.usageEventId)).toEqual([f.usageEventId]);
        const original = byLine.get(f.detail?.originalLineNumber as number) as WholesaleRecord;
        expect(original.lineNumber).toBeLessThan(r.lineNumber);
        expect({ ...r, lineNumber: 0, recordId: '' }).toEqual({ ...original, lineNumber: 0, recordId: '' });
        expect(r.recordId === original.recordId).toBe(f.detail?.sameRecordId);
        break;
      }
      case undefined:
        // a clean record (possibly drifted within tolerance) matches exactly its own event
        expect(cands).toHaveLength(1);
        expect(r.wholesaleAmountMicros).toBe(priced);
        expect(matchedEvents.has(cands[0].usageEventId)).toBe(false);
        matchedEvents.add(cands[0].usageEventId);
        expect(faultByEvent.get(cands[0].usageEventId)?.fault ?? 'none').toMatch(/^(none|duplicate|unknown_imsi|extra_on_mno)$/);
        break;
      default:
        throw new Error(`unexpected fault at line ${r.lineNumber}`);
    }
  }
  // every event is either matched by a clean record, or its fault explains why not
  for (const e of events) {
    const f = faultByEvent.get(e.usageEventId)?.fault;
    if (f === 'dropped' || f === 'time_drift' || f === 'volume_drift' || f === 'wrong_rate') expect(matchedEvents.has(e.usageEventId)).toBe(false);
    else expect(matchedEvents.has(e.usageEventId)).toBe(true);
  }
  // record ids repeat only for duplicates that reused them
  const reused = faults.filter((f) => f.fault === 'duplicate' && f.detail?.sameRecordId).length;
  expect([...recordIds.values()].reduce((a, n) => a + n - 1, 0)).toBe(reused);
}

describe('faults round trip through the parser', () => {
  const tolerances: Partial<WholesaleTolerances> = { timeWindowMs: 60_000, volumeRelativePpm: 20_000, amountMicros: 2n };

  it('every injected fault is where the fault list says, clean drift stays within tolerance', async () => {
    const events = spacedEvents(6000, 2);
    const { bytes, summary } = await generate(events, { seed: 'round-trip', faultRate: 0.3, cleanDriftRate: 0.5, tolerances });
    const { records, rejected } = await parseWholesaleFileToArrays([bytes]);
    expect(rejected).toEqual([]);
    for (const k of WHOLESALE_FAULT_KINDS) expect(summary.faultCounts[k]).toBeGreaterThan(150);
    expect(summary.cleanDrifted).toBeGreaterThan(1500);
    checkRoundTrip(events, records, summary, resolveTolerances(tolerances));
  });

  it('works for each fault kind alone, with zero volumes, from an async source, gzip-compressed', async () => {
    for (const kind of WHOLESALE_FAULT_KINDS) {
      const events = spacedEvents(400, 3).map((e, i) => (i % 10 === 0 && e.service !== 'sms' ? { ...e, volume: 0n } : e));
      async function* source() {
        for (const e of events) yield e;
      }
      const { bytes, summary } = await generate(source(), { seed: kind, faultRate: 0.5, faultWeights: { [kind]: 1 }, tolerances, gzip: true });
      expect(bytes[0]).toBe(0x1f);
      const { records, rejected, summary: parsed } = await parseWholesaleFileToArrays([bytes]);
      expect(parsed.compression).toBe('gzip');
      expect(rejected).toEqual([]);
      expect(summary.faultCounts[kind]).toBeGreaterThan(150);
      expect(Object.values(summary.faultCounts).reduce((a, b) => a + b, 0)).toBe(summary.faultCounts[kind]);
      checkRoundTrip(events, records, summary, resolveTolerances(tolerances));
    }
  });

  it('property: any seed and rates give a consistent file and fault list', async () => {
    const events = spacedEvents(300, 4);
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat({ max: 5 }),
        async (seed, faultRate, cleanDriftRate, maxDuplicateDelayRows) => {
          const { bytes, summary } = await generate(events, { seed, faultRate, cleanDriftRate, tolerances, maxDuplicateDelayRows });
          const { records, rejected } = await parseWholesaleFileToArrays([bytes]);
          expect(rejected).toEqual([]);
          checkRoundTrip(events, records, summary, resolveTolerances(tolerances));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('determinism, fault log, files', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('same seed → same bytes and faults; another seed → different', async () => {
    const events = [...syntheticRatedUsageEvents({ count: 3000, seed: 5 })];
    const opts = { faultRate: 0.1, cleanDriftRate: 0.2 };
    const a = await generate(events, { seed: 9, ...opts });
    const b = await generate(events, { seed: 9, ...opts });
    const c = await generate(events, { seed: 10, ...opts });
    expect(sha(a.bytes)).toBe(sha(b.bytes));
    expect(a.summary).toEqual(b.summary);
    expect(sha(c.bytes)).not.toBe(sha(a.bytes));
  });

  it('streams the fault list as JSONL, identical to the array', async () => {
    const log = new PassThrough();
    let jsonl = '';
    log.on('data', (d) => (jsonl += d));
    const events = spacedEvents(2000, 6);
    const { summary } = await generate(events, { seed: 1, faultRate: 0.2, faultLog: log });
    const lines = jsonl.trimEnd().split('\n').map((l) => JSON.parse(l) as InjectedFault);
    expect(lines).toEqual(summary.faults);
  });

  it('writeWholesaleFile writes the file and the JSONL fault log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wholesale-gen-'));
    try {
      const path = join(dir, 'out.csv.gz');
      const faultLogPath = join(dir, 'faults.jsonl');
      const summary = await writeWholesaleFile(path, syntheticRatedUsageEvents({ count: 5000, seed: 1 }), CARD, {
        seed: 2, faultRate: 0.05, gzip: { level: 1 }, collectFaults: false, faultLogPath,
      });
      expect(summary.faults).toBeNull();
      const faultLines = (await readFile(faultLogPath, 'utf8')).trimEnd().split('\n');
      expect(faultLines).toHaveLength(Object.values(summary.faultCounts).reduce((a, b) => a + b, 0));
      const { records, summary: parsed } = await parseWholesaleFileToArrays([await readFile(path)]);
      expect(records).toHaveLength(summary.rowsWritten);
      expect(parsed.compression).toBe('gzip');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('pulls events only as the output is read (bounded memory on endless input)', async () => {
    let pulled = 0;
    function* endless(): Generator<RatedUsageEvent> {
      for (let i = 0; ; i++) {
        pulled++;
        yield { usageEventId: `e${i}`, imsi: '262010000000001', msisdn: null, service: 'sms', startedAt: i * 1000, volume: 1n, zone: 'home' };
      }
    }
    const g = generateWholesaleFile(endless(), CARD, { seed: 1, faultRate: 0.1, collectFaults: false });
    let bytes = 0;
    for await (const c of g.stream) {
      bytes += (c as Buffer).length;
      if (bytes > 1_000_000) break; // destroys the stream
    }
    expect(pulled).toBeLessThan(30_000); // ~1 MB of rows plus a few chunks of read-ahead
    await expect(g.done).rejects.toThrow(); // ended early: no summary
  });

  it('a missing rate or a bad event fails the stream with a clear error', async () => {
    const bad: RatedUsageEvent = { usageEventId: 'u1', imsi: '262010000000001', msisdn: null, service: 'data', startedAt: 0, volume: 1n, zone: 'mars' };
    await expect(generate([bad], { seed: 1 })).rejects.toThrow(/no wholesale rate for service 'data' in zone 'mars'/);
    await expect(generate([{ ...bad, zone: 'home', volume: -1n }], { seed: 1 })).rejects.toThrow(/u1: volume must be a non-negative bigint/);
    expect(() => generateWholesaleFile([], CARD, { seed: 1, faultRate: 0.1, faultWeights: {} })).toThrow(/every fault weight is 0/);
  });
});
