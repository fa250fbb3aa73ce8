/**
 * The charging engine: groups concurrent operations into batches and runs each batch as one
 * transaction on its own pooled connection:
 *
 *   BEGIN → lock + read (one statement) → decide in memory (pure `decideBatch`) → write (one
 *   statement) → COMMIT → answer every operation of the batch.
 *
 * Batching is natural: an operation waits only while every connection of the engine is busy; when
 * one frees up, everything that queued meanwhile (up to `maxBatch`) goes in the next batch. Under
 * light load a request runs alone at once; under heavy load batches grow and the cost per request
 * falls. Several batches run in parallel (`concurrency`); two operations on the same charging data
 * resource (or the same wallet idempotency key) never run in parallel batches, and rows are locked
 * in one global order, so parallel batches never deadlock.
 *
 * What is cached is only what cannot cause overspend: parsed tariffs per plan (TTL) and the ids
 * of system ledger accounts. Balances, holds, subscriber state and subscriptions are read, under
 * lock, in every batch.
 *
 * If a batch fails (a constraint, a concurrent writer in another process), it is rolled back and
 * its operations are retried one by one, so one bad operation never fails its neighbours.
 */
import crypto from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { parseTariff, type Tariff } from './tariff.types';
import { DEFAULT_POLICY, type ChargingPolicy } from './charging-policy';
import { answerKey, decideBatch } from './charging-decision';
import { forgetPrepared, lockBatchState, loadAnswers, prepareConnection, resolveLines, writeBatch, type LineInfo, type LockKeys, type Resolved } from './charging.store';
import { LineCache, listenForInvalidations } from './line-cache';
import type {
  ChargingAnswer,
  ChargingOp,
  ChargingRequestOp,
  OpResult,
  SubscriberInfo,
  WalletOp,
  WalletOpResult,
} from './charging.types';

export interface ChargingEngineOptions {
  pool: Pool;
  policy?: Partial<ChargingPolicy>;
  /** Most operations in one batch. */
  maxBatch?: number;
  /** Batches in flight at once (each holds one connection). */
  concurrency?: number;
  /** Epoch ms; injectable for tests. */
  clock?: () => number;
  /** How long a parsed tariff is trusted before it is read again. */
  tariffTtlMs?: number;
  onBatch?: (info: { size: number; ms: number; failed: boolean }) => void;
  /** Cache line ids between batches (invalidated through LISTEN/NOTIFY). Default true. */
  cache?: boolean;
  onError?: (err: unknown) => void;
}

export interface ChargingEngineStats {
  /** Milliseconds spent per phase, summed over batches (wall time, including waits);
   * `commit` is the write statement and the commit, sent together. */
  phases: { connect: number; resolve: number; lock: number; decide: number; commit: number };
  batches: number;
  operations: number;
  failedBatches: number;
  retriedOperations: number;
  maxBatchSize: number;
  queued: number;
  running: number;
}

export interface ChargingEngine {
  /** Create / update / release of a charging data resource, or a one-time event. */
  charge(op: ChargingRequestOp): Promise<ChargingAnswer>;
  /** A credit or debit of a wallet through the same locks as the hot path. */
  applyWalletOp(op: WalletOp): Promise<WalletOpResult>;
  /** Returns the expired holds of these sessions (used by the sweeper). */
  expireSessions(refs: string[]): Promise<number>;
  readonly policy: ChargingPolicy;
  /** Fills the line cache with up to `maxLines` live lines (warm start); returns how many. */
  preload(maxLines?: number): Promise<number>;
  stats(): ChargingEngineStats;
  /** Waits for queued work, then stops accepting more. Does not end the pool. */
  close(): Promise<void>;
}

interface BatchLines {
  bySubscriber: Map<string, LineInfo>;
  /** 'imsi:<imsi>' / 'msisdn:<msisdn>' → subscriber id */
  byIdentity: Map<string, string>;
  byRef: Map<string, string>;
  walletByAccount: Map<string, string>;
}

interface Item {
  op: ChargingOp;
  key: string;
  resolve(r: OpResult): void;
  reject(e: unknown): void;
  attempts: number;
}

const MONEY_COUNTER_KINDS = ['revenue', 'adjustments', 'gateway_cash', 'receivables', 'discounts'] as const;
const RETRIABLE = new Set(['40P01', '40001', '23505', '55P03', '26000']);

export function createChargingEngine(options: ChargingEngineOptions): ChargingEngine {
  return new Engine(options);
}

class Engine implements ChargingEngine {
  readonly policy: ChargingPolicy;
  private readonly pool: Pool;
  private readonly maxBatch: number;
  private readonly concurrency: number;
  private readonly clock: () => number;
  private readonly tariffTtlMs: number;
  private readonly pending: Item[] = [];
  private readonly busy = new Set<string>();
  private running = 0;
  private scheduled = false;
  private closed = false;
  private readonly idle: (() => void)[] = [];
  private readonly tariffs = new Map<string, { tariff: Tariff | null; until: number }>();
  private readonly systemAccounts = new Map<string, string>();
  private readonly counters: ChargingEngineStats = {
    phases: { connect: 0, resolve: 0, lock: 0, decide: 0, commit: 0 },
    batches: 0, operations: 0, failedBatches: 0, retriedOperations: 0, maxBatchSize: 0, queued: 0, running: 0,
  };
  private readonly cache = new LineCache();
  private readonly listener: { close(): Promise<void> } | null;

  constructor(private readonly options: ChargingEngineOptions) {
    this.pool = options.pool;
    this.policy = { ...DEFAULT_POLICY, ...options.policy };
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 3;
    this.clock = options.clock ?? Date.now;
    this.tariffTtlMs = options.tariffTtlMs ?? 60_000;
    this.listener = options.cache === false ? null : listenForInvalidations(this.pool, this.cache, options.onError);

  }

  charge(op: ChargingRequestOp): Promise<ChargingAnswer> {
    return this.enqueue(op, `s:${op.ref}`) as Promise<ChargingAnswer>;
  }

  applyWalletOp(op: WalletOp): Promise<WalletOpResult> {
    return this.enqueue(op, `w:${op.idempotencyKey}`) as Promise<WalletOpResult>;
  }

  async expireSessions(refs: string[]): Promise<number> {
    const results = await Promise.all(refs.map((ref) => this.enqueue({ kind: 'expire', ref }, `s:${ref}`)));
    return results.filter((r) => r.kind === 'expired' && r.released).length;
  }

  async preload(maxLines = 1_000_000): Promise<number> {
    for (let i = 0; i < 50 && !this.cache.live && this.listener; i++) await new Promise((r) => setTimeout(r, 100));
    if (!this.cache.live) return 0;
    const client = await this.pool.connect();
    let loaded = 0;
    try {
      let after = '00000000-0000-0000-0000-000000000000';
      while (loaded < maxLines) {
        const res = await client.query({
          name: 'charging_preload_ids_v1',
          text: `SELECT id FROM subscribers WHERE state <> 'terminated' AND id > $1 ORDER BY id LIMIT $2`,
          values: [after, Math.min(5_000, maxLines - loaded)],
        });
        const ids = (res.rows as { id: string }[]).map((r) => r.id);
        if (ids.length === 0) break;
        const epoch = this.cache.epoch;
        this.cache.store(await resolveLines(client, { msisdns: [], imsis: [], subscriberIds: ids, refs: [], accountIds: [] }), epoch);
        loaded += ids.length;
        after = ids[ids.length - 1];
      }
    } finally {
      client.release();
    }
    return loaded;
  }

  stats(): ChargingEngineStats {
    return { ...this.counters, phases: { ...this.counters.phases }, queued: this.pending.length, running: this.running };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pending.length > 0 || this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.listener?.close();
  }

  // ---- batching ------------------------------------------------------------------------------

  private enqueue(op: ChargingOp, key: string): Promise<OpResult> {
    if (this.closed) return Promise.reject(new Error('the charging engine is closed'));
    return new Promise<OpResult>((resolve, reject) => {
      this.pending.push({ op, key, resolve, reject, attempts: 0 });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.concurrency || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.running < this.concurrency && this.pending.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) break;
      this.running++;
      const keys = new Set(batch.map((i) => i.key));
      for (const k of keys) this.busy.add(k);
      void this.runBatch(batch).finally(() => {
        for (const k of keys) this.busy.delete(k);
        this.running--;
        if (this.pending.length > 0) this.schedule();
        else if (this.running === 0) for (const f of this.idle.splice(0)) f();
      });
    }
  }

  /** The oldest queued operations whose resource is not in a running batch. */
  private takeBatch(): Item[] {
    const batch: Item[] = [];
    let write = 0;
    for (let read = 0; read < this.pending.length; read++) {
      const item = this.pending[read];
      if (batch.length < this.maxBatch && !this.busy.has(item.key)) batch.push(item);
      else this.pending[write++] = item;
    }
    this.pending.length = write;
    return batch;
  }

  private async runBatch(items: Item[]): Promise<void> {
    const started = performance.now();
    this.counters.batches++;
    this.counters.operations += items.length;
    if (items.length > this.counters.maxBatchSize) this.counters.maxBatchSize = items.length;
    let results: OpResult[];
    try {
      results = await this.execute(items.map((i) => i.op));
    } catch (err) {
      this.counters.failedBatches++;
      this.options.onBatch?.({ size: items.length, ms: performance.now() - started, failed: true });
      await this.recover(items, err);
      return;
    }
    this.options.onBatch?.({ size: items.length, ms: performance.now() - started, failed: false });
    for (let i = 0; i < items.length; i++) items[i].resolve(results[i]);
  }

  /** A failed batch: its operations again, one at a time; a failing single operation is retried
   * a few times when the failure is transient (deadlock, a duplicate written by another process). */
  private async recover(items: Item[], err: unknown): Promise<void> {
    if (items.length === 1) {
      const item = items[0];
      const code = (err as { code?: string }).code;
      if (item.attempts < 3 && code !== undefined && RETRIABLE.has(code)) {
        item.attempts++;
        this.counters.retriedOperations++;
        await this.runBatch([item]);
        return;
      }
      item.reject(err);
      return;
    }
    for (const item of items) {
      this.counters.retriedOperations++;
      await this.runBatch([item]);
    }
  }

  // ---- one batch -----------------------------------------------------------------------------

  private async execute(ops: ChargingOp[]): Promise<OpResult[]> {
    const t = performance.now();
    const client = await this.pool.connect();
    // The engine's statements have a fixed shape (arrays and JSON documents as parameters): they
    // are prepared once per connection, with generic plans.
    await prepareConnection(client);
    this.phase('connect', t);
    let broken = false;
    try {
      try {
        return await this.transaction(client, ops);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => { broken = true; });
        // A connection that lost its prepared statements (a pooler's DISCARD ALL) is replaced.
        if ((err as { code?: string }).code === '26000') {
          forgetPrepared(client);
          broken = true;
        }
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  private phase(name: keyof ChargingEngineStats['phases'], since: number): number {
    const now = performance.now();
    this.counters.phases[name] += now - since;
    return now;
  }

  private async transaction(client: PoolClient, ops: ChargingOp[]): Promise<OpResult[]> {
    const now = this.clock();
    let t = performance.now();
    const lines = await this.linesFor(client, ops);
    const keys = this.lockKeys(ops, lines, now);
    // System accounts are created outside the batch transaction (autocommit), so two batches
    // creating the same one can never wait on each other while holding balance locks.
    const lineCurrencies = new Set<string>();
    for (const line of lines.bySubscriber.values()) lineCurrencies.add(line.currency);
    await this.ensureSystemAccounts(client, lineCurrencies);
    t = this.phase('resolve', t);
    const state = await lockBatchState(client, keys); // BEGIN + lock in one round trip

    // A request whose sequence number the session has already seen is a retransmission (or arrives
    // out of order): its stored answer is read with a fresh snapshot, which also sees the answer
    // of a transaction this batch waited for.
    const missRefs: string[] = [];
    const missSeqs: number[] = [];
    for (const op of ops) {
      if (op.kind !== 'update' && op.kind !== 'release' && (op.kind !== 'create' || op.oneTimeEvent)) continue;
      const s = state.sessions.get(op.ref);
      if (s && op.sequenceNumber <= s.lastSequenceNumber && !state.priorAnswers.has(answerKey(op.ref, op.sequenceNumber))) {
        missRefs.push(op.ref);
        missSeqs.push(op.sequenceNumber);
      }
    }
    if (missRefs.length > 0) {
      for (const [k, v] of await loadAnswers(client, missRefs, missSeqs)) state.priorAnswers.set(k, v);
    }

    const subscribers: SubscriberInfo[] = [];
    for (const line of lines.bySubscriber.values()) {
      const lineState = state.states.get(line.subscriberId) ?? 'terminated';
      if (lineState === 'terminated') this.cache.dropSubscriber(line.subscriberId);
      subscribers.push({
        id: line.subscriberId, msisdn: line.msisdn, imsi: line.imsi, state: lineState, billingAccountId: line.billingAccountId,
        parentAccountId: line.parentAccountId, paymentType: line.paymentType, currency: line.currency, subscriptionId: line.subscriptionId,
        planId: line.planId,
      });
    }
    const tariffs = await this.tariffsFor(client, subscribers.map((s) => s.planId).filter((id): id is string => id !== null), now);
    const currencies = new Set<string>();
    for (const s of subscribers) currencies.add(s.currency);
    for (const w of state.wallets) currencies.add(w.currency);
    await this.ensureSystemAccounts(client, currencies);

    t = this.phase('lock', t);
    const out = decideBatch({
      now, ops, sessions: state.sessions, subscribers, buckets: state.buckets, wallets: state.wallets, tariffs,
      priorAnswers: state.priorAnswers, priorWalletEntries: state.priorWalletEntries, systemAccounts: this.systemAccounts, policy: this.policy,
    });
    const newSessions = new Set<string>();
    for (const s of out.sessions) if (!state.sessions.has(s.ref)) newSessions.add(s.ref);
    const walletKeys = ops.flatMap((op) => (op.kind === 'wallet' ? [op.idempotencyKey] : []));
    t = this.phase('decide', t);
    const written = await writeBatch(client, out, now, newSessions, walletKeys); // write + COMMIT in one round trip
    this.phase('commit', t);
    for (const s of out.sessions) if (newSessions.has(s.ref)) this.cache.rememberSession(s.ref, s.subscriberId);
    return out.results.map((r, i) => {
      // An applied operation learns its new entry's id here; so does a retry of it that landed in
      // the same batch (its decision saw the key before the entry existed).
      if (r.kind === 'wallet' && (r.status === 'applied' || (r.status === 'duplicate' && r.journalEntryId === null))) {
        const op = ops[i] as WalletOp;
        return { ...r, journalEntryId: written.entryIds.get(op.idempotencyKey) ?? null };
      }
      return r;
    });
  }

  /** The lines the operations concern: from the cache, the rest resolved in one statement. */
  private async linesFor(client: PoolClient, ops: ChargingOp[]): Promise<BatchLines> {
    const bySubscriber = new Map<string, LineInfo>();
    const byIdentity = new Map<string, string>();
    const byRef = new Map<string, string>();
    const walletByAccount = new Map<string, string>();
    const miss = { msisdns: [] as string[], imsis: [] as string[], subscriberIds: [] as string[], refs: [] as string[], accountIds: [] as string[] };
    const want = (subscriberId: string) => {
      if (bySubscriber.has(subscriberId)) return;
      const line = this.cache.line(subscriberId);
      if (line) bySubscriber.set(subscriberId, line);
      else if (!miss.subscriberIds.includes(subscriberId)) miss.subscriberIds.push(subscriberId);
    };
    for (const op of ops) {
      if (op.kind === 'create') {
        const key = `${op.subscriber.kind}:${op.subscriber.value}`;
        const sub = this.cache.identity(op.subscriber.kind, op.subscriber.value);
        if (sub) {
          byIdentity.set(key, sub);
          want(sub);
        } else (op.subscriber.kind === 'imsi' ? miss.imsis : miss.msisdns).push(op.subscriber.value);
      } else if (op.kind === 'wallet') {
        const w = this.cache.wallet(op.billingAccountId);
        if (w) walletByAccount.set(op.billingAccountId, w);
        else miss.accountIds.push(op.billingAccountId);
      } else {
        const sub = this.cache.sessionSubscriber(op.ref);
        if (sub) {
          byRef.set(op.ref, sub);
          want(sub);
        } else miss.refs.push(op.ref);
      }
    }
    if (miss.msisdns.length + miss.imsis.length + miss.subscriberIds.length + miss.refs.length + miss.accountIds.length > 0) {
      const epoch = this.cache.epoch;
      const resolved: Resolved = await resolveLines(client, miss);
      this.cache.store(resolved, epoch);
      for (const line of resolved.lines) {
        bySubscriber.set(line.subscriberId, line);
        byIdentity.set(`msisdn:${line.msisdn}`, line.subscriberId);
        if (line.imsi) byIdentity.set(`imsi:${line.imsi}`, line.subscriberId);
      }
      for (const [ref, sub] of resolved.sessions) byRef.set(ref, sub);
      for (const [acct, w] of resolved.wallets) walletByAccount.set(acct, w);
    }
    return { bySubscriber, byIdentity, byRef, walletByAccount };
  }

  private lockKeys(ops: ChargingOp[], lines: BatchLines, now: number): LockKeys {
    const refs = new Set<string>();
    const subscriberIds = new Set<string>();
    const bucketIds = new Set<string>();
    const walletIds = new Set<string>();
    const answerRefs: string[] = [];
    const answerSeqs: number[] = [];
    const walletKeys: string[] = [];
    const addLine = (subscriberId: string | undefined, services: Set<string>) => {
      const line = subscriberId ? lines.bySubscriber.get(subscriberId) : undefined;
      if (!line) return;
      subscriberIds.add(line.subscriberId);
      for (const b of line.buckets) if (b.validUntil > now && services.has(b.service)) bucketIds.add(b.id);
      if (line.walletId) walletIds.add(line.walletId);
    };
    const servicesOf = (op: ChargingRequestOp) => {
      const set = new Set<string>(['money']);
      for (const u of op.units) {
        const s = this.policy.ratingGroups[u.ratingGroup];
        if (s) set.add(s);
      }
      return set;
    };
    for (const op of ops) {
      switch (op.kind) {
        case 'create':
          refs.add(op.ref);
          // A one-time event leaves no session: its retransmission is found by its stored answer.
          // A session's retransmission is recognised by the session row (see `transaction`).
          if (op.oneTimeEvent) {
            answerRefs.push(op.ref);
            answerSeqs.push(op.sequenceNumber);
          }
          addLine(lines.byIdentity.get(`${op.subscriber.kind}:${op.subscriber.value}`), servicesOf(op));
          break;
        case 'update':
        case 'release':
          refs.add(op.ref);
          addLine(lines.byRef.get(op.ref), servicesOf(op));
          break;
        case 'expire':
          refs.add(op.ref);
          addLine(lines.byRef.get(op.ref), new Set());
          break;
        case 'wallet': {
          const w = lines.walletByAccount.get(op.billingAccountId);
          if (w) walletIds.add(w);
          walletKeys.push(op.idempotencyKey);
          break;
        }
      }
    }
    const byNumber = (a: string, b: string) => (a.length - b.length) || (a < b ? -1 : a > b ? 1 : 0);
    return {
      refs: [...refs].sort(), subscriberIds: [...subscriberIds], bucketIds: [...bucketIds].sort(byNumber), walletIds: [...walletIds].sort(byNumber),
      answerRefs, answerSeqs, walletKeys,
    };
  }

  private async tariffsFor(client: PoolClient, planIds: string[], now: number): Promise<Map<string, Tariff | null>> {
    const result = new Map<string, Tariff | null>();
    const missing: string[] = [];
    for (const id of planIds) {
      const hit = this.tariffs.get(id);
      if (hit && hit.until > now) result.set(id, hit.tariff);
      else if (!missing.includes(id)) missing.push(id);
    }
    if (missing.length > 0) {
      const res = await client.query({ name: 'charging_tariffs_v1', text: 'SELECT id, tariff FROM plans WHERE id = ANY($1::uuid[])', values: [missing] });
      for (const row of res.rows as { id: string; tariff: unknown }[]) {
        let tariff: Tariff | null = null;
        try {
          tariff = parseTariff(row.tariff);
        } catch {
          tariff = null; // an invalid tariff rates nothing: RATING_FAILED
        }
        this.tariffs.set(row.id, { tariff, until: now + this.tariffTtlMs });
        result.set(row.id, tariff);
      }
    }
    return result;
  }

  private async ensureSystemAccounts(client: PoolClient, currencies: Set<string>): Promise<void> {
    const codes: { code: string; kind: string; unit: string }[] = [];
    for (const unit of ['bytes', 'seconds', 'messages']) {
      const code = `allowance_usage:${unit}`;
      if (!this.systemAccounts.has(code)) codes.push({ code, kind: 'allowance_usage', unit });
    }
    for (const cur of currencies) {
      for (const kind of MONEY_COUNTER_KINDS) {
        const code = `${kind}:${cur}`;
        if (!this.systemAccounts.has(code)) codes.push({ code, kind, unit: cur });
      }
    }
    if (codes.length === 0) return;
    const ids = await ensureLedgerAccounts(client, codes);
    for (const [code, id] of ids) this.systemAccounts.set(code, id);
  }
}

/** Creates the ledger accounts that do not exist yet (idempotent) and returns every id by code. */
export async function ensureLedgerAccounts(
  client: { query: PoolClient['query'] }, accounts: { code: string; kind: string; unit: string }[],
): Promise<Map<string, string>> {
  await client.query(
    `INSERT INTO ledger_accounts (code, kind, unit)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1
     ON CONFLICT (code) DO NOTHING`,
    [accounts.map((a) => a.code), accounts.map((a) => a.kind), accounts.map((a) => a.unit)],
  );
  const res = await client.query('SELECT code, id::text AS id FROM ledger_accounts WHERE code = ANY($1::text[])', [accounts.map((a) => a.code)]);
  return new Map((res.rows as { code: string; id: string }[]).map((r) => [r.code, r.id]));
}

/** A stable ChargingDataRef for a create: a retransmitted create (same subscriber, NF, charging id,
 * timestamp and sequence number) maps to the same resource and gets the stored answer. */
export function deriveChargingDataRef(parts: readonly (string | number | null | undefined)[]): string {
  const text = parts.map((p) => (p === null || p === undefined ? '' : String(p))).join('\u0001');
  return crypto.hash('sha256', text, 'base64url').slice(0, 24);
}
