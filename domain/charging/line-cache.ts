/**
 * What the charging engine remembers between batches: per line the ids it must lock (account,
 * parent account, subscription, plan, buckets, wallet), which line an IMSI/MSISDN or a charging
 * data resource belongs to, and each account's wallet id. Never balances, holds or the line's
 * state: those are read under lock in every batch, so a stale entry can never let a charge pass a
 * limit — at worst a new bucket is used a moment late.
 *
 * Invalidation: database triggers notify channel `charging_cache` ('account:<id>',
 * 'subscriber:<id>', 'all') when anything cached changes; a dedicated connection LISTENs. The
 * cache is used only while that connection is up (it is emptied whenever it drops, since
 * notifications may have been missed), and a lookup that raced a notification is not stored
 * (`epoch`).
 */
import { Client, type Pool } from 'pg';
import type { LineInfo, Resolved } from './charging.store';

const MAX_LINES = 2_000_000;
const MAX_SESSIONS = 2_000_000;

export class LineCache {
  private readonly lines = new Map<string, LineInfo>();
  private readonly identities = new Map<string, string>();
  private readonly byAccount = new Map<string, Set<string>>();
  private readonly sessions = new Map<string, string>();
  private readonly wallets = new Map<string, string>();
  /** Bumped by every invalidation: a lookup started before it must not be stored. */
  epoch = 0;
  live = false;

  identity(kind: 'imsi' | 'msisdn', value: string): string | undefined {
    return this.live ? this.identities.get(`${kind === 'imsi' ? 'i' : 'm'}:${value}`) : undefined;
  }
  line(subscriberId: string): LineInfo | undefined {
    return this.live ? this.lines.get(subscriberId) : undefined;
  }
  sessionSubscriber(ref: string): string | undefined {
    return this.live ? this.sessions.get(ref) : undefined;
  }
  wallet(accountId: string): string | undefined {
    return this.live ? this.wallets.get(accountId) : undefined;
  }

  /** Remembers a new session's line (immutable: a session never changes subscriber). */
  rememberSession(ref: string, subscriberId: string): void {
    if (!this.live) return;
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.clear();
    this.sessions.set(ref, subscriberId);
  }

  store(resolved: Resolved, epochAtStart: number): void {
    if (!this.live || this.epoch !== epochAtStart) return;
    if (this.lines.size + resolved.lines.length > MAX_LINES) this.clear();
    for (const line of resolved.lines) {
      this.dropSubscriber(line.subscriberId);
      this.lines.set(line.subscriberId, line);
      this.identities.set(`m:${line.msisdn}`, line.subscriberId);
      if (line.imsi) this.identities.set(`i:${line.imsi}`, line.subscriberId);
      for (const acct of [line.billingAccountId, line.parentAccountId]) {
        if (!acct) continue;
        let set = this.byAccount.get(acct);
        if (!set) this.byAccount.set(acct, (set = new Set()));
        set.add(line.subscriberId);
      }
      if (line.walletId) this.wallets.set(line.billingAccountId, line.walletId);
    }
    for (const [ref, sub] of resolved.sessions) this.sessions.set(ref, sub);
    for (const [acct, wallet] of resolved.wallets) this.wallets.set(acct, wallet);
  }

  invalidate(payload: string): void {
    this.epoch++;
    if (payload === 'all') return this.clear();
    const colon = payload.indexOf(':');
    const kind = payload.slice(0, colon);
    const id = payload.slice(colon + 1);
    if (kind === 'subscriber') this.dropSubscriber(id);
    else if (kind === 'account') {
      for (const sub of this.byAccount.get(id) ?? []) this.dropSubscriber(sub);
      this.byAccount.delete(id);
      this.wallets.delete(id);
    } else this.clear();
  }

  dropSubscriber(id: string): void {
    const line = this.lines.get(id);
    if (!line) return;
    this.lines.delete(id);
    if (this.identities.get(`m:${line.msisdn}`) === id) this.identities.delete(`m:${line.msisdn}`);
    if (line.imsi && this.identities.get(`i:${line.imsi}`) === id) this.identities.delete(`i:${line.imsi}`);
  }

  clear(): void {
    this.epoch++;
    this.lines.clear();
    this.identities.clear();
    this.byAccount.clear();
    this.sessions.clear();
    this.wallets.clear();
  }

  get size(): number {
    return this.lines.size;
  }
}

/** Keeps a LISTEN connection on `charging_cache`; the cache is live only while it is connected. */
export function listenForInvalidations(pool: Pool, cache: LineCache, onError?: (err: unknown) => void): { close(): Promise<void> } {
  let client: Client | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  const down = (err?: unknown) => {
    cache.live = false;
    cache.clear();
    if (err) onError?.(err);
    const c = client;
    client = null;
    c?.end().catch(() => undefined);
    if (!closed && !timer) {
      timer = setTimeout(() => { timer = null; void up(); }, 1_000);
      timer.unref();
    }
  };
  const up = async () => {
    if (closed) return;
    const c = new Client({ ...(pool as unknown as { options: object }).options, application_name: 'mvno-bss-charging-cache' });
    client = c;
    c.on('error', down);
    c.on('end', () => { if (client === c) down(); });
    c.on('notification', (n) => { if (n.channel === 'charging_cache') cache.invalidate(n.payload ?? 'all'); });
    try {
      await c.connect();
      await c.query('LISTEN charging_cache');
      if (closed || client !== c) return;
      cache.clear();
      cache.live = true;
    } catch (err) {
      if (client === c) down(err);
    }
  };
  void up();
  return {
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      cache.live = false;
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
