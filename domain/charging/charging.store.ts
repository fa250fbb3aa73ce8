/**
 * SQL of the charging hot path, on raw `pg` clients (no query builder). Per batch:
 *
 *  - (only for what the engine has not cached) one statement resolving lines: identity → line,
 *    account, parent account, subscription, plan, bucket ids and wallet id; no locks;
 *  - one statement that locks and reads what the batch touches, by primary key only;
 *  - one statement that writes everything the batch decided.
 *
 * All statements have a fixed text and are prepared once per connection. Rows travel as one JSON
 * document per table (`json_to_recordset` on the server): one native JSON.stringify in Node, no
 * per-element escaping; PostgreSQL validates it as `json` and converts only the columns it stores
 * as jsonb.
 *
 * Lock order, the same for every batch and every other writer that goes through the engine:
 * charging sessions (by ref) → buckets (by ledger account id) → wallets (by ledger account id).
 * `ORDER BY … FOR UPDATE` takes the row locks in sort order, so two batches never wait on each
 * other in a cycle.
 */
import type { PoolClient } from 'pg';
import type {
  BucketState,
  ChargingDataResponse,
  Hold,
  LineProfile,
  PaymentType,
  Reservation,
  SessionState,
  StoredAnswer,
  WalletState,
} from './charging.types';
import { answerKey, type BatchOutput } from './charging-decision';
import type { SubscriberState } from '../subscribers/subscriber-lifecycle';

// ---- resolving lines (cacheable, no locks) ---------------------------------------------------

/** What the engine caches per line: everything but balances and the line's state. */
export interface LineInfo extends LineProfile {
  subscriberId: string;
  /** Buckets the line may draw from (its subscription's, its account's and its parent's pools). */
  buckets: { id: string; service: BucketState['service']; validUntil: number }[];
  walletId: string | null;
}

export interface ResolveKeys {
  msisdns: string[];
  imsis: string[];
  subscriberIds: string[];
  refs: string[];
  accountIds: string[];
}

export interface Resolved {
  lines: LineInfo[];
  /** ChargingDataRef → subscriber id, for the refs asked. */
  sessions: Map<string, string>;
  /** Billing account id → wallet ledger account id, for the accounts asked. */
  wallets: Map<string, string>;
}

export const RESOLVE_SQL = `
WITH
ss AS (SELECT cs.charging_data_ref, cs.subscriber_id FROM charging_sessions cs WHERE cs.charging_data_ref = ANY($4::text[])),
ids AS (
  -- live lines only (the partial unique indexes); a terminated line is an unknown user
  SELECT s.id FROM subscribers s WHERE s.msisdn = ANY($1::text[]) AND s.state <> 'terminated'
  UNION SELECT s.id FROM sims i JOIN subscribers s ON s.sim_id = i.id AND s.state <> 'terminated' AND s.sim_id IS NOT NULL
   WHERE i.imsi = ANY($2::text[])
  UNION SELECT unnest($3::uuid[])
  UNION SELECT subscriber_id FROM ss),
subs AS (
  SELECT s.id, s.msisdn, s.billing_account_id, i.imsi, a.parent_account_id, a.payment_type, a.currency, sub.id AS subscription_id, sub.plan_id
    FROM ids
    JOIN subscribers s ON s.id = ids.id
    JOIN billing_accounts a ON a.id = s.billing_account_id
    LEFT JOIN sims i ON i.id = s.sim_id
    LEFT JOIN LATERAL (SELECT x.id, x.plan_id FROM subscriptions x
                        WHERE x.subscriber_id = s.id AND x.state = 'active' LIMIT 1) sub ON true)
SELECT
  (SELECT coalesce(json_agg(json_build_array(subs.id, subs.msisdn, subs.billing_account_id, subs.imsi, subs.parent_account_id,
           subs.payment_type, subs.currency, subs.subscription_id, subs.plan_id,
           (SELECT coalesce(json_agg(json_build_array(b.id::text, b.service, b.until_ms)), '[]') FROM (
              SELECT x.ledger_account_id AS id, x.service, floor(extract(epoch FROM x.valid_until) * 1000)::bigint AS until_ms
                FROM buckets x WHERE x.subscription_id = subs.subscription_id AND x.subscription_id IS NOT NULL AND x.valid_until > now()
              UNION ALL
              SELECT x.ledger_account_id, x.service, floor(extract(epoch FROM x.valid_until) * 1000)::bigint
                FROM buckets x WHERE x.subscription_id IS NULL AND x.billing_account_id = subs.billing_account_id AND x.valid_until > now()
              UNION ALL
              SELECT x.ledger_account_id, x.service, floor(extract(epoch FROM x.valid_until) * 1000)::bigint
                FROM buckets x WHERE x.subscription_id IS NULL AND x.billing_account_id = subs.parent_account_id AND x.valid_until > now()) b),
           (SELECT w.ledger_account_id::text FROM wallets w WHERE w.billing_account_id = subs.billing_account_id))), '[]') FROM subs) AS lines,
  (SELECT coalesce(json_agg(json_build_array(charging_data_ref, subscriber_id)), '[]') FROM ss) AS sessions,
  (SELECT coalesce(json_agg(json_build_array(w.billing_account_id, w.ledger_account_id::text)), '[]')
     FROM wallets w WHERE w.billing_account_id = ANY($5::uuid[])) AS wallets`;

type Row = unknown[];

// ---- round trips -----------------------------------------------------------------------------
//
// A batch's transaction takes two round trips: `BEGIN; EXECUTE lock(…)` and `EXECUTE write(…);
// COMMIT`, each one simple-protocol message carrying two statements (node-pg has no pipelining).
// The statements are prepared once per connection with SQL PREPARE (so they keep their plans);
// parameters travel as literals: text with single quotes doubled, which is exact with
// standard_conforming_strings on (set with the connection) and needs no other escaping — NUL, the
// one character a literal cannot hold, is refused by the API and never produced by the engine.

const preparedOn = new WeakMap<PoolClient, Set<string>>();

/** Sets what the engine's statements rely on, once per connection. */
export async function prepareConnection(client: PoolClient): Promise<void> {
  if (preparedOn.has(client)) return;
  // Every statement of the engine reaches rows by key, so its plans must be index plans whatever
  // the statistics say: a plan prepared while a table is small (a fresh database) would otherwise
  // keep hash-joining a sequential scan of it as it grows. Sequential scans and hash/merge joins
  // are priced out (not forbidden: the double-entry trigger still scans its transition table).
  // jit off: short OLTP statements never gain from it, and a generic plan's estimate could make
  // each execution pay for compiling.
  await client.query(
    'SET plan_cache_mode = force_generic_plan; SET standard_conforming_strings = on; SET jit = off; ' +
    'SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off',
  );
  preparedOn.set(client, new Set());
}

/** After `prepared statement does not exist` (a pooler's DISCARD ALL, say): prepare again. */
export function forgetPrepared(client: PoolClient): void {
  preparedOn.delete(client);
}

async function ensurePrepared(client: PoolClient, name: string, text: string): Promise<void> {
  let names = preparedOn.get(client);
  if (!names) {
    await prepareConnection(client);
    names = preparedOn.get(client)!;
  }
  if (names.has(name)) return;
  await client.query(`PREPARE ${name} AS ${text}`);
  names.add(name);
}

function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text = String(value);
  if (text.includes('\u0000')) throw new Error('a charging statement parameter contains NUL');
  return `'${text.replaceAll("'", "''")}'`;
}

function executeSql(name: string, values: unknown[]): string {
  return values.length === 0 ? `EXECUTE ${name}` : `EXECUTE ${name}(${values.map(literal).join(',')})`;
}

export async function resolveLines(client: PoolClient, keys: ResolveKeys): Promise<Resolved> {
  const res = await client.query({
    name: 'charging_resolve_v2',
    text: RESOLVE_SQL,
    values: [pgTextArray(keys.msisdns), pgTextArray(keys.imsis), pgTextArray(keys.subscriberIds), pgTextArray(keys.refs), pgTextArray(keys.accountIds)],
  });
  const row = res.rows[0] as Record<string, Row[]>;
  const lines = row.lines.map((r): LineInfo => ({
    subscriberId: r[0] as string, msisdn: r[1] as string, billingAccountId: r[2] as string, imsi: (r[3] as string | null) ?? null,
    parentAccountId: (r[4] as string | null) ?? null, paymentType: r[5] as PaymentType, currency: (r[6] as string).trim(),
    subscriptionId: (r[7] as string | null) ?? null, planId: (r[8] as string | null) ?? null,
    buckets: (r[9] as [string, BucketState['service'], number][]).map(([id, service, until]) => ({ id, service, validUntil: Number(until) })),
    walletId: (r[10] as string | null) ?? null,
  }));
  return {
    lines,
    sessions: new Map(row.sessions.map((r) => [r[0] as string, r[1] as string])),
    wallets: new Map(row.wallets.map((r) => [r[0] as string, r[1] as string])),
  };
}

// ---- locking and reading ---------------------------------------------------------------------

export interface LockKeys {
  refs: string[];
  subscriberIds: string[];
  bucketIds: string[];
  walletIds: string[];
  answerRefs: string[];
  answerSeqs: number[];
  walletKeys: string[];
}

export interface LockedState {
  sessions: Map<string, SessionState>;
  /** Current state of each line asked for (read, not locked). */
  states: Map<string, SubscriberState>;
  buckets: BucketState[];
  wallets: WalletState[];
  priorAnswers: Map<string, StoredAnswer>;
  priorWalletEntries: Map<string, { journalEntryId: string; balanceMicros: bigint }>;
}

const LOCK_SQL_TEMPLATE = `
WITH
sess AS MATERIALIZED (
  SELECT cs.charging_data_ref, cs.subscriber_id, cs.billing_account_id, cs.subscriber_identifier, cs.msisdn, cs.imsi,
         cs.nf_consumer, cs.state, cs.last_sequence_number, cs.reservations, cs.held_account_ids,
         floor(extract(epoch FROM cs.created_at) * 1000)::bigint AS created_ms,
         floor(extract(epoch FROM cs.released_at) * 1000)::bigint AS released_ms
    FROM charging_sessions cs
   WHERE cs.charging_data_ref = ANY($1::text[])
   ORDER BY cs.charging_data_ref
     FOR UPDATE),
bk AS MATERIALIZED (
  SELECT b.ledger_account_id, b.billing_account_id, b.subscription_id, b.service, b.unit, b.initial_units, b.balance_units,
         b.reserved_units, b.priority,
         floor(extract(epoch FROM b.valid_from) * 1000)::bigint AS from_ms,
         floor(extract(epoch FROM b.valid_until) * 1000)::bigint AS until_ms
    FROM buckets b
   WHERE b.ledger_account_id = ANY($3::bigint[] || ARRAY(SELECT unnest(held_account_ids) FROM sess))
   ORDER BY b.ledger_account_id
     FOR UPDATE),
wl AS MATERIALIZED (
  SELECT w.ledger_account_id, w.billing_account_id, w.currency, w.balance_micros, w.reserved_micros, w.credit_limit_micros
    FROM wallets w
   WHERE w.ledger_account_id = ANY($4::bigint[] || ARRAY(SELECT unnest(held_account_ids) FROM sess))
   ORDER BY w.ledger_account_id
     FOR UPDATE)
SELECT
  (SELECT coalesce(json_agg(json_build_array(charging_data_ref, subscriber_id, billing_account_id, subscriber_identifier, msisdn, imsi,
           nf_consumer, state, last_sequence_number, reservations, created_ms, released_ms)), '[]') FROM sess) AS sessions,
  (SELECT coalesce(json_agg(json_build_array(s.id, s.state)), '[]') FROM subscribers s WHERE s.id = ANY($2::uuid[])) AS states,
  (SELECT coalesce(json_agg(json_build_array(ledger_account_id::text, billing_account_id, subscription_id, service, unit,
           initial_units::text, balance_units::text, reserved_units::text, priority, from_ms, until_ms)), '[]') FROM bk) AS buckets,
  (SELECT coalesce(json_agg(json_build_array(ledger_account_id::text, billing_account_id, currency, balance_micros::text,
           reserved_micros::text, credit_limit_micros::text)), '[]') FROM wl) AS wallets,
  $answers AS answers,
  $walletEntries AS wallet_entries`;

/**
 * Stored answers by key, one primary-key probe per key asked, whatever the statistics: the keys
 * drive a LATERAL subquery (its LIMIT keeps the planner from flattening it into a plain join). As a
 * plain join, the generic plan prepared while `charging_requests` was empty or small put the table
 * on the outer side — a full scan of its primary key per execution, growing with every answer
 * stored (on a fresh bench database the lock statement went from 100 to 25,000 buffer hits a batch
 * within 20 s). Shared with `loadAnswers`; the arguments are the parameter numbers of the keys.
 */
const answerLookup = (refs: number, seqs: number) => `unnest($${refs}::text[], $${seqs}::bigint[]) k(ref, seq)
     CROSS JOIN LATERAL (SELECT x.charging_data_ref, x.invocation_sequence_number, x.http_status, x.response FROM charging_requests x
                          WHERE x.charging_data_ref = k.ref AND x.invocation_sequence_number = k.seq LIMIT 1) r`;
const ANSWERS_SQL = `(SELECT coalesce(json_agg(json_build_array(r.charging_data_ref, r.invocation_sequence_number, r.http_status, r.response)), '[]')
     FROM ${answerLookup(5, 6)})`;
const WALLET_ENTRIES_SQL = (n: number) => `(SELECT coalesce(json_agg(json_build_array(e.idempotency_key, e.id::text)), '[]')
     FROM journal_entries e WHERE e.idempotency_key = ANY($${n}::text[]))`;

/** The lock statement with only the lookups the batch needs (stored answers: one-time events;
 * journal entries by key: wallet operations). */
function lockStatement(answers: boolean, walletEntries: boolean): { name: string; text: string } {
  const text = LOCK_SQL_TEMPLATE
    .replace('$answers', answers ? ANSWERS_SQL : `'[]'::json`)
    .replace('$walletEntries', walletEntries ? WALLET_ENTRIES_SQL(answers ? 7 : 5) : `'[]'::json`);
  return { name: `charging_lock_v4_${answers ? 'a' : ''}${walletEntries ? 'w' : ''}`, text };
}

export const LOCK_SQL = lockStatement(true, true).text;

/** Opens the batch's transaction and locks and reads what it touches. */
export async function lockBatchState(client: PoolClient, keys: LockKeys): Promise<LockedState> {
  const answers = keys.answerRefs.length > 0;
  const walletEntries = keys.walletKeys.length > 0;
  const statement = lockStatement(answers, walletEntries);
  const values: unknown[] = [pgTextArray(keys.refs), pgTextArray(keys.subscriberIds), pgNumberArray(keys.bucketIds), pgNumberArray(keys.walletIds)];
  if (answers) values.push(pgTextArray(keys.answerRefs), pgNumberArray(keys.answerSeqs));
  if (walletEntries) values.push(pgTextArray(keys.walletKeys));
  await ensurePrepared(client, statement.name, statement.text);
  // Opens the batch's transaction in the same round trip.
  const results = (await client.query(`BEGIN; ${executeSql(statement.name, values)}`)) as unknown as { rows: unknown[] }[];
  const res = results[1];
  const row = res.rows[0] as Record<string, Row[]>;
  const sessions = new Map<string, SessionState>();
  for (const r of row.sessions) {
    const s = sessionFromRow(r);
    sessions.set(s.ref, s);
  }
  const states = new Map<string, SubscriberState>(row.states.map((r) => [r[0] as string, r[1] as SubscriberState]));
  const buckets = row.buckets.map((r): BucketState => ({
    id: r[0] as string, billingAccountId: r[1] as string, subscriptionId: (r[2] as string | null) ?? null,
    service: r[3] as BucketState['service'], unit: r[4] as string, initial: BigInt(r[5] as string), balance: BigInt(r[6] as string),
    reserved: BigInt(r[7] as string), priority: r[8] as number, validFrom: Number(r[9]), validUntil: Number(r[10]),
  }));
  const wallets = row.wallets.map((r): WalletState => ({
    id: r[0] as string, billingAccountId: r[1] as string, currency: (r[2] as string).trim(), balance: BigInt(r[3] as string),
    reserved: BigInt(r[4] as string), creditLimit: BigInt(r[5] as string),
  }));
  const priorAnswers = new Map<string, StoredAnswer>();
  for (const r of row.answers) {
    const a: StoredAnswer = { ref: r[0] as string, sequenceNumber: Number(r[1]), httpStatus: r[2] as number, response: (r[3] as ChargingDataResponse | null) ?? null };
    priorAnswers.set(answerKey(a.ref, a.sequenceNumber), a);
  }
  const priorWalletEntries = new Map<string, { journalEntryId: string; balanceMicros: bigint }>();
  for (const r of row.wallet_entries) priorWalletEntries.set(r[0] as string, { journalEntryId: r[1] as string, balanceMicros: 0n });
  return { sessions, states, buckets, wallets, priorAnswers, priorWalletEntries };
}

/** Stored answers looked up with a fresh snapshot (after waiting on a session lock, a request the
 * other transaction answered is visible only to a new statement). */
export async function loadAnswers(client: PoolClient, refs: string[], seqs: number[]): Promise<Map<string, StoredAnswer>> {
  const res = await client.query({
    name: 'charging_answers_v2',
    text: `SELECT r.charging_data_ref, r.invocation_sequence_number, r.http_status, r.response FROM ${answerLookup(1, 2)}`,
    values: [pgTextArray(refs), pgNumberArray(seqs)],
  });
  const map = new Map<string, StoredAnswer>();
  for (const r of res.rows) {
    const a: StoredAnswer = { ref: r.charging_data_ref, sequenceNumber: Number(r.invocation_sequence_number), httpStatus: r.http_status, response: r.response };
    map.set(answerKey(a.ref, a.sequenceNumber), a);
  }
  return map;
}

// ---- writing ---------------------------------------------------------------------------------

/**
 * The write statement is assembled from the parts a batch needs (a batch of creates writes no
 * journal entry, so neither the journal's CTEs nor the postings' statement trigger run for it);
 * each variant has a fixed text and is prepared once per connection. Parameters are named here and
 * numbered when the variant is built; `$now` is always present.
 */
interface WritePart {
  name: string;
  params: string[];
  sql: string;
}

const WRITE_PARTS: WritePart[] = [
  { name: 'bd', params: ['bIds', 'bBal', 'bRes'], sql: `
bd AS (
  UPDATE buckets b SET balance_units = b.balance_units + d.dbal, reserved_units = b.reserved_units + d.dres, updated_at = $now::timestamptz
    FROM unnest($bIds::bigint[], $bBal::bigint[], $bRes::bigint[]) d(id, dbal, dres)
   WHERE b.ledger_account_id = d.id
  RETURNING 1)` },
  { name: 'wd', params: ['wIds', 'wBal', 'wRes'], sql: `
wd AS (
  UPDATE wallets w SET balance_micros = w.balance_micros + d.dbal, reserved_micros = w.reserved_micros + d.dres, updated_at = $now::timestamptz
    FROM unnest($wIds::bigint[], $wBal::bigint[], $wRes::bigint[]) d(id, dbal, dres)
   WHERE w.ledger_account_id = d.id
  RETURNING 1)` },
  { name: 'sn', params: ['created'], sql: `
sn AS (
  INSERT INTO charging_sessions (charging_data_ref, subscriber_id, billing_account_id, subscriber_identifier, msisdn, imsi, nf_consumer,
                                 state, last_sequence_number, reservations, held_account_ids, expires_at, created_at, updated_at, released_at)
  SELECT x.ref, x.sub, x.acct, x.ident, x.msisdn, x.imsi, x.nf, x.state, x.seq, x.res, x.held, x.exp, $now::timestamptz, $now::timestamptz, x.rel
    FROM json_to_recordset($created::json) x(ref text, sub uuid, acct uuid, ident text, msisdn text, imsi text, nf text, state text, seq bigint,
                                         res json, held bigint[], exp timestamptz, rel timestamptz)
   ORDER BY x.ref
  RETURNING 1)` },
  { name: 'su', params: ['changed'], sql: `
su AS (
  UPDATE charging_sessions cs
     SET state = x.state, last_sequence_number = x.seq, reservations = x.res, held_account_ids = x.held,
         expires_at = x.exp, updated_at = $now::timestamptz, released_at = x.rel
    FROM json_to_recordset($changed::json) x(ref text, state text, seq bigint, res json, held bigint[], exp timestamptz, rel timestamptz)
   WHERE cs.charging_data_ref = x.ref
  RETURNING 1)` },
  { name: 'je', params: ['entries'], sql: `
xe AS MATERIALIZED (
  SELECT x.* FROM json_to_recordset($entries::json) x(i int, k text, t text, src text, actor text, reason text, details jsonb, at timestamptz, p json)),
je AS (
  INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, reason, details, occurred_at, recorded_at)
  SELECT xe.t, xe.src, xe.k, xe.actor, xe.reason, xe.details, xe.at, $now::timestamptz FROM xe ORDER BY xe.i
  RETURNING id, idempotency_key),
po AS (
  INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
  SELECT je.id, (e.v->>0)::bigint, e.v->>1, (e.v->>2)::bigint
    FROM je JOIN xe ON xe.k = je.idempotency_key CROSS JOIN LATERAL json_array_elements(xe.p) e(v)
  RETURNING 1)` },
  { name: 'ru', params: ['rated'], sql: `
ru AS (
  INSERT INTO rated_usage (journal_entry_id, charging_data_ref, invocation_sequence_number, rating_group, service_id, local_sequence_number,
                           subscriber_id, billing_account_id, msisdn, imsi, service, zone, destination, started_at, ended_at, used_units,
                           uplink_units, downlink_units, bucket_units, priced_units, amount_micros, uncharged_micros, currency, recorded_at)
  SELECT $entryOf(x.k), x.ref, x.seq, x.rg, x.sid, x.lsn, x.sub, x.acct, x.msisdn, x.imsi, x.svc, x.zone, x.dest, x.st, x.en, x.used,
         x.ul, x.dl, x.bu, x.pu, x.amt, x.unch, x.cur, $now::timestamptz
    FROM json_to_recordset($rated::json) x(i int, k text, ref text, seq bigint, rg bigint, sid bigint, lsn bigint, sub uuid, acct uuid,
         msisdn text, imsi text, svc text, zone text, dest text, st timestamptz, en timestamptz, used bigint, ul bigint, dl bigint,
         bu bigint, pu bigint, amt bigint, unch bigint, cur text)
   $entryJoin
   ORDER BY x.i
  RETURNING 1)` },
  { name: 'rq', params: ['requests'], sql: `
rq AS (
  INSERT INTO charging_requests (charging_data_ref, invocation_sequence_number, operation, http_status, response, journal_entry_id, received_at, recorded_at)
  SELECT x.ref, x.seq, x.op, x.status, x.resp, $entryOf(x.k), x.at, $now::timestamptz
    FROM json_to_recordset($requests::json) x(ref text, seq bigint, op text, status smallint, resp json, k text, at timestamptz)
   $entryJoin
  RETURNING 1)` },
  { name: 'ev', params: ['events'], sql: `
ev AS (
  INSERT INTO balance_events (event_type, billing_account_id, subscriber_id, ledger_account_id, threshold_percent, journal_entry_id, payload, occurred_at)
  SELECT x.t, x.acct, x.sub, x.la, x.pct, $entryOf(x.k), x.payload, x.at
    FROM json_to_recordset($events::json) x(i int, t text, acct uuid, sub uuid, la bigint, pct integer, k text, payload jsonb, at timestamptz)
   $entryJoin
   ORDER BY x.i
  RETURNING 1)` },
];

const writeVariants = new Map<string, { name: string; text: string; params: string[] }>();

/** The write statement for the parts present (by name), with its parameter order. */
export function writeStatement(parts: ReadonlySet<string>): { name: string; text: string; params: string[] } {
  const key = WRITE_PARTS.filter((p) => parts.has(p.name)).map((p) => p.name).join('_');
  const hit = writeVariants.get(key);
  if (hit) return hit;
  const withJournal = parts.has('je');
  const chosen = WRITE_PARTS.filter((p) => parts.has(p.name));
  const params = ['now', ...chosen.flatMap((p) => p.params), ...(withJournal ? ['wantIds'] : [])];
  const number = (sql: string) => sql.replace(/\$([a-zA-Z]+)(?!\()/g, (_m, n: string) => `$${params.indexOf(n) + 1}`);
  const entryOf = (sql: string) =>
    sql.replace(/\$entryOf\(x\.k\)/g, withJournal ? 'je.id' : 'NULL::bigint')
      .replace(/\$entryJoin/g, withJournal ? 'LEFT JOIN je ON je.idempotency_key = x.k' : '');
  const body = chosen.map((p) => number(entryOf(p.sql))).join(',');
  const counts = chosen.map((p) => `(SELECT count(*) FROM ${p.name === 'je' ? 'po' : p.name}) AS ${p.name}`).join(', ');
  const ids = withJournal
    ? number(`(SELECT coalesce(json_agg(json_build_array(idempotency_key, id::text)), '[]') FROM je WHERE idempotency_key = ANY($wantIds::text[])) AS entry_ids`)
    : `'[]'::json AS entry_ids`;
  const text = chosen.length > 0 ? `WITH ${body}\nSELECT ${counts}, ${ids}` : `SELECT ${ids}`;
  const variant = { name: `charging_write_v3_${key || 'none'}`, text, params };
  writeVariants.set(key, variant);
  return variant;
}

/** The full statement (every part), e.g. for EXPLAIN. */
export const WRITE_SQL = writeStatement(new Set(WRITE_PARTS.map((p) => p.name))).text;

export interface WriteResult {
  /** Journal entry id by idempotency key, for the keys asked for. */
  entryIds: Map<string, string>;
}

/** The write statement for a batch's decisions and its parameter values (in order). */
export function writeParameters(
  out: BatchOutput, now: number, newSessionRefs: ReadonlySet<string>, wantEntryIds: string[],
): { statement: { name: string; text: string; params: string[] }; values: unknown[] } | null {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const bIds: string[] = [], bBal: string[] = [], bRes: string[] = [];
  for (const d of out.bucketDeltas) { bIds.push(d.id); bBal.push(d.balance.toString()); bRes.push(d.reserved.toString()); }
  const wIds: string[] = [], wBal: string[] = [], wRes: string[] = [];
  for (const d of out.walletDeltas) { wIds.push(d.id); wBal.push(d.balance.toString()); wRes.push(d.reserved.toString()); }

  const created: unknown[] = [];
  const changed: unknown[] = [];
  for (const s of out.sessions) {
    const enc = encodeSession(s);
    if (newSessionRefs.has(s.ref)) {
      created.push({
        ref: s.ref, sub: s.subscriberId, acct: s.billingAccountId, ident: s.subscriberIdentifier, msisdn: s.msisdn, imsi: s.imsi, nf: s.nfConsumer,
        state: s.state, seq: s.lastSequenceNumber, res: enc.reservations, held: enc.held, exp: iso(enc.expiresAt), rel: iso(s.releasedAt),
      });
    } else {
      changed.push({ ref: s.ref, state: s.state, seq: s.lastSequenceNumber, res: enc.reservations, held: enc.held, exp: iso(enc.expiresAt), rel: iso(s.releasedAt) });
    }
  }
  const entries = out.entries.map((e, i) => ({
    i, k: e.key, t: e.entryType, src: e.sourceRef, actor: e.actor, reason: e.reason, details: e.details, at: iso(e.occurredAt),
    p: e.postings.map((p) => [p.account, p.unit, p.amount.toString()]),
  }));
  const rated = out.ratedUsage.map((r, i) => ({
    i, k: r.entryKey, ref: r.ref, seq: r.sequenceNumber, rg: r.ratingGroup, sid: r.serviceId, lsn: r.localSequenceNumber, sub: r.subscriberId,
    acct: r.billingAccountId, msisdn: r.msisdn, imsi: r.imsi, svc: r.service, zone: r.zone, dest: r.destination, st: iso(r.startedAt),
    en: iso(r.endedAt), used: str(r.usedUnits), ul: str(r.uplinkUnits), dl: str(r.downlinkUnits), bu: str(r.bucketUnits), pu: str(r.pricedUnits),
    amt: str(r.amountMicros), unch: str(r.unchargedMicros), cur: r.currency,
  }));
  const requests = out.requests.map((r) => ({ ref: r.ref, seq: r.sequenceNumber, op: r.operation, status: r.httpStatus, resp: r.response, k: r.entryKey, at: iso(r.receivedAt) }));
  const events = out.events.map((ev, i) => ({
    i, t: ev.type, acct: ev.billingAccountId, sub: ev.subscriberId, la: ev.account, pct: ev.thresholdPercent, k: ev.entryKey, payload: ev.payload,
    at: iso(ev.occurredAt),
  }));
  const values: Record<string, unknown> = {
    now: iso(now), bIds: pgNumberArray(bIds), bBal: pgNumberArray(bBal), bRes: pgNumberArray(bRes),
    wIds: pgNumberArray(wIds), wBal: pgNumberArray(wBal), wRes: pgNumberArray(wRes),
    created: json(created), changed: json(changed), entries: json(entries), rated: json(rated), requests: json(requests), events: json(events),
    wantIds: pgTextArray(wantEntryIds),
  };
  const parts = new Set<string>();
  if (bIds.length > 0) parts.add('bd');
  if (wIds.length > 0) parts.add('wd');
  if (created.length > 0) parts.add('sn');
  if (changed.length > 0) parts.add('su');
  if (entries.length > 0) parts.add('je');
  if (rated.length > 0) parts.add('ru');
  if (requests.length > 0) parts.add('rq');
  if (events.length > 0) parts.add('ev');
  if (parts.size === 0) return null;
  const statement = writeStatement(parts);
  return { statement, values: statement.params.map((p) => values[p]) };
}

/** Writes everything the batch decided and commits its transaction. */
export async function writeBatch(
  client: PoolClient, out: BatchOutput, now: number, newSessionRefs: ReadonlySet<string>, wantEntryIds: string[],
): Promise<WriteResult> {
  const write = writeParameters(out, now, newSessionRefs, wantEntryIds);
  if (!write) {
    await client.query('COMMIT'); // only stored answers and refusals: nothing to write
    return { entryIds: new Map() };
  }
  await ensurePrepared(client, write.statement.name, write.statement.text);
  // Writes and commits in one round trip; if the write fails, the COMMIT is not run and the
  // engine rolls back.
  const results = (await client.query(`${executeSql(write.statement.name, write.values)}; COMMIT`)) as unknown as { rows: Record<string, unknown>[] }[];
  const entryIds = new Map<string, string>();
  for (const [k, id] of results[0].rows[0].entry_ids as [string, string][]) entryIds.set(k, id);
  return { entryIds };
}

// ---- encoding --------------------------------------------------------------------------------

/** Rows as one JSON document. Bigints travel as decimal strings (PostgreSQL casts them into bigint
 * columns exactly); the drafts are built that way, so no replacer function slows JSON.stringify. */
function json(value: unknown): string {
  return JSON.stringify(value);
}
const str = (v: bigint | null) => (v === null ? null : v.toString());

/** A PostgreSQL array literal of integers (decimal strings or numbers): no quoting needed. */
export function pgNumberArray(values: readonly (string | number | bigint)[]): string {
  return `{${values.join(',')}}`;
}

/** A PostgreSQL array literal of strings; quotes and escapes only when needed. */
export function pgTextArray(values: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    out += /^[A-Za-z0-9_.:+-]+$/.test(v) && v.toUpperCase() !== 'NULL' ? v : `"${v.replace(/[\\"]/g, '\\$&')}"`;
  }
  return `${out}}`;
}

// ---- session (de)serialization ---------------------------------------------------------------

interface ReservationJson {
  ratingGroup: number;
  service: Reservation['service'];
  zone: string;
  destination: string | null;
  /** [priceMicros, perUnits, initialIncrement, subsequentIncrement] */
  rate: [string, string, string, string] | null;
  ratedAt: number;
  holds: [string, Hold['kind'], string][];
  granted: string;
  segmentUnits: string;
  segmentMicros: string;
  usedTotal: string;
  expiresAt: number | null;
  sliceStart: number;
}

export function encodeSession(s: SessionState): { reservations: ReservationJson[]; held: string[]; expiresAt: number | null } {
  const held = new Set<string>();
  let expiresAt: number | null = null;
  const list: ReservationJson[] = s.reservations.map((r) => {
    for (const h of r.holds) held.add(h.account);
    if (r.expiresAt !== null && r.holds.length > 0 && (expiresAt === null || r.expiresAt < expiresAt)) expiresAt = r.expiresAt;
    return {
      ratingGroup: r.ratingGroup, service: r.service, zone: r.zone, destination: r.destination,
      rate: r.rate ? [r.rate.priceMicros.toString(), r.rate.perUnits.toString(), r.rate.initialIncrement.toString(), r.rate.subsequentIncrement.toString()] : null,
      ratedAt: r.ratedAt,
      holds: r.holds.map((h) => [h.account, h.kind, h.amount.toString()]), granted: r.granted.toString(),
      segmentUnits: r.segmentUnits.toString(), segmentMicros: r.segmentMicros.toString(), usedTotal: r.usedTotal.toString(),
      expiresAt: r.expiresAt, sliceStart: r.sliceStart,
    };
  });
  return { reservations: list, held: [...held], expiresAt };
}

export function decodeReservations(json: unknown): Reservation[] {
  return (json as ReservationJson[]).map((r) => ({
    ratingGroup: r.ratingGroup, service: r.service, zone: r.zone, destination: r.destination,
    rate: r.rate ? { priceMicros: BigInt(r.rate[0]), perUnits: BigInt(r.rate[1]), initialIncrement: BigInt(r.rate[2]), subsequentIncrement: BigInt(r.rate[3]) } : null,
    ratedAt: r.ratedAt,
    holds: r.holds.map(([account, kind, amount]) => ({ account, kind, amount: BigInt(amount) })), granted: BigInt(r.granted),
    segmentUnits: BigInt(r.segmentUnits), segmentMicros: BigInt(r.segmentMicros), usedTotal: BigInt(r.usedTotal),
    expiresAt: r.expiresAt, sliceStart: r.sliceStart,
  }));
}

function sessionFromRow(r: Row): SessionState {
  return {
    ref: r[0] as string, subscriberId: r[1] as string, billingAccountId: r[2] as string, subscriberIdentifier: r[3] as string,
    msisdn: (r[4] as string | null) ?? null, imsi: (r[5] as string | null) ?? null, nfConsumer: (r[6] as string | null) ?? null,
    state: r[7] as SessionState['state'], lastSequenceNumber: Number(r[8]), reservations: decodeReservations(r[9]),
    createdAt: Number(r[10]), releasedAt: r[11] === null ? null : Number(r[11]),
  };
}

export function bigintJson(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
