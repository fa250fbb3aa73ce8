/**
 * Tamper evidence for the journal, without a lock on the hot path.
 *
 * A sealing job (run periodically: `startJournalSealer`, or `sealJournal` from a schedule) takes
 * the journal entries written since the last seal, up to a safe horizon, and writes one
 * `journal_seals` row per range of at most `maxEntries` entries:
 *
 *   digest(entry) = SHA-256 of the canonical text of the entry and its postings
 *                   (jsonb_build_array of every column, postings by id; a posting's source_ref
 *                   only where set)
 *   hash(seal)    = SHA-256( prev_hash "\n" seal_no "\n" entry ids "\n" || digests )
 *
 * chaining each seal to the previous one (genesis: 64 zeros). `verifyJournalSeals` recomputes
 * every digest and the chain, and names each entry that changed, vanished or appeared inside a
 * sealed range — including changes made by a superuser with the append-only triggers disabled.
 * Rewriting the whole chain is detected by comparing the head hash with one recorded elsewhere
 * (`expectHead`: the sealer logs each head; publish it).
 *
 * Safe horizon: ids come from a sequence and commit out of order, so an entry with a small id can
 * appear after a larger one. The sealer reads the sequence's last value M, then waits until every
 * transaction that started before that read has ended; after that no entry with id ≤ M can still
 * appear. No lock is taken and the hot path never waits for the sealer.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';

export const GENESIS_HASH = '0'.repeat(64);

const CANONICAL = `
  SELECT e.id::text AS id, sha256(convert_to(jsonb_build_array(
           e.id, e.entry_type, e.source_ref, e.idempotency_key, e.actor, e.reason, e.details,
           to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
           to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
           -- A posting's source_ref only when set, so digests of entries sealed before the column are unchanged.
           (SELECT coalesce(jsonb_agg(jsonb_build_array(p.id, p.ledger_account_id, p.unit, p.amount)
                                        || CASE WHEN p.source_ref IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(p.source_ref) END ORDER BY p.id), '[]'::jsonb)
              FROM postings p WHERE p.journal_entry_id = e.id))::text, 'UTF8')) AS digest
    FROM journal_entries e`;

export function sealHash(prevHash: string, sealNo: bigint | number | string, entryIds: string[], digests: Buffer): string {
  return crypto.createHash('sha256').update(`${prevHash}\n${sealNo}\n${entryIds.join(',')}\n`).update(digests).digest('hex');
}

export interface SealResult {
  seals: number;
  entries: number;
  head: { sealNo: string; lastEntryId: string; hash: string } | null;
  /** True when the horizon could not be reached (a transaction stayed open too long). */
  waited: boolean;
}

async function lastSeal(db: Knex): Promise<{ sealNo: string; lastEntryId: string; hash: string } | null> {
  const r = await db('journal_seals').orderBy('seal_no', 'desc').first('seal_no', 'last_entry_id', 'hash');
  return r ? { sealNo: String(r.seal_no), lastEntryId: String(r.last_entry_id), hash: r.hash } : null;
}

/** The largest journal entry id below which no entry can still appear, or null after `timeoutMs`. */
async function safeHorizon(db: Knex, timeoutMs: number): Promise<string | null> {
  const r = await db.raw(`
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END::text AS m, clock_timestamp() AS t
      FROM (SELECT last_value, is_called FROM journal_entries_id_seq) s`);
  const { m, t } = r.rows[0] as { m: string; t: Date };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = await db.raw(`
      SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
         AND xact_start IS NOT NULL AND xact_start <= ?`, [t]);
    if (busy.rows[0].n === 0) return m;
    if (Date.now() > deadline) return null;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Seals every entry up to the safe horizon, in ranges of at most `maxEntries`. Concurrent sealers
 * are safe: a range is sealed once (unique seal number and last entry id), the loser retries. */
export async function sealJournal(db: Knex, options: { maxEntries?: number; horizonTimeoutMs?: number } = {}): Promise<SealResult> {
  const maxEntries = options.maxEntries ?? 10_000;
  const horizon = await safeHorizon(db, options.horizonTimeoutMs ?? 10_000);
  let seals = 0;
  let entries = 0;
  let head = await lastSeal(db);
  if (horizon === null) return { seals, entries, head, waited: true };
  for (;;) {
    const from = head?.lastEntryId ?? '0';
    const rows = (await db.raw(`${CANONICAL} WHERE e.id > ? AND e.id <= ? ORDER BY e.id LIMIT ?`, [from, horizon, maxEntries])).rows as { id: string; digest: Buffer }[];
    if (rows.length === 0) break;
    const ids = rows.map((r) => r.id);
    const digests = Buffer.concat(rows.map((r) => r.digest));
    const sealNo = (BigInt(head?.sealNo ?? '0') + 1n).toString();
    const prev = head?.hash ?? GENESIS_HASH;
    const hash = sealHash(prev, sealNo, ids, digests);
    try {
      await db('journal_seals').insert({
        seal_no: sealNo, first_entry_id: ids[0], last_entry_id: ids[ids.length - 1], entry_count: ids.length,
        entry_ids: db.raw('?::bigint[]', [`{${ids.join(',')}}`]), entry_digests: digests, prev_hash: prev, hash,
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        head = await lastSeal(db); // another sealer got there first
        continue;
      }
      throw err;
    }
    head = { sealNo, lastEntryId: ids[ids.length - 1], hash };
    seals++;
    entries += ids.length;
    if (rows.length < maxEntries) break;
  }
  return { seals, entries, head, waited: false };
}

export interface SealProblem {
  kind: 'entry_changed' | 'entry_missing' | 'entry_unsealed_in_range' | 'seal_hash_mismatch' | 'chain_broken' | 'head_mismatch';
  sealNo?: string;
  entryId?: string;
  detail: string;
}

export interface SealReport {
  seals: number;
  sealedEntries: number;
  unsealedEntries: number;
  head: string;
  problems: SealProblem[];
}

/** Recomputes every seal's digests and the chain; lists what does not match. */
export async function verifyJournalSeals(db: Knex, options: { expectHead?: string; limit?: number } = {}): Promise<SealReport> {
  const limit = options.limit ?? 1000;
  const problems: SealProblem[] = [];
  let prevHash = GENESIS_HASH;
  let prevLast = '0';
  let expectedNo = 1n;
  let seals = 0;
  let sealedEntries = 0;
  let after = 0n;
  for (;;) {
    const batch = await db('journal_seals').where('seal_no', '>', after.toString()).orderBy('seal_no').limit(100);
    if (batch.length === 0) break;
    for (const s of batch) {
      const sealNo = String(s.seal_no);
      after = BigInt(sealNo);
      seals++;
      const ids: string[] = (s.entry_ids as (string | number)[]).map(String);
      const digests: Buffer = s.entry_digests;
      if (BigInt(sealNo) !== expectedNo || s.prev_hash !== prevHash) {
        problems.push({ kind: 'chain_broken', sealNo, detail: `seal ${sealNo} does not follow seal ${expectedNo - 1n} (expected previous hash ${prevHash}, found ${s.prev_hash})` });
      }
      const recomputed = sealHash(s.prev_hash, sealNo, ids, digests);
      if (recomputed !== s.hash) problems.push({ kind: 'seal_hash_mismatch', sealNo, detail: `seal ${sealNo}'s stored hash does not match its contents` });
      // Every entry now in (previous seal's last, this seal's last] must be exactly the sealed ones, unchanged.
      const rows = (await db.raw(`${CANONICAL} WHERE e.id > ? AND e.id <= ? ORDER BY e.id`, [prevLast, String(s.last_entry_id)])).rows as { id: string; digest: Buffer }[];
      const now = new Map(rows.map((r) => [r.id, r.digest]));
      ids.forEach((id, i) => {
        const d = now.get(id);
        if (!d) problems.push({ kind: 'entry_missing', sealNo, entryId: id, detail: `journal entry ${id} (seal ${sealNo}) no longer exists` });
        else if (!d.equals(digests.subarray(i * 32, i * 32 + 32))) {
          problems.push({ kind: 'entry_changed', sealNo, entryId: id, detail: `journal entry ${id} or its postings changed after seal ${sealNo}` });
        }
        now.delete(id);
      });
      for (const id of now.keys()) {
        problems.push({ kind: 'entry_unsealed_in_range', sealNo, entryId: id, detail: `journal entry ${id} appeared inside the range of seal ${sealNo}` });
      }
      sealedEntries += ids.length;
      prevHash = s.hash;
      prevLast = String(s.last_entry_id);
      expectedNo = BigInt(sealNo) + 1n;
      if (problems.length >= limit) break;
    }
    if (problems.length >= limit) break;
  }
  if (options.expectHead && options.expectHead !== prevHash) {
    problems.push({ kind: 'head_mismatch', detail: `the chain ends at ${prevHash}, not at the recorded head ${options.expectHead}` });
  }
  const unsealed = await db('journal_entries').where('id', '>', prevLast).count({ n: '*' }).first();
  return { seals, sealedEntries, unsealedEntries: Number(unsealed?.n ?? 0), head: prevHash, problems: problems.slice(0, limit) };
}

/** Seals every `intervalMs`; logs each new head through `onSeal` (publish it for `expectHead`). */
export function startJournalSealer(
  db: Knex, options: { intervalMs?: number; maxEntries?: number; onSeal?: (r: SealResult) => void; onError?: (err: unknown) => void } = {},
): { stop(): Promise<void> } {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = sealJournal(db, { maxEntries: options.maxEntries })
      .then((r) => { if (r.seals > 0) options.onSeal?.(r); })
      .catch((err) => options.onError?.(err))
      .finally(() => { running = null; });
  };
  const timer = setInterval(tick, options.intervalMs ?? 60_000);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      if (running) await running;
    },
  };
}
