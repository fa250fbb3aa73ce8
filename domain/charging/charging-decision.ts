/**
 * The charging decision for a whole batch: a pure function over the locked balances.
 *
 * The engine locks every session, bucket and wallet a batch touches, hands their current values
 * here, and writes back what this returns (balance deltas, sessions, journal entries with their
 * postings, rated usage, stored answers, balance events) in a few set-based statements. Operations
 * are applied in order against one in-memory copy of the balances, so two requests of the same
 * batch on one shared pool see each other exactly as two transactions in sequence would.
 *
 * Consumption order for a service: the subscriber's allowance buckets and the shared pools of its
 * account and of its parent account, merged by priority then soonest expiry (never an expired or
 * not-yet-valid bucket) → money at the tariff's rate: money buckets in the same order, then the
 * wallet → for prepaid nothing more; postpaid and hybrid down to the wallet's credit limit.
 *
 * Reservations hold units (`reserved`) on the buckets and money on the wallet. Reporting usage
 * releases the holds, consumes the used units in consumption order, charges money for the part
 * no bucket covered at the reservation's rate (cumulatively per call, so increments apply to the
 * call and not to each report), and grants new quota if asked.
 *
 * Money never passes a limit here: what a grant can cost is held; usage reported beyond the grant
 * is charged only as far as the balances go, and the rest is recorded as `uncharged`.
 */
import { billableUnits, priceOf, selectRate, unitsAffordable, type Rate, type RatingDecision } from './rating';
import type { Service, Tariff } from './tariff.types';
import type { ChargingPolicy } from './charging-policy';
import type {
  BucketState,
  ChargingAnswer,
  ChargingDataResponse,
  ChargingOp,
  ChargingRequestOp,
  CreateOp,
  ExpireOp,
  Hold,
  MultipleUnitInformation,
  OpResult,
  Reservation,
  ResultCode,
  SessionState,
  StoredAnswer,
  SubscriberInfo,
  UnitUsage,
  UsedUnits,
  WalletOp,
  WalletState,
} from './charging.types';

// ---- input and output ------------------------------------------------------------------------

export interface BatchInput {
  now: number;
  ops: readonly ChargingOp[];
  sessions: ReadonlyMap<string, SessionState>;
  subscribers: readonly SubscriberInfo[];
  buckets: readonly BucketState[];
  wallets: readonly WalletState[];
  /** Parsed tariff per plan id; null when the plan's tariff does not parse. */
  tariffs: ReadonlyMap<string, Tariff | null>;
  /** Stored answers, key `${ref}#${sequenceNumber}`. */
  priorAnswers: ReadonlyMap<string, StoredAnswer>;
  /** Journal entries already written for wallet operations, by idempotency key. */
  priorWalletEntries: ReadonlyMap<string, { journalEntryId: string; balanceMicros: bigint }>;
  /** Ledger account ids of system accounts by code (`revenue:EUR`, `allowance_usage:bytes`, …). */
  systemAccounts: ReadonlyMap<string, string>;
  policy: ChargingPolicy;
}

export interface PostingDraft {
  account: string;
  unit: string;
  amount: bigint;
}

export interface JournalEntryDraft {
  /** journal_entries.idempotency_key; also links postings, rated usage and answers to the entry. */
  key: string;
  entryType: 'usage' | WalletOp['entryType'];
  sourceRef: string;
  actor: string;
  reason: string | null;
  details: Record<string, unknown>;
  occurredAt: number;
  postings: PostingDraft[];
}

export interface RatedUsageDraft {
  entryKey: string | null;
  ref: string;
  sequenceNumber: number;
  ratingGroup: number;
  serviceId: number | null;
  localSequenceNumber: number | null;
  subscriberId: string;
  billingAccountId: string;
  msisdn: string | null;
  imsi: string | null;
  service: Service;
  zone: string;
  destination: string | null;
  startedAt: number;
  endedAt: number;
  usedUnits: bigint;
  uplinkUnits: bigint | null;
  downlinkUnits: bigint | null;
  bucketUnits: bigint;
  pricedUnits: bigint;
  amountMicros: bigint;
  unchargedMicros: bigint;
  currency: string;
}

export interface RequestLogDraft {
  ref: string;
  sequenceNumber: number;
  operation: 'create' | 'update' | 'release' | 'event';
  httpStatus: number;
  response: ChargingDataResponse | null;
  entryKey: string | null;
  receivedAt: number;
}

export interface BalanceEventDraft {
  type: 'bucket_threshold' | 'wallet_low';
  billingAccountId: string;
  subscriberId: string | null;
  account: string;
  thresholdPercent: number | null;
  entryKey: string | null;
  payload: Record<string, unknown>;
  occurredAt: number;
}

export interface BatchOutput {
  results: OpResult[];
  bucketDeltas: { id: string; balance: bigint; reserved: bigint }[];
  walletDeltas: { id: string; balance: bigint; reserved: bigint }[];
  /** Final state of every session the batch created or changed. */
  sessions: SessionState[];
  entries: JournalEntryDraft[];
  ratedUsage: RatedUsageDraft[];
  requests: RequestLogDraft[];
  events: BalanceEventDraft[];
}

export const answerKey = (ref: string, seq: number) => `${ref}#${seq}`;
export const usageEntryKey = (ref: string, seq: number) => `nchf:${ref}:${seq}`;

// ---- the decision ----------------------------------------------------------------------------

export function decideBatch(input: BatchInput): BatchOutput {
  return new BatchDecision(input).run();
}

interface AccountTouch {
  kind: 'bucket' | 'wallet';
  before: bigint;
  reservedBefore: bigint;
}

class BatchDecision {
  private readonly now: number;
  private readonly policy: ChargingPolicy;
  private readonly buckets = new Map<string, BucketState>();
  private readonly wallets = new Map<string, WalletState>(); // by billing account id
  private readonly walletsById = new Map<string, WalletState>();
  private readonly origBucket = new Map<string, { balance: bigint; reserved: bigint }>();
  private readonly origWallet = new Map<string, { balance: bigint; reserved: bigint }>();
  private readonly bySubscription = new Map<string, BucketState[]>();
  private readonly byPoolAccount = new Map<string, BucketState[]>();
  private readonly subscribersById = new Map<string, SubscriberInfo>();
  private readonly subscribersByMsisdn = new Map<string, SubscriberInfo>();
  private readonly subscribersByImsi = new Map<string, SubscriberInfo>();
  private readonly sessions = new Map<string, SessionState>();
  private readonly touchedSessions = new Set<string>();
  private readonly answers = new Map<string, StoredAnswer>();
  private readonly walletKeys = new Map<string, { journalEntryId: string | null; balanceMicros: bigint }>();
  private readonly out: BatchOutput = {
    results: [], bucketDeltas: [], walletDeltas: [], sessions: [], entries: [], ratedUsage: [], requests: [], events: [],
  };

  // per-operation scratch: accounts touched and postings
  private touches = new Map<string, AccountTouch>();
  private postings = new Map<string, PostingDraft>();

  constructor(private readonly input: BatchInput) {
    this.now = input.now;
    this.policy = input.policy;
    for (const b of input.buckets) {
      const copy = { ...b };
      this.buckets.set(b.id, copy);
      this.origBucket.set(b.id, { balance: b.balance, reserved: b.reserved });
      const index = b.subscriptionId ? this.bySubscription : this.byPoolAccount;
      const key = b.subscriptionId ?? b.billingAccountId;
      const list = index.get(key);
      if (list) list.push(copy);
      else index.set(key, [copy]);
    }
    for (const w of input.wallets) {
      const copy = { ...w };
      this.wallets.set(w.billingAccountId, copy);
      this.walletsById.set(w.id, copy);
      this.origWallet.set(w.id, { balance: w.balance, reserved: w.reserved });
    }
    for (const s of input.subscribers) {
      this.subscribersById.set(s.id, s);
      // A number or IMSI may also belong to terminated lines; the live one wins.
      const m = this.subscribersByMsisdn.get(s.msisdn);
      if (!m || (m.state === 'terminated' && s.state !== 'terminated')) this.subscribersByMsisdn.set(s.msisdn, s);
      if (s.imsi) {
        const i = this.subscribersByImsi.get(s.imsi);
        if (!i || (i.state === 'terminated' && s.state !== 'terminated')) this.subscribersByImsi.set(s.imsi, s);
      }
    }
    for (const [ref, s] of input.sessions) this.sessions.set(ref, cloneSession(s));
    for (const [k, v] of input.priorAnswers) this.answers.set(k, v);
    for (const [k, v] of input.priorWalletEntries) this.walletKeys.set(k, v);
  }

  run(): BatchOutput {
    for (const op of this.input.ops) {
      this.touches = new Map();
      this.postings = new Map();
      let result: OpResult;
      switch (op.kind) {
        case 'create':
          result = op.oneTimeEvent ? this.event(op) : this.create(op);
          break;
        case 'update':
        case 'release':
          result = this.updateOrRelease(op);
          break;
        case 'expire':
          result = this.expire(op);
          break;
        case 'wallet':
          result = this.wallet(op);
          break;
      }
      this.out.results.push(result);
    }
    for (const [id, orig] of this.origBucket) {
      const b = this.buckets.get(id)!;
      if (b.balance !== orig.balance || b.reserved !== orig.reserved) {
        this.out.bucketDeltas.push({ id, balance: b.balance - orig.balance, reserved: b.reserved - orig.reserved });
      }
    }
    for (const [id, orig] of this.origWallet) {
      const w = this.walletsById.get(id)!;
      if (w.balance !== orig.balance || w.reserved !== orig.reserved) {
        this.out.walletDeltas.push({ id, balance: w.balance - orig.balance, reserved: w.reserved - orig.reserved });
      }
    }
    for (const ref of this.touchedSessions) {
      const s = this.sessions.get(ref);
      if (s) this.out.sessions.push(s);
    }
    return this.out;
  }

  // ---- operations ----------------------------------------------------------------------------

  private create(op: CreateOp): ChargingAnswer {
    const prior = this.answers.get(answerKey(op.ref, op.sequenceNumber));
    if (prior) return storedAnswer(prior);
    const sub = this.resolve(op);
    if ('problem' in sub) return sub.problem;
    if (this.sessions.has(op.ref)) {
      return problem(400, 'CHARGING_FAILED', 'Charging data resource exists', `a charging data resource ${op.ref} already exists`, op.ref);
    }
    const session: SessionState = {
      ref: op.ref, subscriberId: sub.id, billingAccountId: sub.billingAccountId, subscriberIdentifier: op.subscriberIdentifier,
      msisdn: sub.msisdn, imsi: sub.imsi, nfConsumer: op.nfConsumer ?? null, state: 'open', lastSequenceNumber: op.sequenceNumber,
      createdAt: this.now, releasedAt: null, reservations: [],
    };
    this.sessions.set(op.ref, session);
    this.touchedSessions.add(op.ref);
    const infos = op.units.map((u) => this.unitUsage(op, session, sub, u, true, true));
    return this.finish(op, 'create', 201, infos, sub);
  }

  /** One-time event: IEC debits the requested units at once (all or nothing); PEC charges the
   * reported usage. No session is kept. */
  private event(op: CreateOp): ChargingAnswer {
    const prior = this.answers.get(answerKey(op.ref, op.sequenceNumber));
    if (prior) return storedAnswer(prior);
    const sub = this.resolve(op);
    if ('problem' in sub) return sub.problem;
    const infos: MultipleUnitInformation[] = [];
    for (const u of op.units) {
      const service = this.policy.ratingGroups[u.ratingGroup];
      if (!service) {
        infos.push({ resultCode: 'RATING_FAILED', ratingGroup: u.ratingGroup });
        continue;
      }
      const r = this.newReservation(u.ratingGroup, service, sub, op.invocationTime.getTime(), op.context.zone ?? 'home', op.context.destination ?? null);
      if ('resultCode' in r) {
        infos.push(r);
        continue;
      }
      if (op.oneTimeEvent === 'PEC' || u.used.length > 0) {
        for (const used of u.used) this.commitUsed(op, sub, r, used);
        infos.push({ resultCode: 'SUCCESS', ratingGroup: u.ratingGroup });
        continue;
      }
      const wanted = this.wanted(service, u.requested ?? null);
      const available = this.available(sub, r, wanted);
      if (available < wanted) {
        infos.push({ resultCode: 'QUOTA_LIMIT_REACHED', ratingGroup: u.ratingGroup });
        continue;
      }
      this.commitUsed(op, sub, r, { units: wanted, eventTime: op.invocationTime });
      infos.push({ resultCode: 'SUCCESS', ratingGroup: u.ratingGroup, grantedUnit: grantedUnit(service, wanted) });
    }
    return this.finish(op, 'event', 201, infos, sub);
  }

  private updateOrRelease(op: ChargingRequestOp): ChargingAnswer {
    const prior = this.answers.get(answerKey(op.ref, op.sequenceNumber));
    if (prior) return storedAnswer(prior);
    const session = this.sessions.get(op.ref);
    if (!session) {
      return problem(404, 'CONTEXT_NOT_FOUND', 'Charging data resource not found', `no charging data resource ${op.ref}`, op.ref);
    }
    const sub = this.subscribersById.get(session.subscriberId);
    if (!sub) return problem(404, 'USER_UNKNOWN', 'User unknown', 'the subscriber of this charging data resource no longer exists', op.ref);
    this.touchedSessions.add(op.ref);
    // A request older than one already answered (and not a retransmission of it) still reports real
    // usage, which is charged; it does not move the current grant.
    const inOrder = op.sequenceNumber > session.lastSequenceNumber;
    if (inOrder) session.lastSequenceNumber = op.sequenceNumber;
    const open = session.state === 'open';
    const release = op.kind === 'release';
    const infos = op.units.map((u) => this.unitUsage(op, session, sub, u, inOrder && open, !release && inOrder && open));
    if (release && open && inOrder) {
      for (const r of session.reservations) this.releaseHolds(r);
      session.state = 'released';
      session.releasedAt = this.now;
    }
    return this.finish(op, op.kind, release ? 204 : 200, infos, sub);
  }

  private expire(op: ExpireOp): OpResult {
    const session = this.sessions.get(op.ref);
    if (!session) return { kind: 'expired', released: false };
    let released = false;
    for (const r of session.reservations) {
      if (r.expiresAt !== null && r.expiresAt <= this.now) {
        this.releaseHolds(r);
        released = true;
      }
    }
    if (released) this.touchedSessions.add(op.ref);
    return { kind: 'expired', released };
  }

  private wallet(op: WalletOp): OpResult {
    const prior = this.walletKeys.get(op.idempotencyKey);
    if (prior) {
      const current = this.wallets.get(op.billingAccountId)?.balance ?? prior.balanceMicros;
      return { kind: 'wallet', status: 'duplicate', journalEntryId: prior.journalEntryId, balanceMicros: current };
    }
    const w = this.wallets.get(op.billingAccountId);
    if (!w) return { kind: 'wallet', status: 'refused', code: 'WALLET_NOT_FOUND', message: 'this billing account has no wallet' };
    if (op.amountMicros === 0n) return { kind: 'wallet', status: 'refused', code: 'ZERO_AMOUNT', message: 'the amount must not be zero' };
    if (op.amountMicros < 0n && -op.amountMicros > w.balance - w.reserved + w.creditLimit) {
      return { kind: 'wallet', status: 'refused', code: 'INSUFFICIENT_FUNDS', message: 'the wallet cannot cover this debit within its credit limit' };
    }
    this.touchWallet(w);
    w.balance += op.amountMicros;
    this.post(w.id, w.currency, op.amountMicros);
    this.post(this.system(`${op.counterKind}:${w.currency}`), w.currency, -op.amountMicros);
    const balances = this.balanceSnapshot();
    this.out.entries.push({
      key: op.idempotencyKey, entryType: op.entryType, sourceRef: op.sourceRef, actor: op.actor, reason: op.reason ?? null,
      details: { kind: 'wallet', amountMicros: op.amountMicros.toString(), currency: w.currency, ...jsonSafe(op.details ?? {}), balances },
      occurredAt: this.now, postings: [...this.postings.values()],
    });
    this.thresholdEvents(op.idempotencyKey, null);
    this.walletKeys.set(op.idempotencyKey, { journalEntryId: null, balanceMicros: w.balance });
    return { kind: 'wallet', status: 'applied', journalEntryId: null, balanceMicros: w.balance };
  }

  // ---- one rating group of a request ---------------------------------------------------------

  private unitUsage(
    op: ChargingRequestOp, session: SessionState, sub: SubscriberInfo, u: UnitUsage, mayMoveGrant: boolean, mayGrant: boolean,
  ): MultipleUnitInformation {
    const service = this.policy.ratingGroups[u.ratingGroup];
    if (!service) return { resultCode: 'RATING_FAILED', ratingGroup: u.ratingGroup };
    let r = session.reservations.find((x) => x.ratingGroup === u.ratingGroup);
    if (!r) {
      const start = op.kind === 'create' ? this.now : (session.reservations[0]?.sliceStart ?? session.createdAt);
      const zone = op.context.zone ?? session.reservations[0]?.zone ?? 'home';
      const made = this.newReservation(u.ratingGroup, service, sub, start, zone, op.context.destination ?? null);
      // A rating group the tariff does not price: answered RATING_FAILED, nothing is charged.
      if ('resultCode' in made) return made;
      r = made;
      session.reservations.push(r);
    }
    if (mayMoveGrant) this.releaseHolds(r);
    for (const used of u.used) this.commitUsed(op, sub, r, used, session);
    if (u.requested === undefined) return { resultCode: 'SUCCESS', ratingGroup: u.ratingGroup };
    if (!mayGrant) {
      if (session.state !== 'open' || !mayMoveGrant) return { resultCode: 'SUCCESS', ratingGroup: u.ratingGroup };
      return { resultCode: 'END_USER_SERVICE_DENIED', ratingGroup: u.ratingGroup };
    }
    if (sub.state !== 'active') return { resultCode: 'END_USER_SERVICE_DENIED', ratingGroup: u.ratingGroup };
    // A new grant is priced at the rate in force now, in the zone the request reports.
    const zone = op.context.zone ?? r.zone;
    const destination = op.context.destination !== undefined && service !== 'data' ? op.context.destination : r.destination;
    if (zone !== r.zone || destination !== r.destination) {
      const fresh = this.newReservation(u.ratingGroup, service, sub, r.sliceStart, zone, destination);
      if ('resultCode' in fresh) return fresh;
      // A new rating segment: increments restart at the new rate.
      r.zone = fresh.zone;
      r.destination = fresh.destination;
      r.rate = fresh.rate;
      r.ratedAt = fresh.ratedAt;
      r.segmentUnits = 0n;
      r.segmentMicros = 0n;
    }
    return this.grant(sub, r, this.wanted(service, u.requested));
  }

  private newReservation(
    ratingGroup: number, service: Service, sub: SubscriberInfo, start: number, zone: string, destination: string | null,
  ): Reservation | MultipleUnitInformation {
    const dest = service === 'data' ? null : destination;
    const tariff = sub.planId ? this.input.tariffs.get(sub.planId) : undefined;
    if (!tariff || tariff.currency !== sub.currency) return { resultCode: 'RATING_FAILED', ratingGroup };
    const sel = selectRate(tariff, { service, zone, destination: dest ?? undefined, startedAt: new Date(start) });
    if (sel.status !== 'selected') return { resultCode: 'RATING_FAILED', ratingGroup };
    return {
      ratingGroup, service, zone, destination: sel.decision.destination, rate: sel.rate, ratedAt: start, holds: [], granted: 0n,
      segmentUnits: 0n, segmentMicros: 0n, usedTotal: 0n, expiresAt: null, sliceStart: start,
    };
  }

  private wanted(service: Service, requested: bigint | null | undefined): bigint {
    const asked = requested && requested > 0n ? requested : this.policy.defaultGrant[service];
    return asked < this.policy.maxGrant[service] ? asked : this.policy.maxGrant[service];
  }

  /** Grants up to `wanted` units and holds them: buckets first, then money. */
  private grant(sub: SubscriberInfo, r: Reservation, wanted: bigint): MultipleUnitInformation {
    let remaining = wanted;
    for (const b of this.unitBuckets(sub, r.service)) {
      if (remaining === 0n) break;
      const take = min(remaining, b.balance - b.reserved);
      if (take <= 0n) continue;
      this.touchBucket(b);
      b.reserved += take;
      addHold(r.holds, b.id, 'bucket', take);
      remaining -= take;
    }
    if (remaining > 0n && r.rate) {
      const rate = r.rate;
      const money = this.moneySources(sub);
      const free = money.reduce((s, m) => s + m.free, 0n);
      const affordable = unitsAffordable(rate, r.segmentMicros + free);
      const priced = affordable === 'unlimited' ? remaining : min(remaining, max0(affordable - r.segmentUnits));
      if (priced > 0n) {
        const cost = priceOf(rate, billableUnits(rate, r.segmentUnits + priced)) - r.segmentMicros;
        this.takeMoney(money, cost, (src, amount) => {
          src.reserve(amount);
          addHold(r.holds, src.id, src.kind, amount);
        });
        // Held, not spent: the segment moves only when usage is committed.
        remaining -= priced;
      }
    }
    const granted = wanted - remaining;
    r.granted = granted;
    if (granted === 0n) {
      r.expiresAt = null;
      return { resultCode: 'QUOTA_LIMIT_REACHED', ratingGroup: r.ratingGroup };
    }
    r.expiresAt = this.now + this.policy.validityTimeSec * 1000;
    const info: MultipleUnitInformation = {
      resultCode: 'SUCCESS', ratingGroup: r.ratingGroup, grantedUnit: grantedUnit(r.service, granted), validityTime: this.policy.validityTimeSec,
    };
    // The balance ran out: this is the last grant; the network terminates when it is used up.
    if (remaining > 0n) info.finalUnitIndication = { finalUnitAction: 'TERMINATE' };
    return info;
  }

  /** How many units could be granted now (for all-or-nothing events), without holding them. */
  private available(sub: SubscriberInfo, r: Reservation, wanted: bigint): bigint {
    let total = 0n;
    for (const b of this.unitBuckets(sub, r.service)) total += max0(b.balance - b.reserved);
    if (total >= wanted || !r.rate) return min(total, wanted);
    const rate = r.rate;
    const free = this.moneySources(sub).reduce((s, m) => s + m.free, 0n);
    const affordable = unitsAffordable(rate, free);
    return affordable === 'unlimited' ? wanted : min(wanted, total + affordable);
  }

  /** Charges one used-unit report: buckets in consumption order, then money at the reservation's rate. */
  private commitUsed(op: ChargingRequestOp, sub: SubscriberInfo, r: Reservation, used: UsedUnits, session?: SessionState): void {
    const startedAt = used.eventTime?.getTime() ?? r.sliceStart;
    const endedAt = used.triggerTimestamp?.getTime() ?? op.invocationTime.getTime();
    r.sliceStart = Math.max(r.sliceStart, endedAt);
    r.usedTotal += used.units;
    let remaining = used.units;
    let bucketUnits = 0n;
    const fromBuckets: { bucket: string; units: string }[] = [];
    for (const b of this.unitBuckets(sub, r.service)) {
      if (remaining === 0n) break;
      const take = min(remaining, b.balance - b.reserved);
      if (take <= 0n) continue;
      this.touchBucket(b);
      b.balance -= take;
      this.post(b.id, b.unit, -take);
      this.post(this.system(`allowance_usage:${b.unit}`), b.unit, take);
      fromBuckets.push({ bucket: b.id, units: take.toString() });
      bucketUnits += take;
      remaining -= take;
    }
    let amount = 0n;
    let uncharged = 0n;
    const fromMoney: { account: string; kind: string; micros: string }[] = [];
    if (remaining > 0n && r.rate) {
      const rate = r.rate;
      const total = r.segmentUnits + remaining;
      const price = priceOf(rate, billableUnits(rate, total));
      const cost = price - r.segmentMicros;
      r.segmentUnits = total;
      r.segmentMicros = price;
      const money = this.moneySources(sub);
      amount = this.takeMoney(money, cost, (src, micros) => {
        src.spend(micros);
        fromMoney.push({ account: src.id, kind: src.kind, micros: micros.toString() });
      });
      uncharged = cost - amount;
      if (amount > 0n) this.post(this.system(`revenue:${sub.currency}`), sub.currency, amount);
    }
    const key = usageEntryKey(op.ref, op.sequenceNumber);
    // Only what explains the charge; empty parts are left out.
    const line: Record<string, unknown> = {
      ratingGroup: r.ratingGroup, service: r.service, zone: r.zone, usedUnits: used.units.toString(),
      startedAt: new Date(startedAt).toISOString(), endedAt: new Date(endedAt).toISOString(), rating: this.ratingOf(sub, r),
    };
    if (r.destination !== null) line.destination = r.destination;
    if (used.localSequenceNumber !== undefined) line.localSequenceNumber = used.localSequenceNumber;
    if (fromBuckets.length > 0) line.fromBuckets = fromBuckets;
    if (remaining > 0n) {
      line.fromMoney = { pricedUnits: remaining.toString(), segmentUnits: r.segmentUnits.toString(), amountMicros: amount.toString(), sources: fromMoney };
    }
    if (uncharged > 0n) line.unchargedMicros = uncharged.toString();
    this.lines.push(line);
    this.out.ratedUsage.push({
      entryKey: key, ref: op.ref, sequenceNumber: op.sequenceNumber, ratingGroup: r.ratingGroup, serviceId: used.serviceId ?? null,
      localSequenceNumber: used.localSequenceNumber ?? null, subscriberId: sub.id, billingAccountId: sub.billingAccountId,
      msisdn: session?.msisdn ?? sub.msisdn, imsi: session?.imsi ?? sub.imsi, service: r.service, zone: r.zone, destination: r.destination,
      startedAt, endedAt, usedUnits: used.units, uplinkUnits: used.uplink ?? null, downlinkUnits: used.downlink ?? null,
      bucketUnits, pricedUnits: remaining, amountMicros: amount, unchargedMicros: uncharged, currency: sub.currency,
    });
  }

  private lines: Record<string, unknown>[] = [];

  /** The rating decision behind a reservation's rate, for the journal: derived again from the
   * tariff for the instant the rate was selected. Should the tariff have changed since the grant,
   * the usage is still charged at the granted rate, and the journal says so. */
  private ratingOf(sub: SubscriberInfo, r: Reservation): Record<string, unknown> | null {
    if (!r.rate) return null;
    const key = `${sub.planId}|${r.service}|${r.zone}|${r.destination ?? ''}|${r.ratedAt}`;
    const hit = this.ratings.get(key);
    if (hit) return hit;
    const tariff = sub.planId ? this.input.tariffs.get(sub.planId) : undefined;
    const sel = tariff ? selectRate(tariff, { service: r.service, zone: r.zone, destination: r.destination ?? undefined, startedAt: new Date(r.ratedAt) }) : null;
    let rating: Record<string, unknown>;
    if (sel && sel.status === 'selected' && sameRate(sel.rate, r.rate)) {
      // Fields the line already states (service, zone, destination) are left out.
      const { service: _s, zone: _z, destination: _d, timeBand, promotion, ...rest } = sel.decision;
      rating = { ...rest, ...(timeBand ? { timeBand } : {}), ...(promotion ? { promotion } : {}) };
    } else {
      rating = { rate: rateJson(r.rate), note: 'the tariff changed after the grant; charged at the granted rate' };
    }
    this.ratings.set(key, rating);
    return rating;
  }

  private readonly ratings = new Map<string, Record<string, unknown>>();

  private releaseHolds(r: Reservation): void {
    for (const h of r.holds) {
      if (h.kind === 'bucket') {
        const b = this.buckets.get(h.account);
        if (!b) throw new Error(`bucket ${h.account} held by a reservation was not loaded`);
        this.touchBucket(b);
        b.reserved -= h.amount;
      } else {
        const w = this.walletsById.get(h.account);
        if (!w) throw new Error(`wallet ${h.account} held by a reservation was not loaded`);
        this.touchWallet(w);
        w.reserved -= h.amount;
      }
    }
    r.holds = [];
    r.granted = 0n;
    r.expiresAt = null;
  }

  /** Stores the answer, the journal entry (if anything moved) and the balance events of a request. */
  private finish(
    op: ChargingRequestOp, operation: RequestLogDraft['operation'], status: 200 | 201 | 204, infos: MultipleUnitInformation[], sub: SubscriberInfo,
  ): ChargingAnswer {
    const body: ChargingDataResponse | null = status === 204 ? null : {
      invocationTimeStamp: new Date(this.now).toISOString(),
      invocationSequenceNumber: op.sequenceNumber,
      ...(infos.length > 0 ? { multipleUnitInformation: infos } : {}),
    };
    const key = usageEntryKey(op.ref, op.sequenceNumber);
    let entryKey: string | null = null;
    if (this.postings.size > 0) {
      entryKey = key;
      this.out.entries.push({
        key, entryType: 'usage', sourceRef: `chargingdata/${op.ref}/${op.sequenceNumber}`,
        actor: op.nfConsumer ? `nf:${op.nfConsumer}` : 'nf:unknown', reason: null,
        details: {
          kind: 'usage', operation, chargingDataRef: op.ref, invocationSequenceNumber: op.sequenceNumber,
          subscriberId: sub.id,
          // The request verbatim (JSON text): exact for audit, and one scalar for jsonb to store.
          request: typeof op.raw === 'string' ? op.raw : JSON.stringify(op.raw), lines: this.lines, balances: this.balanceSnapshot(),
        },
        occurredAt: op.invocationTime.getTime(), postings: [...this.postings.values()],
      });
    }
    this.thresholdEvents(entryKey, sub.id);
    this.lines = [];
    const stored: StoredAnswer = { ref: op.ref, sequenceNumber: op.sequenceNumber, httpStatus: status, response: body };
    this.answers.set(answerKey(op.ref, op.sequenceNumber), stored);
    this.out.requests.push({
      ref: op.ref, sequenceNumber: op.sequenceNumber, operation, httpStatus: status, response: body, entryKey, receivedAt: this.now,
    });
    return { kind: 'response', httpStatus: status, ref: op.ref, body };
  }

  // ---- subscribers, balances -----------------------------------------------------------------

  private resolve(op: CreateOp): SubscriberInfo | { problem: ChargingAnswer } {
    const sub = op.subscriber.kind === 'imsi' ? this.subscribersByImsi.get(op.subscriber.value) : this.subscribersByMsisdn.get(op.subscriber.value);
    if (!sub || sub.state === 'terminated') {
      return { problem: problem(404, 'USER_UNKNOWN', 'User unknown', `no line has ${op.subscriber.kind} ${op.subscriber.value}`) };
    }
    if (sub.state !== 'active') {
      return { problem: problem(403, 'END_USER_REQUEST_DENIED', 'End user request denied', `the line is ${sub.state}`) };
    }
    return sub;
  }

  /** Valid allowance buckets of a service for a subscriber, in consumption order. */
  private unitBuckets(sub: SubscriberInfo, service: Service | 'money', unit?: string): BucketState[] {
    const all: BucketState[] = [];
    const add = (list: BucketState[] | undefined) => {
      if (!list) return;
      for (const b of list) {
        if (b.service === service && b.validFrom <= this.now && this.now < b.validUntil && (unit === undefined || b.unit === unit)) all.push(b);
      }
    };
    if (sub.subscriptionId) add(this.bySubscription.get(sub.subscriptionId));
    add(this.byPoolAccount.get(sub.billingAccountId));
    if (sub.parentAccountId) add(this.byPoolAccount.get(sub.parentAccountId));
    if (all.length > 1) all.sort(consumptionOrder);
    return all;
  }

  /** Money buckets (in consumption order) then the wallet, each with what it can still give. */
  private moneySources(sub: SubscriberInfo): MoneySource[] {
    const sources: MoneySource[] = [];
    for (const b of this.unitBuckets(sub, 'money', sub.currency)) {
      sources.push({
        id: b.id, kind: 'bucket', free: max0(b.balance - b.reserved),
        reserve: (m) => { this.touchBucket(b); b.reserved += m; },
        spend: (m) => { this.touchBucket(b); b.balance -= m; this.post(b.id, b.unit, -m); },
      });
    }
    const w = this.wallets.get(sub.billingAccountId);
    if (w && w.currency === sub.currency) {
      const credit = sub.paymentType === 'prepaid' ? 0n : w.creditLimit;
      sources.push({
        id: w.id, kind: 'wallet', free: max0(w.balance - w.reserved + credit),
        reserve: (m) => { this.touchWallet(w); w.reserved += m; },
        spend: (m) => { this.touchWallet(w); w.balance -= m; this.post(w.id, w.currency, -m); },
      });
    }
    return sources;
  }

  /** Takes up to `amount` from the sources in order; returns what it could take. */
  private takeMoney(sources: MoneySource[], amount: bigint, apply: (src: MoneySource, micros: bigint) => void): bigint {
    let remaining = amount;
    for (const src of sources) {
      if (remaining === 0n) break;
      const take = min(remaining, src.free);
      if (take <= 0n) continue;
      apply(src, take);
      src.free -= take;
      remaining -= take;
    }
    return amount - remaining;
  }

  private touchBucket(b: BucketState): void {
    if (!this.touches.has(b.id)) this.touches.set(b.id, { kind: 'bucket', before: b.balance, reservedBefore: b.reserved });
  }

  private touchWallet(w: WalletState): void {
    if (!this.touches.has(w.id)) this.touches.set(w.id, { kind: 'wallet', before: w.balance, reservedBefore: w.reserved });
  }

  private post(account: string, unit: string, amount: bigint): void {
    if (amount === 0n) return;
    const p = this.postings.get(account);
    if (p) p.amount += amount;
    else this.postings.set(account, { account, unit, amount });
    if (p && p.amount === 0n) this.postings.delete(account);
  }

  private system(code: string): string {
    const id = this.input.systemAccounts.get(code);
    if (!id) throw new Error(`ledger account ${code} is missing`);
    return id;
  }

  /** Balances before and after the operation of every account it moved (holds are not ledger
   * movements and are left out). */
  private balanceSnapshot(): Record<string, { kind: string; before: string; after: string }> {
    const snap: Record<string, { kind: string; before: string; after: string }> = {};
    for (const [id, t] of this.touches) {
      const cur = t.kind === 'bucket' ? this.buckets.get(id)! : this.walletsById.get(id)!;
      if (cur.balance !== t.before) snap[id] = { kind: t.kind, before: t.before.toString(), after: cur.balance.toString() };
    }
    return snap;
  }

  /** Bucket usage crossing a threshold, or a wallet falling below the low mark, in this operation. */
  private thresholdEvents(entryKey: string | null, subscriberId: string | null): void {
    for (const [id, t] of this.touches) {
      if (t.kind === 'bucket') {
        const b = this.buckets.get(id)!;
        if (b.balance >= t.before || b.initial <= 0n) continue;
        const usedBefore = b.initial - t.before;
        const usedAfter = b.initial - b.balance;
        for (const pct of this.policy.bucketThresholdsPercent) {
          const mark = ceilDiv(b.initial * BigInt(pct), 100n);
          if (usedBefore < mark && usedAfter >= mark) {
            this.out.events.push({
              type: 'bucket_threshold', billingAccountId: b.billingAccountId, subscriberId, account: id, thresholdPercent: pct, entryKey,
              payload: { service: b.service, unit: b.unit, initialUnits: b.initial.toString(), balanceUnits: b.balance.toString(), shared: b.subscriptionId === null },
              occurredAt: this.now,
            });
          }
        }
      } else {
        const w = this.walletsById.get(id)!;
        const mark = this.policy.lowWalletThresholdMicros;
        if (t.before >= mark && w.balance < mark) {
          this.out.events.push({
            type: 'wallet_low', billingAccountId: w.billingAccountId, subscriberId, account: id, thresholdPercent: null, entryKey,
            payload: { currency: w.currency, balanceMicros: w.balance.toString(), thresholdMicros: mark.toString() },
            occurredAt: this.now,
          });
        }
      }
    }
  }
}

interface MoneySource {
  id: string;
  kind: 'bucket' | 'wallet';
  free: bigint;
  reserve(micros: bigint): void;
  spend(micros: bigint): void;
}

// ---- helpers -----------------------------------------------------------------------------------

function sameRate(a: Rate, b: Rate): boolean {
  return a.priceMicros === b.priceMicros && a.perUnits === b.perUnits && a.initialIncrement === b.initialIncrement && a.subsequentIncrement === b.subsequentIncrement;
}

function rateJson(r: Rate): RatingDecision['rate'] {
  return { priceMicros: r.priceMicros.toString(), perUnits: r.perUnits.toString(), initialIncrement: r.initialIncrement.toString(), subsequentIncrement: r.subsequentIncrement.toString() };
}

function consumptionOrder(a: BucketState, b: BucketState): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.validUntil !== b.validUntil) return a.validUntil - b.validUntil;
  // ids are decimal strings: shorter is smaller, then lexicographic
  if (a.id.length !== b.id.length) return a.id.length - b.id.length;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function addHold(holds: Hold[], account: string, kind: Hold['kind'], amount: bigint): void {
  const h = holds.find((x) => x.account === account);
  if (h) h.amount += amount;
  else holds.push({ account, kind, amount });
}

export function grantedUnit(service: Service, units: bigint): { time?: number; totalVolume?: number; serviceSpecificUnits?: number } {
  const n = Number(units);
  if (service === 'data') return { totalVolume: n };
  if (service === 'voice') return { time: n };
  return { serviceSpecificUnits: n };
}

function problem(status: number, cause: string, title: string, detail: string, ref?: string): ChargingAnswer {
  return { kind: 'problem', ref, problem: { status, cause, title, detail } };
}

function storedAnswer(a: StoredAnswer): ChargingAnswer {
  return { kind: 'response', httpStatus: a.httpStatus as 200 | 201 | 204, ref: a.ref, body: a.response };
}

function cloneSession(s: SessionState): SessionState {
  return { ...s, reservations: s.reservations.map((r) => ({ ...r, holds: r.holds.map((h) => ({ ...h })) })) };
}

/** Caller-supplied details may hold bigints; the journal stores them as decimal strings. */
function jsonSafe(value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max0 = (a: bigint) => (a > 0n ? a : 0n);
const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

export type { ResultCode, RatingDecision };
