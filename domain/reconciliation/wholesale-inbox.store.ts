/**
 * The watched folder's operations (layout and rules: `wholesale-inbox.ts`). A complete file is
 * claimed by an atomic rename into `processing/`, imported through the same code path as an
 * upload (`importWholesaleFile`: streamed, gzip accepted, line-numbered rejections, refusal of a
 * content hash imported before), then moved to `imported/`, or to `rejected/` with a
 * `.reason.txt`. One process at a time works a partner's folder (a session advisory lock), so
 * several workers can watch one shared folder, and a file found in `processing/` is always an
 * attempt that was interrupted.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { DomainError } from '../shared/domain-error';
import {
  INBOX_IMPORTED,
  INBOX_PROCESSING,
  INBOX_REJECTED,
  isInboxCandidate,
  rejectionReasonText,
  uniqueName,
  type FileObservation,
} from './wholesale-inbox';
import { DuplicateWholesaleFileError, importWholesaleFileFromPath } from './wholesale-import';

/** Advisory lock class of a partner's inbox (the run lock is 60100). */
const INBOX_LOCK_CLASS = 60101;

export const partnerInboxDir = (inboxDir: string, partnerCode: string) => path.join(inboxDir, partnerCode);

/** The partner's folder and its three subfolders. */
export async function ensurePartnerInbox(inboxDir: string, partnerCode: string): Promise<string> {
  const dir = partnerInboxDir(inboxDir, partnerCode);
  for (const sub of [INBOX_PROCESSING, INBOX_IMPORTED, INBOX_REJECTED]) await fsp.mkdir(path.join(dir, sub), { recursive: true });
  return dir;
}

/**
 * Run `fn` holding the partner's inbox lock: `try` gives up at once when another process holds
 * it (the polling loop), `wait` queues behind it (the monthly run's import, so a file the loop is
 * importing right now is committed before the run starts).
 */
export async function withPartnerInboxLock<T>(
  db: Knex,
  partnerCode: string,
  mode: 'try' | 'wait',
  fn: () => Promise<T>,
): Promise<{ locked: true; value: T } | { locked: false }> {
  const client = (await db.client.acquireConnection()) as PoolClient;
  try {
    if (mode === 'try') {
      const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok`, [INBOX_LOCK_CLASS, partnerCode]);
      if (!rows[0].ok) return { locked: false };
    } else {
      await client.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [INBOX_LOCK_CLASS, partnerCode]);
    }
    try {
      return { locked: true, value: await fn() };
    } finally {
      await client.query(`SELECT pg_advisory_unlock($1, hashtext($2))`, [INBOX_LOCK_CLASS, partnerCode]).catch(() => undefined);
    }
  } finally {
    db.client.releaseConnection(client);
  }
}

/** Size and modification time of the candidate files directly in `dir`. */
export async function observeInbox(dir: string): Promise<Map<string, FileObservation>> {
  const out = new Map<string, FileObservation>();
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const e of entries) {
    if (!e.isFile() || !isInboxCandidate(e.name)) continue;
    try {
      const st = await fsp.stat(path.join(dir, e.name));
      out.set(e.name, { size: st.size, mtimeMs: st.mtimeMs });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // gone between readdir and stat
    }
  }
  return out;
}

/** Files left in `processing/` (interrupted attempts). */
export async function interruptedFiles(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(path.join(dir, INBOX_PROCESSING), { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
}

async function namesIn(dir: string): Promise<Set<string>> {
  return new Set(await fsp.readdir(dir).catch(() => [] as string[]));
}

async function moveInto(file: string, destDir: string): Promise<string> {
  const dest = path.join(destDir, uniqueName(path.basename(file), await namesIn(destDir)));
  await fsp.rename(file, dest);
  return dest;
}

export type ClaimResult = { kind: 'claimed'; processingName: string } | { kind: 'gone' } | { kind: 'busy'; reason: string };

/**
 * Take `<dir>/<fileName>` by renaming it into `processing/`: atomic, so a file is taken once.
 * `gone`: someone else took it; `busy`: its writer still holds it open (Windows refuses the rename).
 */
export async function claimInboxFile(dir: string, fileName: string): Promise<ClaimResult> {
  const processing = path.join(dir, INBOX_PROCESSING);
  const processingName = uniqueName(fileName, await namesIn(processing));
  try {
    await fsp.rename(path.join(dir, fileName), path.join(processing, processingName));
    return { kind: 'claimed', processingName };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'gone' };
    if (code === 'EBUSY' || code === 'EPERM' || code === 'EACCES') return { kind: 'busy', reason: String(code) };
    throw err;
  }
}

export type InboxImportOutcome =
  | { kind: 'imported'; fileName: string; importId: string; records: number; rejected: number; movedTo: string; resumed: boolean }
  | { kind: 'rejected'; fileName: string; code: string; message: string; movedTo: string };

/**
 * Import a claimed file (`processing/<processingName>`) and move it out. A refusal (duplicate,
 * malformed file) moves it to `rejected/` with its reason; any other error leaves it in
 * `processing/` for a later attempt (nothing was committed: an import is one transaction).
 * `resumed`: the file is a leftover whose import had committed before the move was interrupted
 * (its content was imported from the folder under the same name) — it goes to `imported/`.
 */
export async function importClaimedFile(
  db: Knex,
  o: { dir: string; partnerCode: string; processingName: string; fileName?: string; leftover?: boolean; actor: string; signal?: AbortSignal },
): Promise<InboxImportOutcome> {
  const file = path.join(o.dir, INBOX_PROCESSING, o.processingName);
  const fileName = o.fileName ?? o.processingName;
  try {
    const r = await importWholesaleFileFromPath(db, { partnerCode: o.partnerCode, path: file, fileName, source: 'folder', actor: o.actor, signal: o.signal });
    const movedTo = await moveInto(file, path.join(o.dir, INBOX_IMPORTED));
    return { kind: 'imported', fileName, importId: r.importId, records: r.records, rejected: r.rejected, movedTo, resumed: false };
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    const e = err instanceof DuplicateWholesaleFileError ? err.existing : null;
    if (o.leftover && e && e.source === 'folder' && e.fileName === fileName) {
      const row = await db('wholesale_imports').where({ id: e.id }).first('records', 'rejected');
      const movedTo = await moveInto(file, path.join(o.dir, INBOX_IMPORTED));
      return { kind: 'imported', fileName, importId: e.id, records: Number(row?.records ?? 0), rejected: Number(row?.rejected ?? 0), movedTo, resumed: true };
    }
    const rejectedDir = path.join(o.dir, INBOX_REJECTED);
    const name = uniqueName(o.processingName, await namesIn(rejectedDir));
    // The reason first: a crash in between leaves the file in processing/ to be tried again.
    await fsp.writeFile(
      path.join(rejectedDir, `${name}.reason.txt`),
      rejectionReasonText({ fileName, partnerCode: o.partnerCode, code: err.code, message: err.message, at: new Date() }),
    );
    await fsp.rename(file, path.join(rejectedDir, name));
    return { kind: 'rejected', fileName, code: err.code, message: err.message, movedTo: path.join(rejectedDir, name) };
  }
}
