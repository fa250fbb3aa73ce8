/**
 * Reconciliation runs: one per partner, period (YYYY-MM) and version.
 *
 *   createRun → stageRun → matchChunk × chunkCount → finalizeRun → (approveRun)
 *
 * - createRun pins the partner's terms in force at the start of the period and the imports whose
 *   records fall in it; it is idempotent on its request key (the Temporal workflow run).
 * - stageRun copies our rated usage for the period into the run's partition of
 *   `reconciliation_our_usage`, tagged with the same chunk rule as the wholesale records, and
 *   records the row count of every chunk on both sides. Staging is derived data: a chunk whose
 *   counts do not match any more (an UNLOGGED table emptied by a database crash) is re-staged,
 *   or, on the wholesale side, refused with a clear message.
 * - matchChunk matches one chunk in set-based SQL (see `matchChunkSql`) and writes its
 *   discrepancies, settlement lines and its `reconciliation_chunks` row in ONE transaction:
 *   a chunk is either fully counted or not at all, and a chunk already done is skipped, so a
 *   crash anywhere resumes without double counting.
 * - finalizeRun totals the settlement lines, writes the CSV / HTML / JSON reports, and marks the
 *   run ready for approval. approveRun (finance) makes it immutable (database triggers).
 *
 * Matching rules (every record, ours and the MNO's, ends in exactly one category):
 *   1. MNO records whose subscriber key is unknown (IMSI not in `sims`, or MSISDN of no
 *      subscriber) → unknown_subscriber.
 *   2. Exact pairs: same key, service, start time and volume (the n-th identical record pairs
 *      with the n-th identical event).
 *   3. A still unpaired record identical in content to another (same key, service, start,
 *      volume, zone, amount) → duplicate (on its side).
 *   4. Fuzzy pairs among the rest: same key and service, |Δt| ≤ window; one-to-one by rounds of
 *      mutual best candidates, ordered by (volume within tolerance first, |Δt|, |Δv|).
 *   5. A pair with |Δv| beyond tolerance → volume_mismatch; else an amount that differs from the
 *      rate card on the MNO's volume by more than the amount tolerance (or no rate) →
 *      rate_mismatch; else matched.
 *   6. Unpaired MNO records → missing_ours (usage we never rated: revenue leakage); unpaired
 *      events of ours → missing_mno (the MNO did not charge it: disputable).
 */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';
import { InvalidCursorError, type Page } from '../../platform/pagination';
import { getPartner, termsById, termsFor, type Partner, type PartnerTerms } from './partners';
import { chunkSql, DEFAULT_CHUNK_COUNT } from './wholesale-import';
import { buildReports, type SettlementSummary } from './settlement-report';

export const RECONCILIATION_CATEGORIES = [
  'matched',
  'volume_mismatch',
  'missing_ours',
  'missing_mno',
  'duplicate',
  'unknown_subscriber',
  'rate_mismatch',
] as const;
export type ReconciliationCategory = (typeof RECONCILIATION_CATEGORIES)[number];
export type CategoryCounts = Record<ReconciliationCategory, number>;

export const RUN_STATUSES = ['pending', 'staging', 'matching', 'settling', 'ready', 'approved', 'failed', 'superseded'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface ReconciliationRun {
  id: string;
  partnerId: string;
  partnerCode: string;
  period: string;
  periodStart: Date;
  periodEnd: Date;
  version: number;
  termsId: string;
  importIds: string[];
  chunkCount: number;
  chunksDone: number;
  status: RunStatus;
  summary: SettlementSummary | null;
  error: string | null;
  workflowId: string | null;
  requestedBy: string;
  approvedBy: string | null;
  approvedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export function emptyCounts(): CategoryCounts {
  return Object.fromEntries(RECONCILIATION_CATEGORIES.map((c) => [c, 0])) as CategoryCounts;
}

export function periodBounds(period: string): { start: Date; end: Date } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(period);
  if (!m) throw new DomainError('INVALID_PERIOD', `period must be YYYY-MM, got '${period}'`, ['input', 'period']);
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { start: new Date(Date.UTC(y, mo, 1)), end: new Date(Date.UTC(y, mo + 1, 1)) };
}

const toRun = (r: Record<string, unknown>): ReconciliationRun => ({
  id: String(r.id),
  partnerId: String(r.partner_id),
  partnerCode: r.partner_code as string,
  period: r.period as string,
  periodStart: r.period_start as Date,
  periodEnd: r.period_end as Date,
  version: r.version as number,
  termsId: String(r.terms_id),
  importIds: ((r.import_ids as (string | number)[]) ?? []).map(String),
  chunkCount: r.chunk_count as number,
  chunksDone: r.chunks_done as number,
  status: r.status as RunStatus,
  summary: (r.summary as SettlementSummary | null) ?? null,
  error: (r.error as string | null) ?? null,
  workflowId: (r.workflow_id as string | null) ?? null,
  requestedBy: r.requested_by as string,
  approvedBy: (r.approved_by as string | null) ?? null,
  approvedAt: (r.approved_at as Date | null) ?? null,
  createdAt: r.created_at as Date,
  updatedAt: r.updated_at as Date,
});

const RUN_SELECT = `SELECT r.*, p.code AS partner_code FROM reconciliation_runs r JOIN reconciliation_partners p ON p.id = r.partner_id`;

export async function getRun(db: Knex, runId: string): Promise<ReconciliationRun> {
  const { rows } = await db.raw(`${RUN_SELECT} WHERE r.id = ?`, [runId]);
  if (rows.length === 0) throw new DomainError('RUN_NOT_FOUND', `no reconciliation run ${runId}`, ['input', 'runId']);
  return toRun(rows[0]);
}

export async function findRun(db: Knex, runId: string): Promise<ReconciliationRun | null> {
  if (!/^\d{1,18}$/.test(runId)) return null;
  const { rows } = await db.raw(`${RUN_SELECT} WHERE r.id = ?`, [runId]);
  return rows.length ? toRun(rows[0]) : null;
}

export async function listRuns(db: Knex, filter: { partnerCode?: string; period?: string; limit?: number } = {}): Promise<ReconciliationRun[]> {
  const where: string[] = [];
  const params: Knex.RawBinding[] = [];
  if (filter.partnerCode) {
    where.push('p.code = ?');
    params.push(filter.partnerCode);
  }
  if (filter.period) {
    where.push('r.period = ?');
    params.push(filter.period);
  }
  params.push(filter.limit ?? 100);
  const { rows } = await db.raw(`${RUN_SELECT} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY r.id DESC LIMIT ?`, params);
  return rows.map(toRun);
}

export interface CreateRunInput {
  partnerCode: string;
  period: string;
  actor: string;
  /** Idempotency: the same key returns the same run (the workflow id and its run id). */
  requestKey?: string;
  chunkCount?: number;
}

export async function createRun(db: Knex, input: CreateRunInput): Promise<ReconciliationRun> {
  const partner = await getPartner(db, input.partnerCode);
  const { start, end } = periodBounds(input.period);
  const chunkCount = input.chunkCount ?? DEFAULT_CHUNK_COUNT;
  const id = await db.transaction(async (trx) => {
    await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('reconciliation:' || ? || ':' || ?))`, [partner.code, input.period]);
    if (input.requestKey) {
      const existing = await trx('reconciliation_runs').where({ workflow_id: input.requestKey }).first();
      if (existing) return String(existing.id);
    }
    const terms = await termsFor(trx, partner.id, start.toISOString().slice(0, 10));
    if (!terms) throw new DomainError('NO_TERMS', `partner '${partner.code}' has no terms in force on ${start.toISOString().slice(0, 10)}`);
    const imports = await trx('wholesale_imports')
      .where({ partner_id: partner.id })
      .andWhere('first_started_at', '<', end)
      .andWhere('last_started_at', '>=', start)
      .select('id', 'chunk_count');
    for (const i of imports) {
      if (i.chunk_count !== chunkCount) {
        throw new DomainError('CHUNK_COUNT_MISMATCH', `import ${i.id} was loaded in ${i.chunk_count} chunks, the run asks for ${chunkCount}`);
      }
    }
    const last = await trx('reconciliation_runs').where({ partner_id: partner.id, period: input.period }).max('version as v').first();
    const [row] = await trx('reconciliation_runs')
      .insert({
        partner_id: partner.id,
        period: input.period,
        period_start: start,
        period_end: end,
        version: Number(last?.v ?? 0) + 1,
        terms_id: terms.id,
        import_ids: imports.map((i: { id: string }) => i.id),
        chunk_count: chunkCount,
        requested_by: input.actor,
        workflow_id: input.requestKey ?? null,
      })
      .returning('id');
    return String(row.id);
  });
  return getRun(db, id);
}

function keyExpr(identityKey: 'imsi' | 'msisdn', alias: string): string {
  return identityKey === 'msisdn' ? `coalesce(${alias}.msisdn, '')` : `coalesce(${alias}.imsi, '')`;
}

interface StagedCounts {
  ours: number[];
  mno: number[];
}

/** Copy our rated usage of the period into the run's staging partition; record per-chunk counts. */
/** Advisory lock of a run's staging: stagers hold it exclusively, chunk transactions shared. */
const RUN_LOCK_CLASS = 60100;

export async function stageRun(
  db: Knex,
  runId: string,
  options: { force?: boolean; parallel?: number; staleChunk?: number } = {},
): Promise<StagedCounts> {
  const run = await getRun(db, runId);
  assertOpen(run);
  const partner = await getPartner(db, run.partnerCode);
  // One stager at a time; chunk transactions wait while the staging tables are rebuilt.
  return db.transaction(async (lock) => {
    await lock.raw(`SELECT pg_advisory_xact_lock(${RUN_LOCK_CLASS}, ?::int)`, [Number(run.id)]);
    const existing = (await lock('reconciliation_runs').where({ id: runId }).first('staged_counts')).staged_counts as StagedCounts | null;
    if (existing && !options.force) return existing;
    // (checked on another connection: this transaction must hold no lock on the tables the staging drops)
    if (existing && options.staleChunk !== undefined && (await chunkCountsFine(db, run, options.staleChunk, existing)).ours) return existing;
    return stageLocked(db, run, partner, options);
  });
}

async function stageLocked(db: Knex, run: ReconciliationRun, partner: Partner, options: { parallel?: number }): Promise<StagedCounts> {
  const runId = run.id;
  const n = run.chunkCount;
  const parent = `reconciliation_our_usage_${run.id}`;
  await db('reconciliation_runs').where({ id: runId }).update({ status: 'staging', updated_at: db.fn.now() });
  await db.transaction(async (trx) => {
    await trx.raw(`DROP TABLE IF EXISTS ${parent}`);
    await trx.raw(`CREATE TABLE ${parent} PARTITION OF reconciliation_our_usage FOR VALUES IN (${run.id}) PARTITION BY LIST (chunk)`);
    for (let c = 0; c < n; c++) await trx.raw(`CREATE UNLOGGED TABLE ${parent}_${c} PARTITION OF ${parent} FOR VALUES IN (${c})`);
  });
  // The period in time slices, copied on parallel connections (the rated_usage BRIN index finds each slice).
  const key = keyExpr(partner.identityKey, 'u');
  const slices = Math.max(1, options.parallel ?? 2);
  const span = run.periodEnd.getTime() - run.periodStart.getTime();
  const bounds = Array.from({ length: slices + 1 }, (_, i) => new Date(run.periodStart.getTime() + Math.round((span * i) / slices)));
  const counts: StagedCounts = { ours: new Array(n).fill(0), mno: new Array(n).fill(0) };
  await Promise.all(
    Array.from({ length: slices }, async (_, i) => {
      const { rows } = await db.raw(
        `WITH ins AS (
           INSERT INTO ${parent} (run_id, chunk, id, key, service, zone, started_at, volume, amount_micros)
           SELECT ?, ${chunkSql(key, n)}, u.id, ${key}, u.service, u.zone, u.started_at, u.used_units, u.amount_micros
             FROM rated_usage u WHERE u.started_at >= ? AND u.started_at < ?
           RETURNING chunk)
         SELECT chunk, count(*)::int AS n FROM ins GROUP BY chunk`,
        [run.id, bounds[i], bounds[i + 1]],
      );
      for (const r of rows) counts.ours[r.chunk] += r.n;
    }),
  );
  if (run.importIds.length > 0) {
    const { rows: imports } = await db.raw(
      `SELECT id, chunk_counts, (first_started_at >= ? AND last_started_at < ?) AS inside FROM wholesale_imports WHERE id = ANY(?::bigint[])`,
      [run.periodStart, run.periodEnd, run.importIds],
    );
    const scan = imports.filter((i: { inside: boolean; chunk_counts: number[] | null }) => !i.inside || !i.chunk_counts).map((i: { id: string }) => i.id);
    for (const i of imports as { id: string; inside: boolean; chunk_counts: number[] | null }[]) {
      if (i.inside && i.chunk_counts) i.chunk_counts.forEach((v, c) => (counts.mno[c] += v));
    }
    if (scan.length > 0) {
      const { rows: mno } = await db.raw(
        `SELECT chunk, count(*)::int AS n FROM wholesale_records WHERE import_id = ANY(?::bigint[]) AND started_at >= ? AND started_at < ? GROUP BY chunk`,
        [scan, run.periodStart, run.periodEnd],
      );
      for (const r of mno) counts.mno[r.chunk] += r.n;
    }
  }
  await db('reconciliation_runs').where({ id: runId }).update({ staged_counts: JSON.stringify(counts), status: 'matching', updated_at: db.fn.now() });
  return counts;
}

function assertOpen(run: ReconciliationRun): void {
  if (run.status === 'approved') throw new DomainError('RUN_APPROVED', `run ${run.id} is approved and immutable; start a new version`);
  if (run.status === 'superseded') throw new DomainError('RUN_SUPERSEDED', `run ${run.id} was superseded`);
}

/** An UNLOGGED table comes back empty after a database crash: a chunk that had rows must still have some. */
async function chunkCountsFine(db: Knex, run: ReconciliationRun, chunk: number, staged: StagedCounts): Promise<{ ours: boolean; mno: boolean }> {
  let ours = true;
  if (staged.ours[chunk] > 0) {
    const table = `reconciliation_our_usage_${run.id}_${chunk}`;
    const { rows: t } = await db.raw(`SELECT to_regclass(?) IS NOT NULL AS e`, [table]);
    ours = t[0].e ? (await db.raw(`SELECT EXISTS (SELECT 1 FROM ${table}) AS x`)).rows[0].x : false;
  }
  let mno = true;
  if (staged.mno[chunk] > 0) {
    const { rows } = await db.raw(`SELECT EXISTS (SELECT 1 FROM wholesale_records WHERE import_id = ANY(?::bigint[]) AND chunk = ?) AS x`, [run.importIds, chunk]);
    mno = rows[0].x;
  }
  return { ours, mno };
}

/** Match one chunk; idempotent (a chunk already done returns its stored counts). */
export async function matchChunk(db: Knex, runId: string, chunk: number): Promise<CategoryCounts> {
  const done = await db('reconciliation_chunks').where({ run_id: runId, chunk }).first();
  if (done) return done.counts as CategoryCounts;
  const run = await getRun(db, runId);
  assertOpen(run);
  if (chunk < 0 || chunk >= run.chunkCount) throw new Error(`chunk ${chunk} out of range 0..${run.chunkCount - 1}`);
  const partner = await getPartner(db, run.partnerCode);
  const terms = await termsById(db, run.termsId);
  try {
    for (let attempt = 0; ; attempt++) {
      const staged = (await db('reconciliation_runs').where({ id: runId }).first('staged_counts')).staged_counts as StagedCounts | null;
      if (!staged) await stageRun(db, runId);
      const result = await db.transaction(async (trx) => {
        await trx.raw(`SELECT pg_advisory_xact_lock_shared(${RUN_LOCK_CLASS}, ?::int)`, [Number(run.id)]);
        const current = (await trx('reconciliation_runs').where({ id: runId }).first('staged_counts')).staged_counts as StagedCounts | null;
        if (!current) return 'restage' as const;
        const fine = await chunkCountsFine(trx, run, chunk, current);
        if (!fine.mno) {
          throw new DomainError('WHOLESALE_RECORDS_CHANGED', `the wholesale records of run ${runId} chunk ${chunk} no longer match what was staged (a database crash empties UNLOGGED imports): re-import the files and start a new run`);
        }
        if (!fine.ours) return 'restage' as const;
        const counts = await matchChunkSql(trx, run, partner.identityKey, terms, chunk);
        await trx('reconciliation_chunks').insert({ run_id: runId, chunk, counts: JSON.stringify(counts) });
        // An increment, not a recount: chunks commit concurrently, and a recount's snapshot misses the
        // chunk another transaction commits while this one waits on the row (a run ended `ready` at
        // 15 of 16). The chunk row's unique key makes each chunk count once.
        await trx.raw(`UPDATE reconciliation_runs SET chunks_done = chunks_done + 1, updated_at = now() WHERE id = ?`, [runId]);
        return counts;
      });
      if (result !== 'restage') return result;
      if (attempt >= 3) throw new Error(`run ${runId} chunk ${chunk}: the staged usage keeps disappearing`);
      // our side of this chunk was lost (UNLOGGED table after a crash): stage again, then retry
      await stageRun(db, runId, { force: true, staleChunk: chunk });
    }
  } catch (err) {
    // Another attempt of the same chunk won the race: its result stands.
    if ((err as { code?: string }).code === '23505') {
      const row = await db('reconciliation_chunks').where({ run_id: runId, chunk }).first();
      if (row) return row.counts as CategoryCounts;
    }
    throw err;
  }
}

const price = (v: string, r: string) => `((${v} + ${r}.unit_size - 1) / ${r}.unit_size) * ${r}.micros_per_unit`;

/** The set-based matching of one chunk, inside the caller's transaction. */
export async function matchChunkSql(
  trx: Knex.Transaction,
  run: ReconciliationRun,
  identityKey: 'imsi' | 'msisdn',
  terms: PartnerTerms,
  chunk: number,
): Promise<CategoryCounts> {
  const tol = terms.tolerances;
  const q = (sql: string, params: unknown[] = []) => trx.raw(sql, params as Knex.RawBinding[]);
  const T = terms.id;
  await q(`SET LOCAL work_mem = '192MB'`);
  await q(`CREATE TEMP TABLE lm (import_id bigint, line_number bigint, record_id text, key text, service text, zone text, started_at timestamptz,
             volume bigint, amount bigint, dup boolean, unknown boolean) ON COMMIT DROP`);
  await q(`CREATE TEMP TABLE lo (id bigint, key text, service text, zone text, started_at timestamptz, volume bigint, amount bigint, dup boolean) ON COMMIT DROP`);
  await q(`CREATE TEMP TABLE agg (service text, zone text, category text, mno_records bigint, our_records bigint, mno_volume numeric, our_volume numeric,
             rate_card numeric, claimed numeric, retail numeric) ON COMMIT DROP`);
  const knownSql =
    identityKey === 'imsi'
      ? `EXISTS (SELECT 1 FROM sims s WHERE s.imsi = j.m_key)`
      : `EXISTS (SELECT 1 FROM subscribers s WHERE s.msisdn = j.m_key)`;
  // 1. One pass: both sides numbered within identical (key, service, start, volume) groups, a hash
  //    FULL JOIN pairs the n-th record with the n-th event; exact pairs are aggregated (and rate
  //    mismatches among them recorded); unpaired rows of either side go to small temp tables.
  //    The groups are listed start and volume first: the same groups, but the window's sort then
  //    decides nearly every comparison on an integer instead of a locale-aware text compare of the
  //    key (about half the time of this statement on 625k rows a side).
  await q(
    `WITH m AS (
       SELECT w.import_id, w.line_number, w.record_id, ${keyExpr(identityKey, 'w')} AS key, w.service, w.zone, w.started_at, w.volume,
              w.wholesale_amount_micros AS amount,
              row_number() OVER win AS xrn,
              coalesce(lag(w.zone) OVER win = w.zone AND lag(w.wholesale_amount_micros) OVER win = w.wholesale_amount_micros, false) AS dup
         FROM wholesale_records w
        WHERE w.import_id = ANY(?::bigint[]) AND w.chunk = ? AND w.started_at >= ? AND w.started_at < ?
       WINDOW win AS (PARTITION BY w.started_at, w.volume, ${keyExpr(identityKey, 'w')}, w.service
                      ORDER BY w.zone, w.wholesale_amount_micros, w.import_id, w.line_number)
     ), o AS (
       SELECT u.id, u.key, u.service, u.zone, u.started_at, u.volume, u.amount_micros AS amount,
              row_number() OVER win AS xrn, coalesce(lag(u.zone) OVER win = u.zone, false) AS dup
         FROM reconciliation_our_usage u WHERE u.run_id = ? AND u.chunk = ?
       WINDOW win AS (PARTITION BY u.started_at, u.volume, u.key, u.service ORDER BY u.zone, u.id)
     ), j AS MATERIALIZED (
       SELECT m.import_id, m.line_number, m.record_id, m.key AS m_key, m.service AS m_service, m.zone AS m_zone, m.started_at AS m_started_at,
              m.volume AS m_volume, m.amount AS m_amount, m.dup AS m_dup,
              o.id AS o_id, o.key AS o_key, o.service AS o_service, o.zone AS o_zone, o.started_at AS o_started_at, o.volume AS o_volume,
              o.amount AS o_amount, o.dup AS o_dup,
              ${price('m.volume', 'rm_')} AS m_price, ${price('o.volume', 'ro_')} AS o_price,
              (rm_.micros_per_unit IS NULL OR abs(m.amount - ${price('m.volume', 'rm_')}) > ${tol.amountMicros}) AS bad_rate
         FROM m FULL JOIN o ON o.key = m.key AND o.service = m.service AND o.started_at = m.started_at AND o.volume = m.volume AND o.xrn = m.xrn
         LEFT JOIN reconciliation_rates rm_ ON rm_.terms_id = ${T} AND rm_.service = m.service AND rm_.zone = m.zone
         LEFT JOIN reconciliation_rates ro_ ON ro_.terms_id = ${T} AND ro_.service = o.service AND ro_.zone = o.zone
     ), a AS (
       INSERT INTO lm SELECT import_id, line_number, record_id, m_key, m_service, m_zone, m_started_at, m_volume, m_amount, m_dup, NOT ${knownSql}
         FROM j WHERE o_id IS NULL
     ), b AS (
       INSERT INTO lo SELECT o_id, o_key, o_service, o_zone, o_started_at, o_volume, o_amount, o_dup FROM j WHERE import_id IS NULL
     ), c AS (
       INSERT INTO reconciliation_discrepancies (run_id, chunk, category, side, import_id, line_number, record_id, mno_key, mno_service, mno_zone,
         mno_started_at, mno_volume, mno_amount_micros, rate_card_micros, rated_usage_id, our_key, our_service, our_zone, our_started_at,
         our_volume, our_amount_micros, amount_at_stake_micros)
       SELECT ?, ?, 'rate_mismatch', 'both', import_id, line_number, record_id, m_key, m_service, m_zone, m_started_at, m_volume, m_amount,
              o_price, o_id, o_key, o_service, o_zone, o_started_at, o_volume, o_amount, m_amount - coalesce(m_price, 0)
         FROM j WHERE import_id IS NOT NULL AND o_id IS NOT NULL AND bad_rate
     )
     INSERT INTO agg
     SELECT m_service, m_zone, CASE WHEN bad_rate THEN 'rate_mismatch' ELSE 'matched' END, count(*), count(*), sum(m_volume), sum(o_volume),
            coalesce(sum(o_price), 0), sum(m_amount), sum(o_amount)
       FROM j WHERE import_id IS NOT NULL AND o_id IS NOT NULL GROUP BY 1, 2, 3`,
    [run.importIds, chunk, run.periodStart, run.periodEnd, run.id, chunk, run.id, chunk],
  );
  await q(`ANALYZE lm`);
  await q(`ANALYZE lo`);
  // 2. Fuzzy pairs among the leftovers (few): same key and service, |Δt| ≤ window; rounds of mutual best.
  const volTol = `greatest(CASE o.service WHEN 'data' THEN ${tol.volumeAbsolute.data ?? 0n} WHEN 'voice' THEN ${tol.volumeAbsolute.voice ?? 0n} ELSE ${tol.volumeAbsolute.sms ?? 0n} END,
                  div(o.volume::numeric * ${tol.volumeRelativePpm}, 1000000))`;
  await q(`CREATE TEMP TABLE pr (import_id bigint, line_number bigint, oid bigint) ON COMMIT DROP`);
  await q(
    `CREATE TEMP TABLE cand ON COMMIT DROP AS
     SELECT m.import_id, m.line_number, o.id AS oid, (abs(m.volume - o.volume) <= ${volTol}) AS vol_ok,
            abs(extract(epoch FROM (m.started_at - o.started_at))) AS dt, abs(m.volume - o.volume) AS dv
       FROM lm m JOIN lo o ON o.key = m.key AND o.service = m.service
        AND o.started_at BETWEEN m.started_at - make_interval(secs => ?::double precision / 1000) AND m.started_at + make_interval(secs => ?::double precision / 1000)
      WHERE NOT m.dup AND NOT m.unknown AND NOT o.dup`,
    [tol.timeWindowMs, tol.timeWindowMs],
  );
  for (let round = 0; round < 10_000; round++) {
    const { rows } = await q(
      `WITH bm AS (SELECT DISTINCT ON (import_id, line_number) import_id, line_number, oid FROM cand
                    ORDER BY import_id, line_number, vol_ok DESC, dt, dv, oid),
            bo AS (SELECT DISTINCT ON (oid) import_id, line_number, oid FROM cand
                    ORDER BY oid, vol_ok DESC, dt, dv, import_id, line_number),
            ins AS (INSERT INTO pr SELECT bm.import_id, bm.line_number, bm.oid FROM bm JOIN bo USING (import_id, line_number, oid) RETURNING *),
            del AS (DELETE FROM cand c USING ins WHERE (c.import_id = ins.import_id AND c.line_number = ins.line_number) OR c.oid = ins.oid)
       SELECT count(*)::int AS n FROM ins`,
    );
    if (rows[0].n === 0) break;
  }
  // 3. Classify the leftovers: fuzzy pairs, then what stayed alone on either side.
  await q(
    `CREATE TEMP TABLE res ON COMMIT DROP AS
     SELECT CASE WHEN abs(m.volume - o.volume) > ${volTol} THEN 'volume_mismatch'
                 WHEN rm_.micros_per_unit IS NULL OR abs(m.amount - ${price('m.volume', 'rm_')}) > ${tol.amountMicros} THEN 'rate_mismatch'
                 ELSE 'matched' END AS category,
            'both' AS side, m.import_id, m.line_number, m.record_id, m.key AS mno_key, m.service AS mno_service, m.zone AS mno_zone,
            m.started_at AS mno_started_at, m.volume AS mno_volume, m.amount AS mno_amount, ${price('m.volume', 'rm_')} AS mno_rate_card,
            o.id AS oid, o.key AS our_key, o.service AS our_service, o.zone AS our_zone, o.started_at AS our_started_at,
            o.volume AS our_volume, o.amount AS our_amount, ${price('o.volume', 'ro_')} AS our_rate_card
       FROM pr JOIN lm m ON m.import_id = pr.import_id AND m.line_number = pr.line_number JOIN lo o ON o.id = pr.oid
       LEFT JOIN reconciliation_rates rm_ ON rm_.terms_id = ${T} AND rm_.service = m.service AND rm_.zone = m.zone
       LEFT JOIN reconciliation_rates ro_ ON ro_.terms_id = ${T} AND ro_.service = o.service AND ro_.zone = o.zone
     UNION ALL
     SELECT CASE WHEN m.unknown THEN 'unknown_subscriber' WHEN m.dup THEN 'duplicate' ELSE 'missing_ours' END,
            'mno', m.import_id, m.line_number, m.record_id, m.key, m.service, m.zone, m.started_at, m.volume, m.amount, ${price('m.volume', 'rm_')},
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
       FROM lm m LEFT JOIN reconciliation_rates rm_ ON rm_.terms_id = ${T} AND rm_.service = m.service AND rm_.zone = m.zone
      WHERE NOT EXISTS (SELECT 1 FROM pr WHERE pr.import_id = m.import_id AND pr.line_number = m.line_number)
     UNION ALL
     SELECT CASE WHEN o.dup THEN 'duplicate' ELSE 'missing_mno' END,
            'ours', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            o.id, o.key, o.service, o.zone, o.started_at, o.volume, o.amount, ${price('o.volume', 'ro_')}
       FROM lo o LEFT JOIN reconciliation_rates ro_ ON ro_.terms_id = ${T} AND ro_.service = o.service AND ro_.zone = o.zone
      WHERE NOT EXISTS (SELECT 1 FROM pr WHERE pr.oid = o.id)`,
  );
  await q(
    `INSERT INTO reconciliation_discrepancies (run_id, chunk, category, side, import_id, line_number, record_id, mno_key, mno_service, mno_zone,
       mno_started_at, mno_volume, mno_amount_micros, rate_card_micros, rated_usage_id, our_key, our_service, our_zone, our_started_at,
       our_volume, our_amount_micros, amount_at_stake_micros)
     SELECT ?, ?, category, side, import_id, line_number, record_id, mno_key, mno_service, mno_zone, mno_started_at, mno_volume, mno_amount,
            coalesce(our_rate_card, mno_rate_card), oid, our_key, our_service, our_zone, our_started_at, our_volume, our_amount,
            CASE category
              WHEN 'volume_mismatch' THEN mno_amount - coalesce(our_rate_card, 0)
              WHEN 'rate_mismatch' THEN mno_amount - coalesce(mno_rate_card, 0)
              WHEN 'missing_mno' THEN coalesce(our_rate_card, 0)
              WHEN 'duplicate' THEN coalesce(mno_amount, our_amount)
              ELSE mno_amount END
       FROM res WHERE category <> 'matched'
      ORDER BY coalesce(mno_started_at, our_started_at), line_number, oid`,
    [run.id, chunk],
  );
  await q(
    `INSERT INTO agg
     SELECT coalesce(mno_service, our_service), coalesce(mno_zone, our_zone), category, count(line_number), count(oid),
            coalesce(sum(mno_volume), 0), coalesce(sum(our_volume), 0), coalesce(sum(coalesce(our_rate_card, mno_rate_card)), 0),
            coalesce(sum(mno_amount), 0), coalesce(sum(our_amount), 0)
       FROM res GROUP BY 1, 2, 3`,
  );
  const { rows: lines } = await q(
    `INSERT INTO reconciliation_settlement_lines (run_id, chunk, service, zone, category, mno_records, our_records, mno_volume, our_volume,
       rate_card_micros, mno_claimed_micros, retail_revenue_micros)
     SELECT ?, ?, service, zone, category, sum(mno_records), sum(our_records), sum(mno_volume), sum(our_volume), sum(rate_card), sum(claimed), sum(retail)
       FROM agg GROUP BY service, zone, category
     RETURNING category, mno_records, our_records`,
    [run.id, chunk],
  );
  const counts = emptyCounts();
  for (const l of lines as { category: ReconciliationCategory; mno_records: string; our_records: string }[]) {
    // A pair counts once; an unpaired record once on its side.
    const pair = l.category === 'matched' || l.category === 'volume_mismatch' || l.category === 'rate_mismatch';
    counts[l.category] += pair ? Number(l.mno_records) : Number(l.mno_records) + Number(l.our_records);
  }
  return counts;
}

/** Total the chunks, write the reports, mark the run ready for approval. Idempotent. */
export async function finalizeRun(db: Knex, runId: string): Promise<ReconciliationRun> {
  const run = await getRun(db, runId);
  if (run.status === 'ready' || run.status === 'approved') return run;
  assertOpen(run);
  const { rows: d } = await db.raw(`SELECT count(*)::int AS n FROM reconciliation_chunks WHERE run_id = ?`, [runId]);
  if (d[0].n !== run.chunkCount) throw new Error(`run ${runId}: ${d[0].n} of ${run.chunkCount} chunks are done`);
  await db('reconciliation_runs').where({ id: runId }).update({ status: 'settling', chunks_done: d[0].n, updated_at: db.fn.now() });
  const partner = await getPartner(db, run.partnerCode);
  const terms = await termsById(db, run.termsId);
  const { rows } = await db.raw(
    `SELECT service, zone, category, sum(mno_records)::text AS mno_records, sum(our_records)::text AS our_records,
            sum(mno_volume)::text AS mno_volume, sum(our_volume)::text AS our_volume, sum(rate_card_micros)::text AS rate_card,
            sum(mno_claimed_micros)::text AS mno_claimed, sum(retail_revenue_micros)::text AS retail
       FROM reconciliation_settlement_lines WHERE run_id = ? GROUP BY service, zone, category ORDER BY service, zone, category`,
    [runId],
  );
  const { rows: imports } = run.importIds.length
    ? await db.raw(`SELECT id::text, file_name, content_sha256, records::int, rejected::int FROM wholesale_imports WHERE id = ANY(?::bigint[]) ORDER BY id`, [run.importIds])
    : { rows: [] };
  // The reports describe the run as this transaction leaves it: ready for approval.
  const reports = buildReports({ run: { ...run, status: 'ready' }, partner, terms, lines: rows, imports });
  await db.transaction(async (trx) => {
    await trx('reconciliation_reports').where({ run_id: runId }).delete();
    await trx('reconciliation_reports').insert([
      { run_id: runId, format: 'csv', content: reports.csv },
      { run_id: runId, format: 'html', content: reports.html },
      { run_id: runId, format: 'json', content: JSON.stringify(reports.summary, null, 2) },
    ]);
    await trx('reconciliation_runs').where({ id: runId }).update({ status: 'ready', summary: JSON.stringify(reports.summary), updated_at: trx.fn.now() });
  });
  await db.raw(`DROP TABLE IF EXISTS reconciliation_our_usage_${run.id}`);
  return getRun(db, runId);
}

export async function markRunFailed(db: Knex, runId: string, error: string): Promise<void> {
  await db('reconciliation_runs').where({ id: runId }).whereNotIn('status', ['approved', 'ready']).update({ status: 'failed', error, updated_at: db.fn.now() });
}

/** Finance approval: the run must be ready; afterwards the run and its results are immutable. */
export async function approveRun(db: Knex, runId: string, actor: string): Promise<ReconciliationRun> {
  const run = await getRun(db, runId);
  if (run.status === 'approved') throw new DomainError('RUN_APPROVED', `run ${runId} was already approved by ${run.approvedBy}`, ['input', 'runId']);
  if (run.status !== 'ready') throw new DomainError('RUN_NOT_READY', `run ${runId} is ${run.status}; only a ready run can be approved`, ['input', 'runId']);
  try {
    await db.transaction(async (trx) => {
      await trx('reconciliation_runs').where({ id: runId, status: 'ready' }).update({ status: 'approved', approved_by: actor, approved_at: trx.fn.now(), updated_at: trx.fn.now() });
      await trx('reconciliation_runs')
        .where({ partner_id: run.partnerId, period: run.period })
        .whereNot({ id: runId })
        .whereIn('status', ['ready', 'failed', 'pending'])
        .update({ status: 'superseded', updated_at: trx.fn.now() });
    });
  } catch (err) {
    if ((err as { code?: string }).code === '23505') {
      throw new DomainError('PERIOD_APPROVED', `another version of ${run.partnerCode} ${run.period} is already approved`, ['input', 'runId']);
    }
    throw err;
  }
  return getRun(db, runId);
}

export async function getReport(db: Knex, runId: string, format: 'csv' | 'html' | 'json'): Promise<string | null> {
  const row = await db('reconciliation_reports').where({ run_id: runId, format }).first();
  return row ? (row.content as string) : null;
}

export interface Discrepancy {
  id: string;
  runId: string;
  category: ReconciliationCategory;
  side: 'mno' | 'ours' | 'both';
  importId: string | null;
  lineNumber: number | null;
  recordId: string | null;
  mno: { key: string; service: string; zone: string; startedAt: Date; volume: bigint; amountMicros: bigint } | null;
  ours: { ratedUsageId: string; key: string; service: string; zone: string; startedAt: Date; volume: bigint; amountMicros: bigint } | null;
  rateCardMicros: bigint | null;
  amountAtStakeMicros: bigint;
}

export const toDiscrepancy = (r: Record<string, unknown>): Discrepancy => ({
  id: String(r.id),
  runId: String(r.run_id),
  category: r.category as ReconciliationCategory,
  side: r.side as Discrepancy['side'],
  importId: r.import_id == null ? null : String(r.import_id),
  lineNumber: r.line_number == null ? null : Number(r.line_number),
  recordId: (r.record_id as string | null) ?? null,
  mno:
    r.line_number == null
      ? null
      : {
          key: r.mno_key as string,
          service: r.mno_service as string,
          zone: r.mno_zone as string,
          startedAt: r.mno_started_at as Date,
          volume: BigInt(r.mno_volume as string),
          amountMicros: BigInt(r.mno_amount_micros as string),
        },
  ours:
    r.rated_usage_id == null
      ? null
      : {
          ratedUsageId: String(r.rated_usage_id),
          key: r.our_key as string,
          service: r.our_service as string,
          zone: r.our_zone as string,
          startedAt: r.our_started_at as Date,
          volume: BigInt(r.our_volume as string),
          amountMicros: BigInt(r.our_amount_micros as string),
        },
  rateCardMicros: r.rate_card_micros == null ? null : BigInt(r.rate_card_micros as string),
  amountAtStakeMicros: BigInt(r.amount_at_stake_micros as string),
});

/** Keyset page of a run's discrepancies (by id), optionally of one category. Cursors are opaque. */
export async function listDiscrepancies(
  db: Knex,
  runId: string,
  opts: { category?: ReconciliationCategory | null; after?: string | null; first?: number | null } = {},
): Promise<Page<Discrepancy>> {
  const first = Math.min(Math.max(opts.first ?? 50, 1), 500);
  if (!/^\d{1,18}$/.test(runId)) return { items: [], cursors: [], hasNextPage: false, hasPreviousPage: false };
  const q = db('reconciliation_discrepancies').where({ run_id: runId }).orderBy('id').limit(first + 1);
  if (opts.category) q.where({ category: opts.category });
  if (opts.after) q.where('id', '>', decodeDiscrepancyCursor(opts.after));
  const rows = await q;
  const items = rows.slice(0, first).map(toDiscrepancy);
  return { items, cursors: items.map((d: Discrepancy) => Buffer.from(`d:${d.id}`).toString('base64url')), hasNextPage: rows.length > first, hasPreviousPage: !!opts.after };
}

function decodeDiscrepancyCursor(cursor: string): string {
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^d:\d{1,18}$/.test(s)) throw new InvalidCursorError('invalid cursor');
  return s.slice(2);
}
