/**
 * Reads of the charging record for the API: open reservations, usage history with its audit
 * trail, and the explanation of one charge (raw usage → tariff and rating decision → bucket or
 * wallet → amounts, with the balances before and after).
 */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';
import { decodeReservations } from './charging.store';
import type { Reservation } from './charging.types';
import type { RatedUsageDraft } from './charging-decision';

export interface OpenReservation {
  chargingDataRef: string;
  subscriberId: string;
  billingAccountId: string;
  subscriberIdentifier: string;
  nfConsumer: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastSequenceNumber: number;
  /** Earliest end of validity among the holds. */
  expiresAt: Date | null;
  reservations: Reservation[];
}

/** Sessions still open, with what they hold; newest first. */
export async function listOpenReservations(
  db: Knex, who: { subscriberId: string } | { billingAccountId: string }, options: { limit?: number } = {},
): Promise<OpenReservation[]> {
  return (await pageOpenReservations(db, who, { first: Math.min(options.limit ?? 100, 1000) })).items;
}

export interface OpenReservationPage {
  items: OpenReservation[];
  /** One per item: pass as `after` for the items after it (older). */
  cursors: string[];
  hasNextPage: boolean;
}

/** Open sessions newest first, keyset-paginated on (created_at, charging_data_ref) for the API. */
export async function pageOpenReservations(
  db: Knex, who: { subscriberId: string } | { billingAccountId: string }, args: { first?: number; after?: string | null } = {},
): Promise<OpenReservationPage> {
  const first = Math.min(Math.max(args.first ?? 50, 1), 1000);
  const q = db('charging_sessions').where('state', 'open');
  if ('subscriberId' in who) q.where('subscriber_id', who.subscriberId);
  else q.where('billing_account_id', who.billingAccountId);
  if (args.after) {
    const [at, ref] = decodeCursor(args.after, (v) => v.length > 0);
    q.whereRaw('(created_at, charging_data_ref) < (?::timestamptz, ?)', [at, ref]);
  }
  const rows = await q.select('*', db.raw(`${CURSOR_TIME('created_at')} AS cursor_at`))
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'charging_data_ref', order: 'desc' }]).limit(first + 1);
  const items = rows.slice(0, first);
  return {
    items: items.map((r) => ({
      chargingDataRef: r.charging_data_ref, subscriberId: r.subscriber_id, billingAccountId: r.billing_account_id,
      subscriberIdentifier: r.subscriber_identifier, nfConsumer: r.nf_consumer, createdAt: r.created_at, updatedAt: r.updated_at,
      lastSequenceNumber: Number(r.last_sequence_number), expiresAt: r.expires_at, reservations: decodeReservations(r.reservations),
    })),
    cursors: items.map((r) => encodeCursor(r.cursor_at, r.charging_data_ref)),
    hasNextPage: rows.length > first,
  };
}

/** A rated usage row as read back: the columns the engine wrote (`RatedUsageDraft`), with its ids
 * and times as stored. */
export interface UsageRecord extends Pick<RatedUsageDraft,
  'ratingGroup' | 'localSequenceNumber' | 'subscriberId' | 'msisdn' | 'imsi' | 'service' | 'zone' | 'destination' | 'usedUnits' | 'uplinkUnits'
  | 'downlinkUnits' | 'bucketUnits' | 'pricedUnits' | 'amountMicros' | 'unchargedMicros' | 'currency'> {
  id: string;
  journalEntryId: string | null;
  chargingDataRef: string;
  invocationSequenceNumber: number;
  startedAt: Date;
  endedAt: Date;
  recordedAt: Date;
}

export interface UsagePage {
  items: UsageRecord[];
  /** One per item: pass as `after` for the items after it (older). */
  cursors: string[];
  /** Pass as `after` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

/** Rated usage of a line, newest first, keyset-paginated on (started_at, id); optionally one
 * service and a time window on the start of usage ([from, to)). */
export async function listUsage(
  db: Knex, args: { subscriberId: string; service?: UsageRecord['service']; from?: Date; to?: Date; first?: number; after?: string | null },
): Promise<UsagePage> {
  const first = Math.min(Math.max(args.first ?? 50, 1), 500);
  const q = db('rated_usage').where('subscriber_id', args.subscriberId);
  if (args.service) q.where('service', args.service);
  if (args.from) q.where('started_at', '>=', args.from);
  if (args.to) q.where('started_at', '<', args.to);
  if (args.after) {
    const [at, id] = decodeCursor(args.after, (v) => /^\d+$/.test(v));
    q.whereRaw('(started_at, id) < (?::timestamptz, ?::bigint)', [at, id]);
  }
  const rows = await q.select('*', db.raw(`${CURSOR_TIME('started_at')} AS started_text`))
    .orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(first + 1);
  const more = rows.length > first;
  const items = rows.slice(0, first);
  const cursors = items.map((r) => encodeCursor(r.started_text, String(r.id)));
  return { items: items.map(toUsage), cursors, nextCursor: more ? (cursors[cursors.length - 1] ?? null) : null };
}

/** A timestamp as text with its microseconds, so a cursor matches the row it came from exactly. */
const CURSOR_TIME = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function encodeCursor(at: string, key: string): string {
  return Buffer.from(JSON.stringify([at, key])).toString('base64url');
}

function decodeCursor(cursor: string, validKey: (key: string) => boolean): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && !Number.isNaN(Date.parse(v[0])) && typeof v[1] === 'string' && validKey(v[1])) {
      return [v[0], v[1]];
    }
  } catch {
    /* fall through */
  }
  throw new DomainError('INVALID_CURSOR', 'invalid cursor', ['after']);
}

const big = (v: string | null) => (v === null ? null : BigInt(v));
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a rated_usage row as pg returns it
function toUsage(r: Record<string, any>): UsageRecord {
  return {
    id: String(r.id), journalEntryId: r.journal_entry_id === null ? null : String(r.journal_entry_id), chargingDataRef: r.charging_data_ref,
    invocationSequenceNumber: Number(r.invocation_sequence_number), ratingGroup: Number(r.rating_group),
    localSequenceNumber: r.local_sequence_number === null ? null : Number(r.local_sequence_number), subscriberId: r.subscriber_id,
    msisdn: r.msisdn, imsi: r.imsi, service: r.service, zone: r.zone, destination: r.destination, startedAt: r.started_at, endedAt: r.ended_at,
    usedUnits: BigInt(r.used_units), uplinkUnits: big(r.uplink_units), downlinkUnits: big(r.downlink_units), bucketUnits: BigInt(r.bucket_units),
    pricedUnits: BigInt(r.priced_units), amountMicros: BigInt(r.amount_micros), unchargedMicros: BigInt(r.uncharged_micros),
    currency: String(r.currency).trim(), recordedAt: r.recorded_at,
  };
}

export interface JournalEntryView {
  id: string;
  entryType: string;
  sourceRef: string;
  actor: string;
  reason: string | null;
  occurredAt: Date;
  recordedAt: Date;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a journal_entries row as pg returns it
const toEntry = (e: Record<string, any>): JournalEntryView => ({
  id: String(e.id), entryType: e.entry_type, sourceRef: e.source_ref, actor: e.actor, reason: e.reason, occurredAt: e.occurred_at, recordedAt: e.recorded_at,
});

/** Journal entries by id (the audit trail of a list of usage records, in one query). */
export async function findJournalEntries(db: Knex, ids: string[]): Promise<Map<string, JournalEntryView>> {
  const valid = [...new Set(ids.filter((id) => /^\d{1,18}$/.test(id)))];
  if (valid.length === 0) return new Map();
  const rows = await db('journal_entries').whereIn('id', valid)
    .select('id', 'entry_type', 'source_ref', 'actor', 'reason', 'occurred_at', 'recorded_at');
  return new Map(rows.map((r) => [String(r.id), toEntry(r)]));
}

export interface ChargeExplanation {
  entry: JournalEntryView;
  /** The request as the network sent it (usage charges; kept verbatim as JSON text in the journal,
   * parsed here), or the operation's own details. */
  request: unknown;
  /** Per reported usage: units, zone, the rating decision (tariff entry, time band, promotion,
   * rate), which buckets gave how many units, how much money was charged and from where. */
  lines: unknown[];
  /** `sourceRef`: what caused the posting, where the entry books several (a recurring fee's charge in a billing batch). */
  postings: { ledgerAccountId: string; code: string; kind: string; unit: string; amount: bigint; sourceRef: string | null }[];
  /** Per account touched: balance (and reserved) before and after. */
  balances: { ledgerAccountId: string; code: string | null; kind: string; before: bigint; after: bigint }[];
  ratedUsage: UsageRecord[];
  /** The stored answer given to the network, when the entry answers a charging request. */
  answer: unknown;
}

/** Explains one journal entry: what was asked, how it was rated, what it moved. */
export async function explainCharge(db: Knex, journalEntryId: string): Promise<ChargeExplanation> {
  if (!/^\d{1,18}$/.test(journalEntryId)) throw new DomainError('NOT_FOUND', 'no journal entry has this id', ['journalEntryId']);
  const e = await db('journal_entries').where({ id: journalEntryId }).first();
  if (!e) throw new DomainError('NOT_FOUND', 'no journal entry has this id', ['journalEntryId']);
  const postings = await db('postings as p').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id')
    .where('p.journal_entry_id', journalEntryId).orderBy('p.id').select('p.ledger_account_id', 'a.code', 'a.kind', 'p.unit', 'p.amount', 'p.source_ref');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal details are free-form JSON
  const details = (e.details ?? {}) as Record<string, any>;
  const balanceIds = Object.keys(details.balances ?? {});
  const codes = balanceIds.length ? await db('ledger_accounts').whereIn('id', balanceIds).select('id', 'code') : [];
  const codeOf = new Map(codes.map((c: { id: string; code: string }) => [String(c.id), c.code]));
  let ratedUsage: UsageRecord[] = [];
  let answer: unknown = null;
  if (details.kind === 'usage' && details.chargingDataRef) {
    const rows = await db('rated_usage')
      .where({ charging_data_ref: details.chargingDataRef, invocation_sequence_number: details.invocationSequenceNumber }).orderBy('id');
    ratedUsage = rows.map(toUsage);
    const req = await db('charging_requests')
      .where({ charging_data_ref: details.chargingDataRef, invocation_sequence_number: details.invocationSequenceNumber }).first('http_status', 'response');
    answer = req ? { httpStatus: req.http_status, body: req.response } : null;
  }
  const { request, lines, balances, ...rest } = details;
  return {
    entry: toEntry(e),
    request: typeof request === 'string' ? JSON.parse(request) : (request ?? rest),
    lines: Array.isArray(lines) ? lines : [],
    postings: postings.map((p: Record<string, string>) => ({
      ledgerAccountId: String(p.ledger_account_id), code: p.code, kind: p.kind, unit: p.unit, amount: BigInt(p.amount), sourceRef: p.source_ref ?? null,
    })),
    balances: Object.entries((balances ?? {}) as Record<string, { kind: string; before: string; after: string }>).map(([id, b]) => ({
      ledgerAccountId: id, code: codeOf.get(id) ?? null, kind: b.kind, before: BigInt(b.before), after: BigInt(b.after),
    })),
    ratedUsage,
    answer,
  };
}
