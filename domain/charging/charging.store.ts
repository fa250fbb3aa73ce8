/**
 * SQL of the charging hot path, on raw `pg` clients (no query builder): per batch one statement
 * that locks and reads everything the batch touches, and one statement that writes everything it
 * decided. Both have a fixed text (arrays as parameters, `unnest` on the server), so they are
 * prepared once per connection.
 *
 * Lock order, the same for every batch and every other writer that goes through the engine:
 * charging sessions (by ref) → buckets (by ledger account id) → wallets (by ledger account id).
 * `ORDER BY … FOR UPDATE` takes the row locks in sort order, so two batches never wait on each
 * other in a cycle.
 */
import type { PoolClient } from 'pg';
import type { RatingDecision } from './rating';
import type {
  BucketState,
  ChargingDataResponse,
  Hold,
  PaymentType,
  Reservation,
  SessionState,
  StoredAnswer,
  SubscriberInfo,
  WalletState,
} from './charging.types';
import { answerKey, type BatchOutput } from './charging-decision';
import type { SubscriberState } from '../subscribers/subscriber-lifecycle';

export interface LockKeys {
  refs: string[];
  msisdns: string[];
  imsis: string[];
  subscriberIds: string[];
  accountIds: string[];
  services: string[];
  answerRefs: string[];
  answerSeqs: number[];
  walletKeys: string[];
}

export interface LockedState {
  sessions: Map<string, SessionState>;
  subscribers: SubscriberInfo[];
  buckets: BucketState[];
  wallets: WalletState[];
  priorAnswers: Map<string, StoredAnswer>;
  priorWalletEntries: Map<string, { journalEntryId: string; balanceMicros: bigint }>;
}

const LOCK_SQL = `
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
ids AS (
  SELECT s.id FROM subscribers s WHERE s.msisdn = ANY($2::text[])
  UNION SELECT s.id FROM sims i JOIN subscribers s ON s.sim_id = i.id WHERE i.imsi = ANY($3::text[])
  UNION SELECT subscriber_id FROM sess
  UNION SELECT unnest($4::uuid[])),
subs AS MATERIALIZED (
  SELECT s.id, s.msisdn, s.state, s.billing_account_id, i.imsi, a.parent_account_id, a.payment_type, a.currency,
         sub.id AS subscription_id, sub.plan_id
    FROM ids
    JOIN subscribers s ON s.id = ids.id
    JOIN billing_accounts a ON a.id = s.billing_account_id
    LEFT JOIN sims i ON i.id = s.sim_id
    LEFT JOIN LATERAL (SELECT x.id, x.plan_id FROM subscriptions x
                        WHERE x.subscriber_id = s.id AND x.state = 'active' LIMIT 1) sub ON true),
accts AS (
  SELECT billing_account_id AS id FROM subs
  UNION SELECT parent_account_id FROM subs WHERE parent_account_id IS NOT NULL
  UNION SELECT unnest($5::uuid[])),
bk_ids AS (
  SELECT b.ledger_account_id FROM subs
    JOIN buckets b ON b.subscription_id = subs.subscription_id
   WHERE b.service = ANY($6::text[]) AND b.valid_until > $7::timestamptz AND b.valid_from <= $7::timestamptz
  UNION
  SELECT b.ledger_account_id FROM accts
    JOIN buckets b ON b.subscription_id IS NULL AND b.billing_account_id = accts.id
   WHERE b.service = ANY($6::text[]) AND b.valid_until > $7::timestamptz AND b.valid_from <= $7::timestamptz
  UNION
  SELECT unnest(held_account_ids) FROM sess),
bk AS MATERIALIZED (
  SELECT b.ledger_account_id, b.billing_account_id, b.subscription_id, b.service, b.unit, b.initial_units, b.balance_units,
         b.reserved_units, b.priority,
         floor(extract(epoch FROM b.valid_from) * 1000)::bigint AS from_ms,
         floor(extract(epoch FROM b.valid_until) * 1000)::bigint AS until_ms
    FROM buckets b
   WHERE b.ledger_account_id IN (SELECT ledger_account_id FROM bk_ids)
   ORDER BY b.ledger_account_id
     FOR UPDATE),
wl AS MATERIALIZED (
  SELECT w.ledger_account_id, w.billing_account_id, w.currency, w.balance_micros, w.reserved_micros, w.credit_limit_micros
    FROM wallets w
   WHERE w.billing_account_id IN (SELECT id FROM accts)
   ORDER BY w.ledger_account_id
     FOR UPDATE),
prev AS (
  SELECT r.charging_data_ref, r.invocation_sequence_number, r.http_status, r.response
    FROM charging_requests r
    JOIN unnest($8::text[], $9::bigint[]) k(ref, seq) ON r.charging_data_ref = k.ref AND r.invocation_sequence_number = k.seq),
wprev AS (
  SELECT e.idempotency_key, e.id
    FROM journal_entries e WHERE e.idempotency_key = ANY($10::text[]))
SELECT
  (SELECT coalesce(json_agg(json_build_array(charging_data_ref, subscriber_id, billing_account_id, subscriber_identifier, msisdn, imsi,
           nf_consumer, state, last_sequence_number, reservations, created_ms, released_ms)), '[]') FROM sess) AS sessions,
  (SELECT coalesce(json_agg(json_build_array(id, msisdn, state, billing_account_id, imsi, parent_account_id, payment_type,
           currency, subscription_id, plan_id)), '[]') FROM subs) AS subscribers,
  (SELECT coalesce(json_agg(json_build_array(ledger_account_id::text, billing_account_id, subscription_id, service, unit,
           initial_units::text, balance_units::text, reserved_units::text, priority, from_ms, until_ms)), '[]') FROM bk) AS buckets,
  (SELECT coalesce(json_agg(json_build_array(ledger_account_id::text, billing_account_id, currency, balance_micros::text,
           reserved_micros::text, credit_limit_micros::text)), '[]') FROM wl) AS wallets,
  (SELECT coalesce(json_agg(json_build_array(charging_data_ref, invocation_sequence_number, http_status, response)), '[]') FROM prev) AS answers,
  (SELECT coalesce(json_agg(json_build_array(idempotency_key, id::text)), '[]') FROM wprev) AS wallet_entries`;

type Row = unknown[];

export async function lockBatchState(client: PoolClient, keys: LockKeys, now: number): Promise<LockedState> {
  const res = await client.query({
    name: 'charging_lock_v1',
    text: LOCK_SQL,
    values: [
      keys.refs, keys.msisdns, keys.imsis, keys.subscriberIds, keys.accountIds, keys.services, new Date(now).toISOString(),
      keys.answerRefs, keys.answerSeqs, keys.walletKeys,
    ],
  });
  const row = res.rows[0] as Record<string, Row[]>;
  const sessions = new Map<string, SessionState>();
  for (const r of row.sessions) {
    const s = sessionFromRow(r);
    sessions.set(s.ref, s);
  }
  const subscribers = row.subscribers.map((r): SubscriberInfo => ({
    id: r[0] as string, msisdn: r[1] as string, state: r[2] as SubscriberState, billingAccountId: r[3] as string,
    imsi: (r[4] as string | null) ?? null, parentAccountId: (r[5] as string | null) ?? null, paymentType: r[6] as PaymentType,
    currency: (r[7] as string).trim(), subscriptionId: (r[8] as string | null) ?? null, planId: (r[9] as string | null) ?? null,
  }));
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
  for (const r of row.wallet_entries) {
    priorWalletEntries.set(r[0] as string, { journalEntryId: r[1] as string, balanceMicros: 0n });
  }
  return { sessions, subscribers, buckets, wallets, priorAnswers, priorWalletEntries };
}

/** Stored answers looked up with a fresh snapshot (after waiting on a session lock, a request the
 * other transaction answered is visible only to a new statement). */
export async function loadAnswers(client: PoolClient, refs: string[], seqs: number[]): Promise<Map<string, StoredAnswer>> {
  const res = await client.query({
    name: 'charging_answers_v1',
    text: `SELECT r.charging_data_ref, r.invocation_sequence_number, r.http_status, r.response
             FROM charging_requests r JOIN unnest($1::text[], $2::bigint[]) k(ref, seq)
               ON r.charging_data_ref = k.ref AND r.invocation_sequence_number = k.seq`,
    values: [refs, seqs],
  });
  const map = new Map<string, StoredAnswer>();
  for (const r of res.rows) {
    const a: StoredAnswer = { ref: r.charging_data_ref, sequenceNumber: Number(r.invocation_sequence_number), httpStatus: r.http_status, response: r.response };
    map.set(answerKey(a.ref, a.sequenceNumber), a);
  }
  return map;
}

const WRITE_SQL = `
WITH
bd AS (
  UPDATE buckets b SET balance_units = b.balance_units + d.dbal, reserved_units = b.reserved_units + d.dres, updated_at = $48::timestamptz
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) d(id, dbal, dres)
   WHERE b.ledger_account_id = d.id
  RETURNING 1),
wd AS (
  UPDATE wallets w SET balance_micros = w.balance_micros + d.dbal, reserved_micros = w.reserved_micros + d.dres, updated_at = $48::timestamptz
    FROM unnest($4::bigint[], $5::bigint[], $6::bigint[]) d(id, dbal, dres)
   WHERE w.ledger_account_id = d.id
  RETURNING 1),
sn AS (
  INSERT INTO charging_sessions (charging_data_ref, subscriber_id, billing_account_id, subscriber_identifier, msisdn, imsi, nf_consumer,
                                 state, last_sequence_number, reservations, held_account_ids, expires_at, created_at, updated_at, released_at)
  SELECT x.ref, x.sub, x.acct, x.ident, x.msisdn, x.imsi, x.nf, x.state, x.seq, x.res::jsonb, x.held::bigint[], x.exp,
         $48::timestamptz, $48::timestamptz, x.rel
    FROM unnest($7::text[], $8::uuid[], $9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[],
                $16::text[], $17::text[], $18::timestamptz[], $19::timestamptz[])
         x(ref, sub, acct, ident, msisdn, imsi, nf, state, seq, res, held, exp, rel)
   ORDER BY x.ref
  RETURNING 1),
su AS (
  UPDATE charging_sessions cs
     SET state = x.state, last_sequence_number = x.seq, reservations = x.res::jsonb, held_account_ids = x.held::bigint[],
         expires_at = x.exp, updated_at = $48::timestamptz, released_at = x.rel
    FROM unnest($20::text[], $21::text[], $22::bigint[], $23::text[], $24::text[], $25::timestamptz[], $26::timestamptz[])
         x(ref, state, seq, res, held, exp, rel)
   WHERE cs.charging_data_ref = x.ref
  RETURNING 1),
je AS (
  INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, reason, details, occurred_at, recorded_at)
  SELECT x.t, x.src, x.k, x.actor, x.reason, x.details::jsonb, x.at, $48::timestamptz
    FROM unnest($27::text[], $28::text[], $29::text[], $30::text[], $31::text[], $32::text[], $33::timestamptz[])
         x(t, src, k, actor, reason, details, at)
  RETURNING id, idempotency_key),
po AS (
  INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
  SELECT je.id, x.acct, x.unit, x.amount
    FROM unnest($34::text[], $35::bigint[], $36::text[], $37::bigint[]) x(k, acct, unit, amount)
    JOIN je ON je.idempotency_key = x.k
  RETURNING 1),
ru AS (
  INSERT INTO rated_usage (journal_entry_id, charging_data_ref, invocation_sequence_number, rating_group, service_id, local_sequence_number,
                           subscriber_id, billing_account_id, msisdn, imsi, service, zone, destination, started_at, ended_at, used_units,
                           uplink_units, downlink_units, bucket_units, priced_units, amount_micros, uncharged_micros, currency, recorded_at)
  SELECT je.id, x.ref, x.seq, x.rg, x.sid, x.lsn, x.sub, x.acct, x.msisdn, x.imsi, x.svc, x.zone, x.dest, x.st, x.en, x.used,
         x.ul, x.dl, x.bu, x.pu, x.amt, x.unch, x.cur, $48::timestamptz
    FROM unnest($38::jsonb[]) j(v)
    CROSS JOIN LATERAL jsonb_to_record(j.v) AS x(k text, ref text, seq bigint, rg bigint, sid bigint, lsn bigint, sub uuid, acct uuid,
         msisdn text, imsi text, svc text, zone text, dest text, st timestamptz, en timestamptz, used bigint, ul bigint, dl bigint,
         bu bigint, pu bigint, amt bigint, unch bigint, cur text)
    LEFT JOIN je ON je.idempotency_key = x.k
  RETURNING 1),
rq AS (
  INSERT INTO charging_requests (charging_data_ref, invocation_sequence_number, operation, http_status, response, journal_entry_id, received_at, recorded_at)
  SELECT x.ref, x.seq, x.op, x.status, x.resp::jsonb, je.id, x.at, $48::timestamptz
    FROM unnest($39::text[], $40::bigint[], $41::text[], $42::smallint[], $43::text[], $44::text[], $45::timestamptz[])
         x(ref, seq, op, status, resp, k, at)
    LEFT JOIN je ON je.idempotency_key = x.k
  RETURNING 1),
ev AS (
  INSERT INTO balance_events (event_type, billing_account_id, subscriber_id, ledger_account_id, threshold_percent, journal_entry_id, payload, occurred_at)
  SELECT x.t, x.acct, x.sub, x.la, x.pct, je.id, x.payload, x.at
    FROM unnest($46::jsonb[]) j(v)
    CROSS JOIN LATERAL jsonb_to_record(j.v) AS x(t text, acct uuid, sub uuid, la bigint, pct integer, k text, payload jsonb, at timestamptz)
    LEFT JOIN je ON je.idempotency_key = x.k
  RETURNING 1)
SELECT (SELECT count(*) FROM bd) AS buckets, (SELECT count(*) FROM wd) AS wallets, (SELECT count(*) FROM sn) AS sessions_new,
       (SELECT count(*) FROM su) AS sessions_updated, (SELECT count(*) FROM po) AS postings, (SELECT count(*) FROM ru) AS rated,
       (SELECT count(*) FROM rq) AS requests, (SELECT count(*) FROM ev) AS events,
       (SELECT coalesce(json_agg(json_build_array(idempotency_key, id::text)) FILTER (WHERE idempotency_key = ANY($47::text[])), '[]') FROM je) AS entry_ids`;

export interface WriteResult {
  /** Journal entry id by idempotency key, for the keys asked for. */
  entryIds: Map<string, string>;
}

export async function writeBatch(
  client: PoolClient, out: BatchOutput, now: number, newSessionRefs: ReadonlySet<string>, wantEntryIds: string[],
): Promise<WriteResult> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const bIds: string[] = [], bBal: string[] = [], bRes: string[] = [];
  for (const d of out.bucketDeltas) { bIds.push(d.id); bBal.push(d.balance.toString()); bRes.push(d.reserved.toString()); }
  const wIds: string[] = [], wBal: string[] = [], wRes: string[] = [];
  for (const d of out.walletDeltas) { wIds.push(d.id); wBal.push(d.balance.toString()); wRes.push(d.reserved.toString()); }

  const n = { ref: [] as string[], sub: [] as string[], acct: [] as string[], ident: [] as string[], msisdn: [] as (string | null)[], imsi: [] as (string | null)[],
    nf: [] as (string | null)[], state: [] as string[], seq: [] as number[], res: [] as string[], held: [] as string[], exp: [] as (string | null)[], rel: [] as (string | null)[] };
  const u = { ref: [] as string[], state: [] as string[], seq: [] as number[], res: [] as string[], held: [] as string[], exp: [] as (string | null)[], rel: [] as (string | null)[] };
  for (const s of out.sessions) {
    const enc = encodeSession(s);
    if (newSessionRefs.has(s.ref)) {
      n.ref.push(s.ref); n.sub.push(s.subscriberId); n.acct.push(s.billingAccountId); n.ident.push(s.subscriberIdentifier);
      n.msisdn.push(s.msisdn); n.imsi.push(s.imsi); n.nf.push(s.nfConsumer); n.state.push(s.state); n.seq.push(s.lastSequenceNumber);
      n.res.push(enc.reservations); n.held.push(enc.held); n.exp.push(iso(enc.expiresAt)); n.rel.push(iso(s.releasedAt));
    } else {
      u.ref.push(s.ref); u.state.push(s.state); u.seq.push(s.lastSequenceNumber); u.res.push(enc.reservations); u.held.push(enc.held);
      u.exp.push(iso(enc.expiresAt)); u.rel.push(iso(s.releasedAt));
    }
  }
  const e = { t: [] as string[], src: [] as string[], k: [] as string[], actor: [] as string[], reason: [] as (string | null)[], details: [] as string[], at: [] as string[] };
  const p = { k: [] as string[], acct: [] as string[], unit: [] as string[], amount: [] as string[] };
  for (const entry of out.entries) {
    e.t.push(entry.entryType); e.src.push(entry.sourceRef); e.k.push(entry.key); e.actor.push(entry.actor); e.reason.push(entry.reason);
    e.details.push(JSON.stringify(entry.details, bigintJson)); e.at.push(new Date(entry.occurredAt).toISOString());
    for (const posting of entry.postings) {
      p.k.push(entry.key); p.acct.push(posting.account); p.unit.push(posting.unit); p.amount.push(posting.amount.toString());
    }
  }
  const rated = out.ratedUsage.map((r) => JSON.stringify({
    k: r.entryKey, ref: r.ref, seq: r.sequenceNumber, rg: r.ratingGroup, sid: r.serviceId, lsn: r.localSequenceNumber, sub: r.subscriberId,
    acct: r.billingAccountId, msisdn: r.msisdn, imsi: r.imsi, svc: r.service, zone: r.zone, dest: r.destination,
    st: new Date(r.startedAt).toISOString(), en: new Date(r.endedAt).toISOString(), used: r.usedUnits.toString(),
    ul: r.uplinkUnits?.toString() ?? null, dl: r.downlinkUnits?.toString() ?? null, bu: r.bucketUnits.toString(), pu: r.pricedUnits.toString(),
    amt: r.amountMicros.toString(), unch: r.unchargedMicros.toString(), cur: r.currency,
  }));
  const q = { ref: [] as string[], seq: [] as number[], op: [] as string[], status: [] as number[], resp: [] as (string | null)[], k: [] as (string | null)[], at: [] as string[] };
  for (const r of out.requests) {
    q.ref.push(r.ref); q.seq.push(r.sequenceNumber); q.op.push(r.operation); q.status.push(r.httpStatus);
    q.resp.push(r.response === null ? null : JSON.stringify(r.response)); q.k.push(r.entryKey); q.at.push(new Date(r.receivedAt).toISOString());
  }
  const events = out.events.map((ev) => JSON.stringify({
    t: ev.type, acct: ev.billingAccountId, sub: ev.subscriberId, la: ev.account, pct: ev.thresholdPercent, k: ev.entryKey, payload: ev.payload,
    at: new Date(ev.occurredAt).toISOString(),
  }));
  const res = await client.query({
    name: 'charging_write_v1',
    text: WRITE_SQL,
    values: [
      bIds, bBal, bRes, wIds, wBal, wRes,
      n.ref, n.sub, n.acct, n.ident, n.msisdn, n.imsi, n.nf, n.state, n.seq, n.res, n.held, n.exp, n.rel,
      u.ref, u.state, u.seq, u.res, u.held, u.exp, u.rel,
      e.t, e.src, e.k, e.actor, e.reason, e.details, e.at,
      p.k, p.acct, p.unit, p.amount,
      rated,
      q.ref, q.seq, q.op, q.status, q.resp, q.k, q.at,
      events,
      wantEntryIds,
      new Date(now).toISOString(),
    ],
  });
  const row = res.rows[0];
  const entryIds = new Map<string, string>();
  for (const [k, id] of row.entry_ids as [string, string][]) entryIds.set(k, id);
  return { entryIds };
}

// ---- session (de)serialization ---------------------------------------------------------------

interface ReservationJson {
  ratingGroup: number;
  service: Reservation['service'];
  zone: string;
  destination: string | null;
  decision: RatingDecision | null;
  holds: [string, Hold['kind'], string][];
  granted: string;
  segmentUnits: string;
  segmentMicros: string;
  usedTotal: string;
  expiresAt: number | null;
  sliceStart: number;
}

export function encodeSession(s: SessionState): { reservations: string; held: string; expiresAt: number | null } {
  const held = new Set<string>();
  let expiresAt: number | null = null;
  const list: ReservationJson[] = s.reservations.map((r) => {
    for (const h of r.holds) held.add(h.account);
    if (r.expiresAt !== null && r.holds.length > 0 && (expiresAt === null || r.expiresAt < expiresAt)) expiresAt = r.expiresAt;
    return {
      ratingGroup: r.ratingGroup, service: r.service, zone: r.zone, destination: r.destination, decision: r.decision,
      holds: r.holds.map((h) => [h.account, h.kind, h.amount.toString()]), granted: r.granted.toString(),
      segmentUnits: r.segmentUnits.toString(), segmentMicros: r.segmentMicros.toString(), usedTotal: r.usedTotal.toString(),
      expiresAt: r.expiresAt, sliceStart: r.sliceStart,
    };
  });
  return { reservations: JSON.stringify(list), held: `{${[...held].join(',')}}`, expiresAt };
}

export function decodeReservations(json: unknown): Reservation[] {
  return (json as ReservationJson[]).map((r) => ({
    ratingGroup: r.ratingGroup, service: r.service, zone: r.zone, destination: r.destination, decision: r.decision,
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
