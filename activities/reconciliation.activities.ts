/** Thin Temporal adapters over domain/reconciliation. Long activities heartbeat while their SQL runs;
 * every one is idempotent (imports by content hash, runs by request key, chunks by (run, chunk)). */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Knex } from 'knex';
import { DomainError } from '../domain/shared/domain-error';
import { listPartners } from '../domain/reconciliation/partners';
import { createRun, finalizeRun, markRunFailed, matchChunk, stageRun } from '../domain/reconciliation/reconciliation-runs';
import { importWholesaleFileFromPath } from '../domain/reconciliation/wholesale-import';

export interface ReconciliationActivityDeps {
  db: Knex;
  /** Watched folder: `<inbox>/<partner code>/*.csv[.gz]`; files are moved to `<inbox>/<partner>/done/` once imported. */
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
  const inbox = deps.inboxDir ?? process.env.RECONCILIATION_INBOX_DIR ?? path.resolve(process.env.DATA_DIR ?? '.data', 'reconciliation-inbox');
  return {
    async reconciliationImportFile(input: { partnerCode: string; path: string; actor: string }) {
      return heartbeatWhile(async (beat) => {
        try {
          const r = await importWholesaleFileFromPath(db, {
            partnerCode: input.partnerCode,
            path: input.path,
            actor: input.actor,
            source: input.path.startsWith(inbox) ? 'folder' : 'path',
            onProgress: (p) => beat(p),
          });
          await moveToDone(input.path, inbox);
          return { importId: r.importId as string | null, records: r.records, rejected: r.rejected, duplicate: false };
        } catch (err) {
          // A file imported before (e.g. by an earlier attempt of this activity) is not an error here.
          if (err instanceof DomainError && err.code === 'DUPLICATE_FILE') {
            await moveToDone(input.path, inbox);
            return { importId: null, records: 0, rejected: 0, duplicate: true };
          }
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

    /** Partners to reconcile this month, with the files waiting in their inbox folders. */
    async reconciliationScheduledWork(): Promise<{ partnerCode: string; files: string[] }[]> {
      const partners = await listPartners(db);
      const out: { partnerCode: string; files: string[] }[] = [];
      for (const p of partners) {
        const dir = path.join(inbox, p.code);
        const names = await fsp.readdir(dir).catch(() => [] as string[]);
        const files = names.filter((n) => /\.csv(\.gz)?$/i.test(n)).sort().map((n) => path.join(dir, n));
        out.push({ partnerCode: p.code, files });
      }
      return out;
    },
  };
}

async function moveToDone(file: string, inbox: string): Promise<void> {
  if (!file.startsWith(inbox + path.sep)) return;
  const doneDir = path.join(path.dirname(file), 'done');
  await fsp.mkdir(doneDir, { recursive: true });
  await fsp.rename(file, path.join(doneDir, path.basename(file))).catch(() => undefined);
}

export type ReconciliationActivities = ReturnType<typeof createReconciliationActivities>;
