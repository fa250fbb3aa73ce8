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
import { lockBatchState, loadAnswers, writeBatch, type LockKeys } from './charging.store';
import type {
  ChargingAnswer,
  ChargingOp,
  ChargingRequestOp,
  OpResult,
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
}

export interface ChargingEngineStats {
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
  stats(): ChargingEngineStats;
  /** Waits for queued work, then stops accepting more. Does not end the pool. */
  close(): Promise<void>;
}

interface Item {
  op: ChargingOp;
  key: string;
  resolve(r: OpResult): void;
  reject(e: unknown): void;
  attempts: number;
}

const MONEY_COUNTER_KINDS = ['revenue', 'adjustments', 'gateway_cash', 'receivables', 'discounts'] as const;
const RETRIABLE = new Set(['40P01', '40001', '23505', '55P03']);

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
  private readonly counters: ChargingEngineStats = { batches: 0, operations: 0, failedBatches: 0, retriedOperations: 0, maxBatchSize: 0, queued: 0, running: 0 };

  constructor(private readonly options: ChargingEngineOptions) {
    this.pool = options.pool;
    this.policy = { ...DEFAULT_POLICY, ...options.policy };
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 3;
    this.clock = options.clock ?? Date.now;
    this.tariffTtlMs = options.tariffTtlMs ?? 60_000;
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

  stats(): ChargingEngineStats {
    return { ...this.counters, queued: this.pending.length, running: this.running };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pending.length === 0 && this.running === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
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
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const results = await this.transaction(client, ops);
        await client.query('COMMIT');
        return results;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => { broken = true; });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  private async transaction(client: PoolClient, ops: ChargingOp[]): Promise<OpResult[]> {
    const now = this.clock();
    const keys = this.lockKeys(ops);
    const state = await lockBatchState(client, keys, now);

    // Retransmissions answered by a transaction we waited for are visible only to a new statement.
    const missRefs: string[] = [];
    const missSeqs: number[] = [];
    for (const op of ops) {
      if (op.kind !== 'update' && op.kind !== 'release') continue;
      const s = state.sessions.get(op.ref);
      if (s && op.sequenceNumber <= s.lastSequenceNumber && !state.priorAnswers.has(answerKey(op.ref, op.sequenceNumber))) {
        missRefs.push(op.ref);
        missSeqs.push(op.sequenceNumber);
      }
    }
    if (missRefs.length > 0) {
      for (const [k, v] of await loadAnswers(client, missRefs, missSeqs)) state.priorAnswers.set(k, v);
    }

    const tariffs = await this.tariffsFor(client, state.subscribers.map((s) => s.planId).filter((id): id is string => id !== null), now);
    const currencies = new Set<string>();
    for (const s of state.subscribers) currencies.add(s.currency);
    for (const w of state.wallets) currencies.add(w.currency);
    await this.ensureSystemAccounts(client, currencies);

    const out = decideBatch({
      now, ops, sessions: state.sessions, subscribers: state.subscribers, buckets: state.buckets, wallets: state.wallets, tariffs,
      priorAnswers: state.priorAnswers, priorWalletEntries: state.priorWalletEntries, systemAccounts: this.systemAccounts, policy: this.policy,
    });
    const newSessions = new Set<string>();
    for (const s of out.sessions) if (!state.sessions.has(s.ref)) newSessions.add(s.ref);
    const walletKeys = ops.flatMap((op) => (op.kind === 'wallet' ? [op.idempotencyKey] : []));
    const written = await writeBatch(client, out, now, newSessions, walletKeys);
    return out.results.map((r, i) => {
      if (r.kind === 'wallet' && r.status === 'applied') {
        const op = ops[i] as WalletOp;
        return { ...r, journalEntryId: written.entryIds.get(op.idempotencyKey) ?? null };
      }
      return r;
    });
  }

  private lockKeys(ops: ChargingOp[]): LockKeys {
    const refs = new Set<string>();
    const msisdns = new Set<string>();
    const imsis = new Set<string>();
    const accountIds = new Set<string>();
    const services = new Set<string>(['money']);
    const answerRefs: string[] = [];
    const answerSeqs: number[] = [];
    const walletKeys: string[] = [];
    for (const op of ops) {
      switch (op.kind) {
        case 'create':
          (op.subscriber.kind === 'imsi' ? imsis : msisdns).add(op.subscriber.value);
          refs.add(op.ref);
          answerRefs.push(op.ref);
          answerSeqs.push(op.sequenceNumber);
          for (const u of op.units) { const s = this.policy.ratingGroups[u.ratingGroup]; if (s) services.add(s); }
          break;
        case 'update':
        case 'release':
          refs.add(op.ref);
          answerRefs.push(op.ref);
          answerSeqs.push(op.sequenceNumber);
          for (const u of op.units) { const s = this.policy.ratingGroups[u.ratingGroup]; if (s) services.add(s); }
          break;
        case 'expire':
          refs.add(op.ref);
          break;
        case 'wallet':
          accountIds.add(op.billingAccountId);
          walletKeys.push(op.idempotencyKey);
          break;
      }
    }
    return {
      refs: [...refs], msisdns: [...msisdns], imsis: [...imsis], subscriberIds: [], accountIds: [...accountIds], services: [...services],
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
  return crypto.createHash('sha256').update(parts.map((p) => (p === null || p === undefined ? '' : String(p))).join('\u0001')).digest('base64url').slice(0, 24);
}
