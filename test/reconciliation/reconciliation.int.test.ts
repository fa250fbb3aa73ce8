import { createTestDatabase } from '../support/services';
import type { Database } from '../../platform/database';
import { DomainError } from '../../domain/shared/domain-error';
import { chunkOfKey, chunkSql, importWholesaleFile, listRejections } from '../../domain/reconciliation/wholesale-import';
import {
  approveRun,
  createRun,
  finalizeRun,
  getReport,
  listDiscrepancies,
  matchChunk,
  matchChunkSql,
  stageRun,
  getRun,
} from '../../domain/reconciliation/reconciliation-runs';
import { getPartner, termsById } from '../../domain/reconciliation/partners';
import { scoreRun } from '../../domain/reconciliation/testing/fixtures';
import { WHOLESALE_FAULT_KINDS, type InjectedFault, type RatedUsageEvent } from '../../domain/reconciliation/wholesale-file.generator';
import { asInput, createSamplePartner, generateFile, reconcile, seedUsage } from './support';

jest.setTimeout(120_000);

let t: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let events: RatedUsageEvent[];
let faults: InjectedFault[];
let file: Buffer;

beforeAll(async () => {
  t = await createTestDatabase();
  db = t.db;
  await createSamplePartner(db);
  events = await seedUsage(db, 20_000, 'recon-int');
  const g = await generateFile(events, { seed: 'recon-int-file', faultRate: 0.05, cleanDriftRate: 0.03, gzip: true });
  faults = g.summary.faults ?? [];
  file = g.bytes;
  for (const k of WHOLESALE_FAULT_KINDS) expect(g.summary.faultCounts[k]).toBeGreaterThan(20);
});

afterAll(async () => {
  await t?.drop();
});

async function discrepancyFingerprint(runId: string): Promise<string[]> {
  const { rows } = await db.raw(
    `SELECT category, side, line_number, rated_usage_id, amount_at_stake_micros FROM reconciliation_discrepancies WHERE run_id = ?
      ORDER BY category, side, line_number, rated_usage_id`,
    [runId],
  );
  return rows.map((r: Record<string, unknown>) => Object.values(r).join('|'));
}

describe('wholesale reconciliation', () => {
  let runId: string;

  it('imports the gzip file with COPY and refuses the same file twice', async () => {
    const r = await importWholesaleFile(db, { partnerCode: 'mno-a', input: asInput(file), fileName: 'jan.csv.gz', source: 'upload', actor: 'test' });
    expect(r.records).toBeGreaterThan(20_000);
    expect(r.rejected).toBe(0);
    const { rows } = await db.raw(`SELECT count(*)::int AS n FROM wholesale_records WHERE import_id = ?`, [r.importId]);
    expect(rows[0].n).toBe(r.records);
    await expect(
      importWholesaleFile(db, { partnerCode: 'mno-a', input: asInput(file), fileName: 'again.csv.gz', source: 'upload', actor: 'test' }),
    ).rejects.toThrow(/already imported for partner 'mno-a' as import \d+ \('jan\.csv\.gz'/);
    const { rows: n } = await db.raw(`SELECT count(*)::int AS n FROM wholesale_imports`);
    expect(n[0].n).toBe(1);
  });

  it('finds every injected fault in its category and flags nothing clean (precision = recall = 1)', async () => {
    const run = await reconcile(db, 'mno-a');
    runId = run.id;
    expect(run.status).toBe('ready');
    const score = await scoreRun(db, run.id, faults);
    expect({ fp: score.falsePositives, fn: score.falseNegatives }).toEqual({ fp: [], fn: [] });
    expect(score.precision).toBe(1);
    expect(score.recall).toBe(1);
    // every record in exactly one category
    const s = run.summary!;
    const mnoTotal = s.byCategory.reduce((a, c) => a + c.mnoRecords, 0);
    const ourTotal = s.byCategory.reduce((a, c) => a + c.ourRecords, 0);
    const { rows: w } = await db.raw(`SELECT count(*)::int AS n FROM wholesale_records`);
    expect(mnoTotal).toBe(w[0].n);
    expect(ourTotal).toBe(events.length);
    expect(s.counts.matched).toBeGreaterThan(17_000);
    for (const c of ['volume_mismatch', 'missing_ours', 'missing_mno', 'duplicate', 'unknown_subscriber', 'rate_mismatch']) {
      expect(s.counts[c]).toBeGreaterThan(0);
    }
    // side by side, with the amount at stake
    const page = await listDiscrepancies(db, run.id, { category: 'volume_mismatch', first: 5 });
    expect(page.items).toHaveLength(5);
    for (const d of page.items) {
      expect(d.mno).not.toBeNull();
      expect(d.ours).not.toBeNull();
      expect(d.mno!.volume).not.toBe(d.ours!.volume);
    }
    const next = await listDiscrepancies(db, run.id, { category: 'volume_mismatch', first: 5, after: page.cursors[4] });
    expect(Number(next.items[0].id)).toBeGreaterThan(Number(page.items[4].id));
    // reports
    const csv = await getReport(db, run.id, 'csv');
    expect(csv!.split('\n')[0]).toMatch(/^section,service,zone,category,/);
    expect(csv).toMatch(/\ntotal,/);
    expect(await getReport(db, run.id, 'html')).toMatch(/<h1>Wholesale settlement/);
    const json = JSON.parse((await getReport(db, run.id, 'json'))!);
    expect(json.byServiceZone.length).toBeGreaterThanOrEqual(9);
    expect(BigInt(json.totals.retailRevenueMicros)).toBeGreaterThan(BigInt(json.totals.mnoClaimedMicros));
  });

  it('a run killed midway and resumed gives the same result as an uninterrupted one', async () => {
    const run = await createRun(db, { partnerCode: 'mno-a', period: '2025-01', actor: 'test', requestKey: 'resume-test' });
    expect(run.version).toBe(2);
    expect((await createRun(db, { partnerCode: 'mno-a', period: '2025-01', actor: 'test', requestKey: 'resume-test' })).id).toBe(run.id);
    await stageRun(db, run.id);
    for (let c = 0; c < 6; c++) await matchChunk(db, run.id, c);
    // a crash in the middle of chunk 6: the work is done, then the process dies before commit
    const partner = await getPartner(db, 'mno-a');
    const terms = await termsById(db, run.termsId);
    await expect(
      db.transaction(async (trx) => {
        await matchChunkSql(trx, await getRun(db, run.id), partner.identityKey, terms, 6);
        throw new Error('killed');
      }),
    ).rejects.toThrow('killed');
    // the staging table lost its rows too (an UNLOGGED table after a database crash)
    await db.raw(`TRUNCATE reconciliation_our_usage_${run.id}_7`);
    // resume: every chunk again, done ones are skipped
    for (let c = 0; c < run.chunkCount; c++) await matchChunk(db, run.id, c);
    await matchChunk(db, run.id, 3); // a retried activity
    const done = await finalizeRun(db, run.id);
    expect(done.summary!.counts).toEqual((await getRun(db, runId)).summary!.counts);
    expect(done.summary!.totals).toEqual((await getRun(db, runId)).summary!.totals);
    expect(await discrepancyFingerprint(run.id)).toEqual(await discrepancyFingerprint(runId));
  });

  it('an approved run cannot be changed, not even by direct SQL', async () => {
    await expect(approveRun(db, '999999', 'fin')).rejects.toThrow(DomainError);
    const approved = await approveRun(db, runId, 'finance-key-1');
    expect(approved.status).toBe('approved');
    expect(approved.approvedBy).toBe('finance-key-1');
    await expect(approveRun(db, runId, 'fin')).rejects.toThrow(/already approved/);
    await expect(db.raw(`UPDATE reconciliation_runs SET summary = '{}' WHERE id = ?`, [runId])).rejects.toThrow(/approved and immutable/);
    await expect(db.raw(`UPDATE reconciliation_runs SET status = 'ready', approved_by = NULL, approved_at = NULL WHERE id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(db.raw(`DELETE FROM reconciliation_runs WHERE id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(db.raw(`UPDATE reconciliation_discrepancies SET amount_at_stake_micros = 0 WHERE run_id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(db.raw(`DELETE FROM reconciliation_discrepancies WHERE run_id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(
      db.raw(`INSERT INTO reconciliation_discrepancies (run_id, chunk, category, side, line_number, amount_at_stake_micros) VALUES (?, 0, 'duplicate', 'mno', 1, 1)`, [runId]),
    ).rejects.toThrow(/immutable/);
    await expect(db.raw(`UPDATE reconciliation_settlement_lines SET mno_claimed_micros = 0 WHERE run_id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(db.raw(`UPDATE reconciliation_reports SET content = 'x' WHERE run_id = ?`, [runId])).rejects.toThrow(/immutable/);
    await expect(matchChunk(db, runId, 0)).resolves.toBeDefined(); // a done chunk is only read
    await expect(stageRun(db, runId, { force: true })).rejects.toThrow(/approved and immutable/);
    // a rerun makes a new version and leaves the approved one alone
    const rerun = await reconcile(db, 'mno-a');
    expect(rerun.version).toBe(3);
    await expect(approveRun(db, rerun.id, 'fin')).rejects.toThrow(/already approved/);
    expect((await getRun(db, runId)).status).toBe('approved');
  });

  it('the SQL chunk rule equals the Node one', async () => {
    const keys = ['262010000001234', '4915000000009', '12', '1', '', '12a4', 'abcd', '0000', '99999'];
    const { rows } = await db.raw(`SELECT k, ${chunkSql('k', 16)} AS c FROM unnest(?::text[]) AS k`, [keys]);
    expect(rows.map((r: { c: number }) => r.c)).toEqual(keys.map((k) => chunkOfKey(k, 16)));
  });

  it('reports malformed rows with line numbers and keeps them; a broken header is refused clearly', async () => {
    const csv = [
      'record_id,imsi,msisdn,service,started_at,volume,zone,wholesale_amount,currency',
      'A1,262010000000001,4915000000001,data,2025-02-01T10:00:00Z,1024,home,0.000001,EUR',
      'A2,26201x,4915000000001,data,2025-02-01T10:00:00Z,1024,home,0.000001,EUR',
      'A3,262010000000001,4915000000001,fax,2025-02-01T10:00:00Z,1024,home,0.000001,EUR',
      'A4,262010000000001,4915000000001,data,2025-02-01T10:00:00,1024,home,1e3,EUR',
      'A5,262010000000001,4915000000001,sms,2025-02-01T10:00:00Z,1,home,0.008000,EUR',
    ].join('\n');
    const r = await importWholesaleFile(db, { partnerCode: 'mno-a', input: asInput(csv), fileName: 'feb.csv', source: 'path', actor: 'test' });
    expect(r.records).toBe(2);
    expect(r.rejected).toBe(3);
    const rej = await listRejections(db, r.importId);
    expect(rej.map((x) => x.lineNumber)).toEqual([3, 4, 5]);
    expect(rej[0].reason).toMatch(/imsi/);
    expect(rej[1].reason).toMatch(/service/);
    expect(rej[2].reason).toMatch(/started_at/);
    expect(rej[2].reason).toMatch(/wholesale_amount/);
    expect(rej[2].raw).toContain('A4');

    const broken = 'record_id,imsi,service,started_at,volume,zone,currency\nA1,262010000000001,data,2025-02-01T10:00:00Z,1,home,EUR\n';
    const err = await importWholesaleFile(db, { partnerCode: 'mno-a', input: asInput(broken), fileName: 'broken.csv', source: 'path', actor: 'test' }).catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err.message).toMatch(/broken\.csv: .*wholesale_amount/);
    const { rows } = await db.raw(`SELECT count(*)::int AS n FROM wholesale_imports WHERE file_name = 'broken.csv'`);
    expect(rows[0].n).toBe(0);
  });
});
