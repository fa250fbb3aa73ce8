/**
 * The watched folder ("inbox") for MNO files — the pure rules; the folder operations are in
 * `wholesale-inbox.store.ts`, the polling loop in `activities/reconciliation-inbox.background.ts`.
 *
 *   <inbox>/<partner code>/              drop files here: `*.csv` or `*.csv.gz` (gzip is detected by content)
 *   <inbox>/<partner code>/processing/   a file being imported (claimed by an atomic rename)
 *   <inbox>/<partner code>/imported/     imported files (malformed rows are in the import, with line numbers)
 *   <inbox>/<partner code>/rejected/     refused files (same content imported before, malformed file)
 *                                        and `<file>.reason.txt` beside each
 *
 * A file is taken once it is complete: either written under another name (`*.part`, or any name
 * that does not end in .csv/.csv.gz, or a dotfile) and renamed when done, or written in place and
 * left unchanged (size and modification time) across two polls.
 */

export const INBOX_PROCESSING = 'processing';
export const INBOX_IMPORTED = 'imported';
export const INBOX_REJECTED = 'rejected';

/** Names the watcher takes; anything else (`*.part`, dotfiles, other extensions) is left alone. */
export function isInboxCandidate(name: string): boolean {
  return !name.startsWith('.') && /\.csv(\.gz)?$/i.test(name);
}

export interface FileObservation {
  size: number;
  mtimeMs: number;
}

/**
 * Files complete at this poll: present at the previous poll with the same size and modification
 * time. (A file renamed from `*.part` is complete already, but waiting one poll costs little and
 * keeps one rule for every writer.)
 */
export function completeFiles(previous: ReadonlyMap<string, FileObservation>, current: ReadonlyMap<string, FileObservation>): string[] {
  const out: string[] = [];
  for (const [name, now] of current) {
    const before = previous.get(name);
    if (before && before.size === now.size && before.mtimeMs === now.mtimeMs) out.push(name);
  }
  return out.sort();
}

/** `name` if free in `taken`, else `stem~2.csv.gz`, `stem~3.csv.gz`, … (the extension kept, so the file still opens). */
export function uniqueName(name: string, taken: ReadonlySet<string>): string {
  if (!taken.has(name)) return name;
  const m = /^(.+?)(\.csv(?:\.gz)?)$/i.exec(name);
  const stem = m ? m[1] : name;
  const ext = m ? m[2] : '';
  for (let i = 2; ; i++) {
    const candidate = `${stem}~${i}${ext}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** What `<file>.reason.txt` says about a refused file. */
export function rejectionReasonText(r: { fileName: string; partnerCode: string; code: string; message: string; at: Date }): string {
  return `${r.fileName} (partner ${r.partnerCode}) was refused at ${r.at.toISOString()}\n${r.code}: ${r.message}\n`;
}

/** Delay before retrying a file whose import failed for a reason that may pass (database away, …). */
export function retryDelayMs(failures: number, intervalMs: number): number {
  return Math.min(intervalMs * 2 ** Math.min(failures, 20), 15 * 60_000);
}
