/**
 * The reconciliation inbox loop the worker process runs beside the Temporal worker: every
 * `intervalMs` it polls each partner's folder `<inbox>/<partner code>/` (fs.readdir + stat: works
 * on every platform and on network or container volumes, where change notifications do not),
 * takes the files that are complete and imports them as an upload is imported. Layout and rules:
 * domain/reconciliation/wholesale-inbox.ts; operations: wholesale-inbox.store.ts.
 */
import type { Knex } from 'knex';
import type { Logger } from '../platform/logger';
import { listPartners } from '../domain/reconciliation/partners';
import { completeFiles, retryDelayMs, type FileObservation } from '../domain/reconciliation/wholesale-inbox';
import {
  claimInboxFile,
  ensurePartnerInbox,
  importClaimedFile,
  interruptedFiles,
  observeInbox,
  withPartnerInboxLock,
  type InboxImportOutcome,
} from '../domain/reconciliation/wholesale-inbox.store';

export const INBOX_ACTOR = 'reconciliation-inbox';

export interface InboxWatcherOptions {
  db: Knex;
  logger: Logger;
  inboxDir: string;
  /** Poll interval; a file written in place must stay unchanged this long (two polls). Default 5 s. */
  intervalMs?: number;
}

interface PartnerState {
  seen: Map<string, FileObservation>;
  /** processing/ files whose import failed for a passing reason: failures and next attempt time. */
  retry: Map<string, { failures: number; at: number }>;
}

export function startReconciliationInboxWatcher(o: InboxWatcherOptions): { stop(): Promise<void> } {
  const intervalMs = o.intervalMs ?? 5_000;
  const abort = new AbortController();
  const partners = new Map<string, PartnerState>();
  let lastError = '';

  const report = (partnerCode: string, r: InboxImportOutcome) => {
    if (r.kind === 'imported') {
      o.logger.info({ partnerCode, file: r.fileName, importId: r.importId, records: r.records, rejectedRows: r.rejected, movedTo: r.movedTo, resumed: r.resumed }, 'reconciliation inbox: file imported');
    } else {
      o.logger.warn({ partnerCode, file: r.fileName, code: r.code, reason: r.message, movedTo: r.movedTo }, 'reconciliation inbox: file refused');
    }
  };

  const attempt = async (partnerCode: string, dir: string, s: PartnerState, processingName: string, fileName: string | undefined, leftover: boolean) => {
    try {
      report(partnerCode, await importClaimedFile(o.db, { dir, partnerCode, processingName, fileName, leftover, actor: INBOX_ACTOR, signal: abort.signal }));
      s.retry.delete(processingName);
    } catch (err) {
      if (abort.signal.aborted) return; // stopping: the file stays in processing/ and is taken again at the next start
      const failures = (s.retry.get(processingName)?.failures ?? 0) + 1;
      s.retry.set(processingName, { failures, at: Date.now() + retryDelayMs(failures, intervalMs) });
      o.logger.error({ err, partnerCode, file: processingName, failures }, 'reconciliation inbox: import failed, will retry');
    }
  };

  const partnerTick = async (partnerCode: string) => {
    const s = partners.get(partnerCode) ?? { seen: new Map(), retry: new Map() };
    partners.set(partnerCode, s);
    const dir = await ensurePartnerInbox(o.inboxDir, partnerCode);
    // Holding the lock, whatever is in processing/ was interrupted (a crash, a stop, a failure).
    for (const name of await interruptedFiles(dir)) {
      if (abort.signal.aborted) return;
      if ((s.retry.get(name)?.at ?? 0) > Date.now()) continue;
      await attempt(partnerCode, dir, s, name, undefined, true);
    }
    const now = await observeInbox(dir);
    const ready = completeFiles(s.seen, now);
    s.seen = now;
    for (const name of ready) {
      if (abort.signal.aborted) return;
      const claim = await claimInboxFile(dir, name);
      if (claim.kind === 'busy') continue; // still open by its writer: next poll
      s.seen.delete(name);
      if (claim.kind === 'claimed') await attempt(partnerCode, dir, s, claim.processingName, name, false);
    }
  };

  const tick = async () => {
    for (const p of await listPartners(o.db)) {
      if (abort.signal.aborted) return;
      await withPartnerInboxLock(o.db, p.code, 'try', () => partnerTick(p.code));
    }
  };

  let running: Promise<void> = Promise.resolve();
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | undefined;
  const loop = async () => {
    while (!abort.signal.aborted) {
      running = tick().then(
        () => {
          lastError = '';
        },
        (err) => {
          // e.g. the folder cannot be created, or the database is away: said once, not every poll
          const m = String(err instanceof Error ? err.message : err);
          if (m !== lastError && !abort.signal.aborted) o.logger.error({ err, inboxDir: o.inboxDir }, 'reconciliation inbox');
          lastError = m;
        },
      );
      await running;
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, intervalMs);
      });
    }
  };
  void loop();
  o.logger.info({ inboxDir: o.inboxDir, intervalMs }, 'reconciliation inbox: watching');
  return {
    async stop() {
      abort.abort();
      clearTimeout(timer);
      wake?.();
      await running;
    },
  };
}
