/** Thin Temporal adapters over domain/reconciliation. Long activities heartbeat while their SQL runs;
 * every one is idempotent (imports by content hash, runs by request key, chunks by (run, chunk)). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { DomainError } from '../domain/shared/domain-error';
import { listPartners } from '../domain/reconciliation/partners';
import { createRun, finalizeRun, markRunFailed, matchChunk, stageRun } from '../domain/reconciliation/reconciliation-runs';
import { importWholesaleFileFromPath } from '../domain/reconciliation/wholesale-import';
import { completeFiles, INBOX_PROCESSING } from '../domain/reconciliation/wholesale-inbox';
import {
  claimInboxFile,
  ensurePartnerInbox,
  importClaimedFile,
  observeInbox,
  partnerInboxDir,
  withPartnerInboxLock,
  type InboxImportOutcome,
} from '../domain/reconciliation/wholesale-inbox.store';
import { loadConfig } from '../platform/config';

export interface ReconciliationActivityDeps {
  db: Knex;
  /** Watched folder `<inbox>/<partner code>/` (domain/reconciliation/wholesale-inbox.ts); default RECONCILIATION_INBOX_DIR or `<DATA_DIR>/reconciliation-inbox`. */
  inboxDir?: string;
}

function heartbeatWhile<T>(work: (beat: (details?: unknown) => void) => Promise<T>): Promise<T> {
  let ctx: Context | null = null;
  try {
    ctx = Context.current();
  } catch {
    ctx = null; // called outside an activity (tests)
  }
  const beat = (d?: unknown) => ctx?.heartbeat(d);
  const timer = ctx ? setInterval(() => beat(), 5_000) : null;
  return work(beat).finally(() => {
    if (timer) clearInterval(timer);
  });
}

async function refusing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DomainError) {
      throw ApplicationFailure.create({ type: 'DomainRefusal', message: `${err.code}: ${err.message}`, nonRetryable: true, details: [err.code] });
    }
    throw err;
  }
}

export function createReconciliationActivities(deps: ReconciliationActivityDeps) {
  const { db } = deps;
  const inbox = path.resolve(deps.inboxDir ?? loadConfig().reconciliation.inboxDir);
  return {
    async reconciliationImportFile(input: { partnerCode: string; path: string; actor: string }) {
      const dir = partnerInboxDir(inbox, input.partnerCode);
      if (path.dirname(path.resolve(input.path)) === dir) {
        // A file of the partner's inbox: the watcher's code path, queued behind its lock.
        return heartbeatWhile(async () => {
          const r = await withPartnerInboxLock(db, input.partnerCode, 'wait', () => importFromInbox(db, dir, input.partnerCode, path.basename(input.path), input.actor));
          const out = r.locked ? r.value : null;
          if (!out) return { importId: null as string | null, records: 0, rejected: 0, duplicate: false }; // taken and imported by the watcher meanwhile
          if (out.kind === 'imported') return { importId: out.importId as string | null, records: out.records, rejected: out.rejected, duplicate: false };
          if (out.code === 'DUPLICATE_FILE') return { importId: null, records: 0, rejected: 0, duplicate: true };
          return refusing(() => Promise.reject(new DomainError(out.code, `${out.message} (moved to ${out.movedTo})`)));
        });
      }
      return heartbeatWhile(async (beat) => {
        try {
          const r = await importWholesaleFileFromPath(db, { partnerCode: input.partnerCode, path: input.path, actor: input.actor, source: 'path', onProgress: (p) => beat(p) });
          return { importId: r.importId as string | null, records: r.records, rejected: r.rejected, duplicate: false };
        } catch (err) {
          // A file imported before (e.g. by an earlier attempt of this activity) is not an error here.
          if (err instanceof DomainError && err.code === 'DUPLICATE_FILE') return { importId: null, records: 0, rejected: 0, duplicate: true };
          return refusing(() => Promise.reject(err));
        }
      });
    },

    async reconciliationCreateRun(input: { partnerCode: string; period: string; actor: string; requestKey: string; chunkCount?: number }) {
      const run = await refusing(() => createRun(db, input));
      return { id: run.id, version: run.version, chunkCount: run.chunkCount };
    },

    async reconciliationStage(input: { runId: string }) {
      await heartbeatWhile(() => refusing(() => stageRun(db, input.runId)));
    },

    async reconciliationMatchChunk(input: { runId: string; chunk: number }) {
      return heartbeatWhile(() => refusing(() => matchChunk(db, input.runId, input.chunk)));
    },

    async reconciliationFinalize(input: { runId: string }) {
      const run = await heartbeatWhile(() => refusing(() => finalizeRun(db, input.runId)));
      return { status: run.status, counts: run.summary?.counts ?? {} };
    },

    async reconciliationMarkFailed(input: { runId: string; error: string }) {
      await markRunFailed(db, input.runId, input.error);
    },

    /**
     * Partners to reconcile this month, with the complete files waiting in their inbox folders
     * (unchanged across two looks a second apart; usually none: the watcher takes files as they come).
     */
    async reconciliationScheduledWork(): Promise<{ partnerCode: string; files: string[] }[]> {
      const partners = await listPartners(db);
      const first = await Promise.all(partners.map((p) => observeInbox(partnerInboxDir(inbox, p.code))));
      if (first.some((f) => f.size > 0)) await new Promise((r) => setTimeout(r, 1_000));
      const out: { partnerCode: string; files: string[] }[] = [];
      for (const [i, p] of partners.entries()) {
        const dir = partnerInboxDir(inbox, p.code);
        const files = first[i].size > 0 ? completeFiles(first[i], await observeInbox(dir)).map((n) => path.join(dir, n)) : [];
        out.push({ partnerCode: p.code, files });
      }
      return out;
    },
  };
}

/** Holding the partner's inbox lock: the file from the inbox, or an interrupted attempt of it in processing/; null if it is gone. */
async function importFromInbox(db: Knex, dir: string, partnerCode: string, name: string, actor: string): Promise<InboxImportOutcome | null> {
  await ensurePartnerInbox(path.dirname(dir), partnerCode);
  if (existsSync(path.join(dir, INBOX_PROCESSING, name))) {
    return importClaimedFile(db, { dir, partnerCode, processingName: name, leftover: true, actor });
  }
  const claim = await claimInboxFile(dir, name);
  if (claim.kind === 'gone') return null;
  if (claim.kind === 'busy') throw new Error(`${name} is still open by its writer (${claim.reason})`); // retried
  return importClaimedFile(db, { dir, partnerCode, processingName: claim.processingName, fileName: name, actor });
}

export type ReconciliationActivities = ReturnType<typeof createReconciliationActivities>;
