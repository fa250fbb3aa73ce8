/**
 * Charging for integrators: balances and buckets on lines and billing accounts, open reservations,
 * rated usage with its audit trail (each record links to its journal entry), the explanation of a
 * charge, and manual balance adjustments (support and finance, with a reason, through the charging
 * engine so they take the hot path's locks). Wallet and Bucket are the types customers and billing
 * already expose; this file adds fields to them rather than a second shape of the same thing.
 */
import { GraphQLError } from 'graphql';
import { z } from 'zod';
import type { Role } from '../../domain/access/roles';
import { ROLE_GROUPS } from '../../domain/access/roles';
import type { BillingAccount } from '../../domain/customers/customer';
import { DomainError } from '../../domain/shared/domain-error';
import { getBalances, type Balances } from '../../domain/ledger/balances.queries';
import { findWallet } from '../../domain/ledger/ledger.repository';
import { microsToMinorFloor, microsToMinorRounded, minorToMicros } from '../../domain/ledger/money';
import { adjustBalance } from '../../domain/ledger/wallet-operations';
import {
  explainCharge, findJournalEntries, listUsage, pageOpenReservations,
  type ChargeExplanation, type JournalEntryView, type OpenReservation, type UsageRecord,
} from '../../domain/charging/charging.queries';
import type { Hold, Reservation } from '../../domain/charging/charging.types';
import type { Rate } from '../../domain/charging/rating';
import { MAX_PAGE_SIZE } from '../../platform/pagination';
import { allow, builder, type GraphQLContext } from './builder';
import { MoneyType } from './catalog.schema';
import { BillingAccountType, isUuid, WalletType } from './customers.schema';
import { BucketType } from './billing.schema';
import { SubscriberType } from './subscribers.schema';
import { toConnection, runMutation, UserErrorType } from './user-errors';

const READERS: Role[] = ROLE_GROUPS.staffReaders;
/** The design's role table: support and finance adjust balances (with a reason); admin may do everything. */
const ADJUSTERS: Role[] = ['admin', 'support', 'finance'];

/** Shown amounts never promise more than the ledger holds: what is held rounds up. */
const ceilMinor = (micros: bigint, currency: string) => -microsToMinorFloor(-micros, currency);

// ---- per-request loaders ------------------------------------------------------------------------

const balancesByRequest = new WeakMap<GraphQLContext, Map<string, Promise<Balances>>>();
/** A line's or an account's balances, read once per request however many fields ask. */
function balancesOf(ctx: GraphQLContext, who: { subscriberId: string } | { billingAccountId: string }, includeExpired: boolean): Promise<Balances> {
  let cache = balancesByRequest.get(ctx);
  if (!cache) balancesByRequest.set(ctx, (cache = new Map()));
  const key = `${'subscriberId' in who ? `s:${who.subscriberId}` : `a:${who.billingAccountId}`}:${includeExpired}`;
  let hit = cache.get(key);
  if (!hit) cache.set(key, (hit = getBalances(ctx.db, who, { includeExpired })));
  return hit;
}

const entryLoaders = new WeakMap<GraphQLContext, (id: string) => Promise<JournalEntryView | null>>();
/** Journal entries of a page of usage in one query: ids asked for while a page resolves are batched. */
function loadJournalEntry(ctx: GraphQLContext, id: string): Promise<JournalEntryView | null> {
  let load = entryLoaders.get(ctx);
  if (!load) {
    const cache = new Map<string, Promise<JournalEntryView | null>>();
    let batch: { ids: Set<string>; done: Promise<Map<string, JournalEntryView>> } | null = null;
    load = (entryId) => {
      let hit = cache.get(entryId);
      if (!hit) {
        if (!batch) {
          const ids = new Set<string>();
          // setImmediate: after every resolver of this pass (and their microtasks) has asked.
          const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
            batch = null;
            return findJournalEntries(ctx.db, [...ids]);
          });
          batch = { ids, done };
        }
        batch.ids.add(entryId);
        hit = batch.done.then((m) => m.get(entryId) ?? null);
        cache.set(entryId, hit);
      }
      return hit;
    };
    entryLoaders.set(ctx, load);
  }
  return load(id);
}

// ---- Relay connections (newest first, forward only) ----------------------------------------------

interface ConnectionArgs { first?: number | null; after?: string | null; last?: number | null; before?: string | null }

async function forwardConnection<T>(args: ConnectionArgs, load: (first: number, after: string | null) => Promise<{ items: T[]; cursors: string[]; hasNextPage: boolean }>) {
  if (args.last != null || args.before != null) {
    throw new GraphQLError('this list pages forward only (newest first): use first and after', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const first = Math.min(Math.max(args.first ?? 20, 1), MAX_PAGE_SIZE);
  try {
    const page = await load(first, args.after ?? null);
    return toConnection({ ...page, hasPreviousPage: !!args.after });
  } catch (err) {
    if (err instanceof DomainError && err.code === 'INVALID_CURSOR') {
      throw new GraphQLError('invalid cursor: pass a cursor from a previous page', { extensions: { code: 'BAD_USER_INPUT' } });
    }
    throw err;
  }
}

// ---- wallets and buckets: fields added to the existing types --------------------------------------

builder.objectFields(WalletType, (t) => ({
  currency: t.exposeString('currency'),
  reserved: t.field({
    type: MoneyType, description: 'Held by open charging reservations, rounded up to minor units; `reservedMicros` is exact.',
    resolve: (w) => ({ amount: ceilMinor(w.reservedMicros, w.currency), currency: w.currency }),
  }),
  creditLimit: t.field({
    type: MoneyType, description: 'How far below zero a postpaid or hybrid wallet may go (0 for prepaid).',
    resolve: (w) => ({ amount: microsToMinorFloor(w.creditLimitMicros, w.currency), currency: w.currency }),
  }),
  availableMicros: t.field({
    type: 'BigInt', description: 'Exact: balance − reserved + credit limit, in micro-units.',
    resolve: (w) => w.balanceMicros - w.reservedMicros + w.creditLimitMicros,
  }),
}));

const BucketScopeEnum = builder.enumType('BucketScope', {
  description: 'subscription: the allowance of one line; shared_pool: an account-level pool (family and business plans).',
  values: ['subscription', 'shared_pool'] as const,
});

builder.objectFields(BucketType, (t) => ({
  scope: t.field({ type: BucketScopeEnum, resolve: (b) => (b.subscriptionId ? 'subscription' : 'shared_pool') }),
  priority: t.exposeInt('priority', { description: 'Consumption order: lower first, then the soonest expiry.' }),
  billingAccountId: t.exposeID('billingAccountId', { description: 'The account that owns it (a family parent for its pools).' }),
  subscriptionId: t.exposeID('subscriptionId', { nullable: true }),
}));

const includeExpiredArg = { description: 'Also buckets whose validity has ended (default false).' };

// ---- open reservations --------------------------------------------------------------------------

const HoldType = builder.objectRef<Hold>('ReservationHold').implement({
  description: 'Units held on one balance: bucket units (micro-units for a money bucket) or wallet micro-units.',
  fields: (t) => ({
    ledgerAccountId: t.exposeID('account'),
    kind: t.exposeString('kind', { description: 'bucket or wallet' }),
    amount: t.field({ type: 'BigInt', resolve: (h) => h.amount }),
  }),
});

const RateType = builder.objectRef<Rate>('ChargingRate').implement({
  description: 'The overage rate a grant is priced at: priceMicros per perUnits, charged in increments.',
  fields: (t) => ({
    priceMicros: t.field({ type: 'BigInt', resolve: (r) => r.priceMicros }),
    perUnits: t.field({ type: 'BigInt', resolve: (r) => r.perUnits }),
    initialIncrement: t.field({ type: 'BigInt', resolve: (r) => r.initialIncrement }),
    subsequentIncrement: t.field({ type: 'BigInt', resolve: (r) => r.subsequentIncrement }),
  }),
});

const UsageServiceEnum = builder.enumType('UsageService', { values: ['data', 'voice', 'sms'] as const });

const RatingGroupReservationType = builder.objectRef<Reservation>('RatingGroupReservation').implement({
  description: 'What one rating group of a session holds: the current grant and the balances it is held on.',
  fields: (t) => ({
    ratingGroup: t.field({ type: 'BigInt', resolve: (r) => r.ratingGroup }),
    service: t.field({ type: UsageServiceEnum, resolve: (r) => r.service }),
    zone: t.exposeString('zone'),
    destination: t.exposeString('destination', { nullable: true }),
    grantedUnits: t.field({ type: 'BigInt', resolve: (r) => r.granted }),
    usedUnits: t.field({ type: 'BigInt', description: 'Reported so far in this session.', resolve: (r) => r.usedTotal }),
    rate: t.field({ type: RateType, nullable: true, resolve: (r) => r.rate }),
    holds: t.field({ type: [HoldType], resolve: (r) => r.holds }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'When the grant lapses and the sweeper returns its holds.', resolve: (r) => (r.expiresAt === null ? null : new Date(r.expiresAt)) }),
  }),
});

const OpenReservationType = builder.objectRef<OpenReservation>('OpenReservation').implement({
  description: 'An open charging session (TS 32.291 charging data resource) and what it holds.',
  fields: (t) => ({
    chargingDataRef: t.exposeID('chargingDataRef'),
    subscriberId: t.exposeID('subscriberId'),
    billingAccountId: t.exposeID('billingAccountId'),
    subscriberIdentifier: t.exposeString('subscriberIdentifier'),
    nfConsumer: t.exposeString('nfConsumer', { nullable: true }),
    lastSequenceNumber: t.field({ type: 'BigInt', resolve: (r) => r.lastSequenceNumber }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    reservations: t.field({ type: [RatingGroupReservationType], resolve: (r) => r.reservations }),
  }),
});

// ---- the journal and the explanation of a charge --------------------------------------------------

const JournalEntryType = builder.objectRef<JournalEntryView>('JournalEntry');
const ChargeExplanationType = builder.objectRef<ChargeExplanation>('ChargeExplanation');

/** Explanations are read once per request per entry (a usage record and its entry may both ask). */
const explanations = new WeakMap<GraphQLContext, Map<string, Promise<ChargeExplanation | null>>>();
function explanationOf(ctx: GraphQLContext, journalEntryId: string): Promise<ChargeExplanation | null> {
  let cache = explanations.get(ctx);
  if (!cache) explanations.set(ctx, (cache = new Map()));
  let hit = cache.get(journalEntryId);
  if (!hit) {
    hit = explainCharge(ctx.db, journalEntryId).catch((err) => {
      if (err instanceof DomainError && err.code === 'NOT_FOUND') return null;
      throw err;
    });
    cache.set(journalEntryId, hit);
  }
  return hit;
}

JournalEntryType.implement({
  description: 'One double-entry journal entry: every debit, credit and adjustment is one, append-only.',
  fields: (t) => ({
    id: t.exposeID('id'),
    entryType: t.exposeString('entryType', { description: 'usage, top_up, recurring_charge, adjustment, refund, payment, credit_note, allowance_grant…' }),
    sourceRef: t.exposeString('sourceRef', { description: 'What caused it: chargingdata/<ref>/<seq>, adjustment:<key>, top-up:<id>…' }),
    actor: t.exposeString('actor', { description: 'Who wrote it: nf:<network function>, the API key, a workflow.' }),
    reason: t.exposeString('reason', { nullable: true }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
    recordedAt: t.expose('recordedAt', { type: 'DateTime' }),
    explanation: t.field({ type: ChargeExplanationType, resolve: async (e, _a, ctx) => (await explanationOf(ctx, e.id))! }),
  }),
});

const UsageRecordType = builder.objectRef<UsageRecord>('UsageRecord').implement({
  description: 'One rated used-unit container (or one-time event) as the network reported it, and how it was paid.',
  fields: (t) => ({
    id: t.exposeID('id'),
    journalEntryId: t.exposeID('journalEntryId', { nullable: true }),
    journalEntry: t.field({
      type: JournalEntryType, nullable: true, description: 'The audit trail: the entry that charged it (its `explanation` has the raw request and the rating decision).',
      resolve: (u, _a, ctx) => (u.journalEntryId ? loadJournalEntry(ctx, u.journalEntryId) : null),
    }),
    chargingDataRef: t.exposeString('chargingDataRef'),
    invocationSequenceNumber: t.field({ type: 'BigInt', resolve: (u) => u.invocationSequenceNumber }),
    ratingGroup: t.field({ type: 'BigInt', resolve: (u) => u.ratingGroup }),
    localSequenceNumber: t.field({ type: 'BigInt', nullable: true, resolve: (u) => u.localSequenceNumber }),
    msisdn: t.exposeString('msisdn', { nullable: true }),
    imsi: t.exposeString('imsi', { nullable: true }),
    service: t.field({ type: UsageServiceEnum, resolve: (u) => u.service }),
    zone: t.exposeString('zone'),
    destination: t.exposeString('destination', { nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    endedAt: t.expose('endedAt', { type: 'DateTime' }),
    usedUnits: t.field({ type: 'BigInt', description: 'Bytes, seconds or messages.', resolve: (u) => u.usedUnits }),
    uplinkUnits: t.field({ type: 'BigInt', nullable: true, resolve: (u) => u.uplinkUnits }),
    downlinkUnits: t.field({ type: 'BigInt', nullable: true, resolve: (u) => u.downlinkUnits }),
    bucketUnits: t.field({ type: 'BigInt', description: 'Units taken from allowance buckets.', resolve: (u) => u.bucketUnits }),
    pricedUnits: t.field({ type: 'BigInt', description: 'Units paid with money at the tariff.', resolve: (u) => u.pricedUnits }),
    amount: t.field({
      type: MoneyType, description: 'Charged, rounded half away from zero to minor units; `amountMicros` is exact.',
      resolve: (u) => ({ amount: microsToMinorRounded(u.amountMicros, u.currency), currency: u.currency }),
    }),
    amountMicros: t.field({ type: 'BigInt', resolve: (u) => u.amountMicros }),
    unchargedMicros: t.field({ type: 'BigInt', description: 'Overuse the balances could not cover (not charged).', resolve: (u) => u.unchargedMicros }),
    currency: t.exposeString('currency'),
    recordedAt: t.expose('recordedAt', { type: 'DateTime' }),
  }),
});

type PostingView = ChargeExplanation['postings'][number];
const PostingType = builder.objectRef<PostingView>('LedgerPosting').implement({
  description: 'One leg of a journal entry: credit positive, debit negative; money in micro-units of `unit`, allowances in bytes, seconds or messages.',
  fields: (t) => ({
    ledgerAccountId: t.exposeID('ledgerAccountId'),
    accountCode: t.exposeString('code', { description: 'wallet:<account>, bucket:<key>, revenue:<currency>, allowance_usage:<unit>…' }),
    accountKind: t.exposeString('kind'),
    unit: t.exposeString('unit'),
    amount: t.field({ type: 'BigInt', resolve: (p) => p.amount }),
    sourceRef: t.exposeString('sourceRef', { nullable: true, description: 'What caused this leg, where the entry books several: `recurring-charge:<id>` for each fee of a billing batch.' }),
  }),
});

type BalanceChangeView = ChargeExplanation['balances'][number];
const BalanceChangeType = builder.objectRef<BalanceChangeView>('LedgerBalanceChange').implement({
  description: 'A wallet or bucket the entry moved: its balance before and after (micro-units for money).',
  fields: (t) => ({
    ledgerAccountId: t.exposeID('ledgerAccountId'),
    accountCode: t.exposeString('code', { nullable: true }),
    accountKind: t.exposeString('kind'),
    before: t.field({ type: 'BigInt', resolve: (b) => b.before }),
    after: t.field({ type: 'BigInt', resolve: (b) => b.after }),
  }),
});

ChargeExplanationType.implement({
  description: 'Why a journal entry moved what it moved: raw usage → tariff and rating decision → bucket or wallet → amounts.',
  fields: (t) => ({
    entry: t.field({ type: JournalEntryType, resolve: (x) => x.entry }),
    request: t.field({ type: 'JSON', nullable: true, description: 'The request as the network sent it (usage), or the operation’s own details.', resolve: (x) => x.request ?? null }),
    lines: t.field({
      type: ['JSON'],
      description: 'Per reported usage: units, times, zone, the rating decision (tariff entry, base price, time band, promotion, rate), the buckets that gave units, what was priced and from which money account.',
      resolve: (x) => x.lines,
    }),
    postings: t.field({ type: [PostingType], resolve: (x) => x.postings }),
    balances: t.field({ type: [BalanceChangeType], resolve: (x) => x.balances }),
    ratedUsage: t.field({ type: [UsageRecordType], resolve: (x) => x.ratedUsage }),
    answer: t.field({ type: 'JSON', nullable: true, description: 'The stored answer given to the network ({ httpStatus, body }).', resolve: (x) => x.answer ?? null }),
  }),
});

// ---- lines and accounts ---------------------------------------------------------------------------

builder.objectFields(SubscriberType, (t) => ({
  wallet: t.field({
    type: WalletType, nullable: true, description: 'The wallet of the line’s billing account (what overage is paid from).',
    resolve: async (s, _a, ctx) => (await balancesOf(ctx, { subscriberId: s.id }, false)).wallet,
  }),
  buckets: t.field({
    type: [BucketType], description: 'Every bucket the line draws from, in consumption order: its own, its account’s and its family parent’s shared pools.',
    args: { includeExpired: t.arg.boolean(includeExpiredArg) },
    resolve: async (s, args, ctx) => (await balancesOf(ctx, { subscriberId: s.id }, args.includeExpired ?? false)).buckets,
  }),
  openReservations: t.connection({
    type: OpenReservationType, description: 'Open charging sessions of the line, newest first.',
    resolve: (s, args, ctx) => forwardConnection(args, (first, after) => pageOpenReservations(ctx.db, { subscriberId: s.id }, { first, after })),
  }),
  usage: t.connection({
    type: UsageRecordType, description: 'Rated usage, newest first; `from`/`to` bound the start of usage ([from, to)).',
    args: { service: t.arg({ type: UsageServiceEnum }), from: t.arg({ type: 'DateTime' }), to: t.arg({ type: 'DateTime' }) },
    resolve: (s, args, ctx) => forwardConnection(args, (first, after) => listUsage(ctx.db, {
      subscriberId: s.id, service: args.service ?? undefined, from: args.from ?? undefined, to: args.to ?? undefined, first, after,
    }).then((p) => ({ items: p.items, cursors: p.cursors, hasNextPage: p.nextCursor !== null }))),
  }),
}));

builder.objectFields(BillingAccountType, (t) => ({
  buckets: t.field({
    type: [BucketType], description: 'The account’s shared pools, its parent’s, and every bucket of its lines, in consumption order.',
    args: { includeExpired: t.arg.boolean(includeExpiredArg) },
    resolve: async (a: BillingAccount, args, ctx) => (await balancesOf(ctx, { billingAccountId: a.id }, args.includeExpired ?? false)).buckets,
  }),
  openReservations: t.connection({
    type: OpenReservationType, description: 'Open charging sessions of the account’s lines, newest first.',
    resolve: (a: BillingAccount, args, ctx) => forwardConnection(args, (first, after) => pageOpenReservations(ctx.db, { billingAccountId: a.id }, { first, after })),
  }),
}));

// ---- explain a charge -----------------------------------------------------------------------------

builder.queryFields((t) => ({
  chargeExplain: t.field({
    type: ChargeExplanationType,
    nullable: true,
    ...allow('chargeExplain', READERS),
    description: 'Explains one journal entry (from `usage { journalEntryId }` or an adjustment): raw usage → rating → bucket or wallet → amounts, balances before and after, postings. Null when no entry has this id.',
    args: { journalEntryId: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => explanationOf(ctx, String(args.journalEntryId)),
  }),
}));

// ---- balance adjustments --------------------------------------------------------------------------

interface Adjustment {
  journalEntryId: string;
  billingAccountId: string;
  amountMinor: bigint;
  currency: string;
  reason: string;
  replayed: boolean;
}

const AdjustmentType = builder.objectRef<Adjustment>('BalanceAdjustment').implement({
  description: 'A manual credit (positive) or debit (negative) of a wallet, written to the ledger as one adjustment entry.',
  fields: (t) => ({
    journalEntryId: t.exposeID('journalEntryId'),
    journalEntry: t.field({ type: JournalEntryType, resolve: async (a, _x, ctx) => (await loadJournalEntry(ctx, a.journalEntryId))! }),
    billingAccountId: t.exposeID('billingAccountId'),
    amount: t.field({ type: MoneyType, resolve: (a) => ({ amount: a.amountMinor, currency: a.currency }) }),
    reason: t.exposeString('reason'),
    replayed: t.exposeBoolean('replayed', { description: 'True when a retry with the same idempotencyKey returned the first adjustment (nothing moved again).' }),
    wallet: t.field({ type: WalletType, description: 'The wallet as it is now.', resolve: async (a, _x, ctx) => (await findWallet(ctx.db, a.billingAccountId))! }),
  }),
});

const BalanceAdjustPayload = builder.objectRef<{ adjustment: Adjustment | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('BalanceAdjustPayload').implement({
  fields: (t) => ({
    adjustment: t.field({ type: AdjustmentType, nullable: true, resolve: (p) => p.adjustment }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});

const BalanceAdjustInput = builder.inputType('BalanceAdjustInput', {
  fields: (t) => ({
    billingAccountId: t.id({ required: true }),
    amount: t.field({ type: 'BigInt', required: true, description: 'Minor units, signed: positive credits the customer, negative debits.' }),
    currency: t.string({ required: true, description: 'The wallet’s currency (ISO 4217).' }),
    reason: t.string({ required: true, description: 'Why; kept in the journal entry.' }),
    idempotencyKey: t.string({ required: true, description: 'Retrying with the same key returns the first adjustment; the wallet moves once.' }),
  }),
});

const MAX_ADJUSTMENT_MINOR = 10_000_000n;
const adjustSchema = z.object({
  billingAccountId: z.string().refine(isUuid, 'must be a billing account id'),
  amount: z.bigint().refine((v) => v !== 0n, 'must not be zero').refine((v) => v <= MAX_ADJUSTMENT_MINOR && v >= -MAX_ADJUSTMENT_MINOR, 'is too large'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code'),
  reason: z.string().trim().min(1, 'is required').max(500, 'is too long'),
  idempotencyKey: z.string().min(8, 'must be at least 8 characters').max(200),
});

async function adjust(ctx: GraphQLContext, v: z.infer<typeof adjustSchema>): Promise<Adjustment> {
  const wallet = await findWallet(ctx.db, v.billingAccountId);
  if (!wallet) {
    const account = await ctx.db('billing_accounts').where({ id: v.billingAccountId }).first('id');
    throw account
      ? new DomainError('WALLET_NOT_FOUND', 'this billing account has no wallet', ['input', 'billingAccountId'])
      : new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  }
  const currency = wallet.currency.trim();
  if (currency !== v.currency) throw new DomainError('CURRENCY_MISMATCH', `the wallet is in ${currency}`, ['input', 'currency']);
  const amountMicros = minorToMicros(v.amount, currency);
  let result;
  try {
    result = await adjustBalance(ctx.chargingEngine(), {
      billingAccountId: v.billingAccountId, amountMicros, reason: v.reason, actor: ctx.actor, idempotencyKey: v.idempotencyKey,
      details: { role: ctx.role, requested: { amountMinor: v.amount.toString(), currency } },
    });
  } catch (err) {
    // The ledger names the amount in micro-units; the caller sent `amount`.
    if (err instanceof DomainError && err.field?.includes('amountMicros')) throw new DomainError(err.code, err.message, ['input', 'amount']);
    throw err;
  }
  // The engine answers every applied or duplicate wallet operation with its entry (a retry in the
  // first call's batch too); no id would be a bug there, not a case to handle here.
  const journalEntryId = result.journalEntryId;
  if (journalEntryId === null) throw new Error('the charging engine answered an adjustment without its journal entry');
  let reason = v.reason;
  if (result.status === 'duplicate') {
    // The key already made an adjustment: the same one (a retry) is answered with it; a different one is refused.
    const leg = await ctx.db('postings as p').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id')
      .where({ 'p.journal_entry_id': journalEntryId, 'a.kind': 'wallet' }).first('p.amount', 'a.billing_account_id');
    if (!leg || leg.billing_account_id !== v.billingAccountId || BigInt(leg.amount) !== amountMicros) {
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was used for a different adjustment', ['input', 'idempotencyKey']);
    }
    reason = (await ctx.db('journal_entries').where({ id: journalEntryId }).first('reason'))?.reason ?? reason;
  }
  return { journalEntryId, billingAccountId: v.billingAccountId, amountMinor: v.amount, currency, reason, replayed: result.status === 'duplicate' };
}

builder.mutationFields((t) => ({
  balanceAdjust: t.field({
    type: BalanceAdjustPayload,
    ...allow('balanceAdjust', ADJUSTERS),
    description: 'Credits (positive amount) or debits (negative) a billing account’s wallet by hand, with a reason: one journal entry (adjustments ↔ wallet) through the charging engine, idempotent on `idempotencyKey`. A debit is refused beyond what the wallet and its credit limit cover.',
    args: { input: t.arg({ type: BalanceAdjustInput, required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('adjustment', adjustSchema, input, (v) => adjust(ctx, v)),
  }),
}));
