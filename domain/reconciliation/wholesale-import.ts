/**
 * Import of one MNO wholesale file: the parser's batches are streamed into PostgreSQL with
 * `COPY … FROM STDIN` (pg-copy-streams) — the file is never held in memory — in one
 * transaction:
 *   1. an import row (id from its sequence) and the import's partition of `wholesale_records`,
 *      sub-partitioned by matching chunk (leaves UNLOGGED unless `unlogged: false`);
 *   2. COPY of the records, each tagged with its chunk (`chunkOfKey`, the same rule the
 *      our-side staging uses in SQL); rejected rows go to a temporary file as they come and
 *      are COPYed into `wholesale_import_rejections` at the end (never dropped, never in memory);
 *   3. the content hash is known at the end: a file already imported for the partner (same
 *      SHA-256 of the decompressed content) rolls everything back with a clear refusal.
 * A fatal file error (missing columns, corrupt gzip, runaway quote) rolls back and is reported
 * with its line number.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { DomainError } from '../shared/domain-error';
import { getPartner } from './partners';
import {
  encodeCopyRow,
  escapeCopyText,
  parseWholesaleFile,
  WholesaleFileError,
  type WholesaleInput,
  type WholesaleRecord,
} from './wholesale-file.parser';

export const DEFAULT_CHUNK_COUNT = 16;

/**
 * Matching chunk of a subscriber key: its last four characters as a number modulo the chunk
 * count (0 when they are not all digits). Mirrored in SQL by `chunkSql`.
 */
export function chunkOfKey(key: string, chunkCount: number): number {
  const n = key.length;
  let v = 0;
  for (let i = Math.max(0, n - 4); i < n; i++) {
    const c = key.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    v = v * 10 + c;
  }
  return v % chunkCount;
}

/** SQL twin of `chunkOfKey` for a text expression (no regular expression: it runs once per staged row). */
export function chunkSql(expr: string, chunkCount: number): string {
  return `(CASE WHEN ${expr} <> '' AND translate(right(${expr}, 4), '0123456789', '') = '' THEN right(${expr}, 4)::int % ${chunkCount} ELSE 0 END)`;
}

/** The refusal of a file whose content was imported before; `existing` is that import (unknown when both ran at once). */
export class DuplicateWholesaleFileError extends DomainError {
  constructor(
    message: string,
    readonly existing: { id: string; fileName: string; source: string } | null,
  ) {
    super('DUPLICATE_FILE', message, ['input', 'file']);
  }
}

export interface WholesaleImportOptions {
  partnerCode: string;
  input: WholesaleInput;
  fileName: string;
  source: 'upload' | 'path' | 'folder';
  actor: string;
  chunkCount?: number;
  /** Leaf partitions UNLOGGED (default true): much faster COPY; the file is the durable source. */
  unlogged?: boolean;
  /** Called every ~100k lines (heartbeats). */
  onProgress?: (p: { lines: number; records: number; rejected: number }) => void;
}

export interface WholesaleImportResult {
  importId: string;
  partnerCode: string;
  fileName: string;
  lines: number;
  records: number;
  rejected: number;
  emptyLines: number;
  contentSha256: string;
  rawSha256: string;
  firstStartedAt: Date | null;
  lastStartedAt: Date | null;
}

async function acquire(db: Knex): Promise<PoolClient> {
  return (await db.client.acquireConnection()) as PoolClient;
}

export async function importWholesaleFile(db: Knex, o: WholesaleImportOptions): Promise<WholesaleImportResult> {
  const partner = await getPartner(db, o.partnerCode);
  const chunkCount = o.chunkCount ?? DEFAULT_CHUNK_COUNT;
  const byMsisdn = partner.identityKey === 'msisdn';
  const client = await acquire(db);
  const tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wholesale-rejections-'));
  const rejPath = path.join(tmpDir, 'rejections.copy');
  let inTx = false;
  try {
    await client.query('BEGIN');
    inTx = true;
    const { rows: idRows } = await client.query<{ id: string }>(`SELECT nextval('wholesale_imports_id_seq')::text AS id`);
    const importId = idRows[0].id;
    await client.query(
      `INSERT INTO wholesale_imports (id, partner_id, file_name, source, raw_sha256, content_sha256, chunk_count, lines, records, rejected, empty_lines, imported_by)
       VALUES ($1, $2, $3, $4, '', $5, $6, 0, 0, 0, 0, $7)`,
      [importId, partner.id, o.fileName, o.source, `pending:${importId}`, chunkCount, o.actor],
    );
    const parent = `wholesale_records_${importId}`;
    const unlogged = o.unlogged === false ? '' : 'UNLOGGED';
    await client.query(`CREATE TABLE ${parent} PARTITION OF wholesale_records FOR VALUES IN (${importId}) PARTITION BY LIST (chunk)`);
    for (let c = 0; c < chunkCount; c++) {
      await client.query(`CREATE ${unlogged} TABLE ${parent}_${c} PARTITION OF ${parent} FOR VALUES IN (${c})`);
    }

    const copy = client.query(
      copyFrom(
        `COPY ${parent} (import_id, chunk, line_number, record_id, imsi, msisdn, service, started_at, volume, zone, wholesale_amount_micros, currency) FROM STDIN`,
      ),
    );
    const copyDone = new Promise<void>((resolve, reject) => {
      copy.on('finish', resolve);
      copy.on('error', reject);
    });
    copyDone.catch(() => undefined);
    const rej = createWriteStream(rejPath);
    const prefixes = Array.from({ length: chunkCount }, (_, c) => `${importId}\t${c}\t`);
    const parse = parseWholesaleFile(o.input, partner.columnMapping ? { mapping: partner.columnMapping } : {});
    const chunkCounts = new Array<number>(chunkCount).fill(0);
    let minMs = Infinity;
    let maxMs = -Infinity;
    let nextProgress = 100_000;
    try {
      for await (const batch of parse.batches()) {
        let out = '';
        let rejOut = '';
        for (const item of batch) {
          if (item.kind === 'record') {
            const r = item as WholesaleRecord;
            const key = byMsisdn ? (r.msisdn ?? '') : r.imsi;
            const c = chunkOfKey(key, chunkCount);
            chunkCounts[c]++;
            out += prefixes[c] + encodeCopyRow(r);
            if (r.startedAtMs < minMs) minMs = r.startedAtMs;
            if (r.startedAtMs > maxMs) maxMs = r.startedAtMs;
          } else {
            rejOut += `${importId}\t${item.lineNumber}\t${escapeCopyText(item.reason)}\t${escapeCopyText(item.raw)}\n`;
          }
        }
        if (rejOut && !rej.write(rejOut)) await once(rej, 'drain');
        if (out && !copy.write(out)) await once(copy, 'drain');
        if (o.onProgress && parse.stats.lines >= nextProgress) {
          nextProgress = parse.stats.lines + 100_000;
          o.onProgress({ lines: parse.stats.lines, records: parse.stats.records, rejected: parse.stats.rejected });
        }
      }
    } catch (err) {
      copy.destroy(err as Error);
      rej.destroy();
      throw err;
    }
    copy.end();
    await copyDone;
    rej.end();
    await once(rej, 'close');
    const summary = parse.summary();
    if (summary.rejected > 0) {
      await pipeline(
        createReadStream(rejPath),
        client.query(copyFrom(`COPY wholesale_import_rejections (import_id, line_number, reason, raw) FROM STDIN`)),
      );
    }
    const { rows: dup } = await client.query<{ id: string; imported_at: Date; file_name: string; source: string }>(
      `SELECT id::text, imported_at, file_name, source FROM wholesale_imports WHERE partner_id = $1 AND content_sha256 = $2`,
      [partner.id, summary.contentSha256],
    );
    if (dup.length > 0) {
      throw new DuplicateWholesaleFileError(
        `this file was already imported for partner '${partner.code}' as import ${dup[0].id} ('${dup[0].file_name}', ${dup[0].imported_at.toISOString()}); ` +
          `content SHA-256 ${summary.contentSha256}`,
        { id: dup[0].id, fileName: dup[0].file_name, source: dup[0].source },
      );
    }
    await client.query(
      `UPDATE wholesale_imports SET raw_sha256 = $2, content_sha256 = $3, lines = $4, records = $5, rejected = $6, empty_lines = $7,
         first_started_at = $8, last_started_at = $9, chunk_counts = $10 WHERE id = $1`,
      [
        importId,
        summary.rawSha256,
        summary.contentSha256,
        summary.lines,
        summary.records,
        summary.rejected,
        summary.emptyLines,
        Number.isFinite(minMs) ? new Date(minMs) : null,
        Number.isFinite(maxMs) ? new Date(maxMs) : null,
        JSON.stringify(chunkCounts),
      ],
    );
    await client.query('COMMIT');
    inTx = false;
    return {
      importId,
      partnerCode: partner.code,
      fileName: o.fileName,
      lines: summary.lines,
      records: summary.records,
      rejected: summary.rejected,
      emptyLines: summary.emptyLines,
      contentSha256: summary.contentSha256,
      rawSha256: summary.rawSha256,
      firstStartedAt: Number.isFinite(minMs) ? new Date(minMs) : null,
      lastStartedAt: Number.isFinite(maxMs) ? new Date(maxMs) : null,
    };
  } catch (err) {
    if (inTx) await client.query('ROLLBACK').catch(() => undefined);
    if ((err as { code?: string }).code === '23505') {
      throw new DuplicateWholesaleFileError(`this file was already imported for partner '${partner.code}' (same content SHA-256)`, null);
    }
    if (err instanceof WholesaleFileError) {
      const line = err.details.lineNumber !== undefined ? ` (line ${err.details.lineNumber})` : '';
      throw new DomainError(`MALFORMED_FILE`, `${o.fileName}: ${err.message}${line}`, ['input', 'file']);
    }
    throw err;
  } finally {
    db.client.releaseConnection(client);
    await fsp.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Import a file from a server path (admin, watched folder); an abort stops reading and rolls the import back. */
export async function importWholesaleFileFromPath(
  db: Knex,
  o: Omit<WholesaleImportOptions, 'input' | 'fileName' | 'source'> & { path: string; source?: 'path' | 'folder'; fileName?: string; signal?: AbortSignal },
): Promise<WholesaleImportResult> {
  const { signal, ...rest } = o;
  const input = createReadStream(o.path, { highWaterMark: 256 * 1024, ...(signal ? { signal } : {}) });
  try {
    return await importWholesaleFile(db, { ...rest, input, fileName: o.fileName ?? path.basename(o.path), source: o.source ?? 'path' });
  } finally {
    input.destroy();
  }
}

export interface WholesaleImportRow {
  id: string;
  partnerCode: string;
  fileName: string;
  source: string;
  contentSha256: string;
  lines: number;
  records: number;
  rejected: number;
  firstStartedAt: Date | null;
  lastStartedAt: Date | null;
  importedBy: string;
  importedAt: Date;
}

export async function listImports(db: Knex, partnerCode?: string): Promise<WholesaleImportRow[]> {
  const q = db('wholesale_imports as i').join('reconciliation_partners as p', 'p.id', 'i.partner_id').select('i.*', 'p.code').orderBy('i.id', 'desc');
  if (partnerCode) q.where('p.code', partnerCode);
  return (await q).map((r: Record<string, unknown>) => ({
    id: String(r.id),
    partnerCode: r.code as string,
    fileName: r.file_name as string,
    source: r.source as string,
    contentSha256: r.content_sha256 as string,
    lines: Number(r.lines),
    records: Number(r.records),
    rejected: Number(r.rejected),
    firstStartedAt: (r.first_started_at as Date | null) ?? null,
    lastStartedAt: (r.last_started_at as Date | null) ?? null,
    importedBy: r.imported_by as string,
    importedAt: r.imported_at as Date,
  }));
}

export async function listRejections(db: Knex, importId: string, limit = 1000): Promise<{ lineNumber: number; reason: string; raw: string }[]> {
  const rows = await db('wholesale_import_rejections').where({ import_id: importId }).orderBy('line_number').limit(limit);
  return rows.map((r: Record<string, string>) => ({ lineNumber: Number(r.line_number), reason: r.reason, raw: r.raw }));
}
