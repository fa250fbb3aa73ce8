/** SQL of the SIM and number inventory. Allocation takes the first free row with
 * `FOR UPDATE SKIP LOCKED`, so concurrent orders never wait on each other and never get the same SIM
 * or number; a chosen SIM or number is locked `FOR UPDATE` and checked, so of two orders racing for
 * it one wins and the other gets SIM_TAKEN / MSISDN_TAKEN. */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { parse } from 'csv-parse/sync';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError } from '../shared/domain-error';
import { MSISDN_QUARANTINE_DAYS, SECRET_KEY_COLUMNS, validateSimRow, withLuhn, type MsisdnState, type RejectedRow, type SimForm, type SimImportRow, type SimState } from './inventory';

export interface Sim {
  id: string;
  iccid: string;
  imsi: string;
  form: SimForm;
  state: SimState;
  batchRef: string | null;
  eid: string | null;
  reservedFor: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface SimRow {
  id: string; iccid: string; imsi: string; form: SimForm; state: SimState; batch_ref: string | null; eid: string | null;
  reserved_for: string | null; created_at: Date; updated_at: Date;
}

/** PIN, PUK and the key reference stay in the database: they are not part of the view. */
const toSim = (r: SimRow): Sim => ({
  id: r.id, iccid: r.iccid, imsi: r.imsi, form: r.form, state: r.state, batchRef: r.batch_ref, eid: r.eid,
  reservedFor: r.reserved_for, createdAt: r.created_at, updatedAt: r.updated_at,
});

export interface SimImportReport {
  batchRef: string;
  form: SimForm;
  received: number;
  imported: number;
  rejected: RejectedRow[];
}

/** Imports a CSV batch (header `iccid,imsi,pin1,puk1,key_reference`). Valid rows are inserted, the
 * others are reported with every reason; a file with a secret-key column is refused whole. Importing
 * the same batch reference again is refused (BATCH_EXISTS). */
export async function importSimBatch(db: Knex, cmd: { csv: string; batchRef: string; form: SimForm; actor: string }): Promise<SimImportReport> {
  let records: Record<string, string>[];
  try {
    records = parse(cmd.csv, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, relax_column_count: true, bom: true });
  } catch (err) {
    throw new DomainError('CSV_INVALID', `the file is not valid CSV: ${(err as Error).message.split('\n')[0]}`, ['input', 'csv']);
  }
  const header = records.length ? Object.keys(records[0]) : (cmd.csv.split(/\r?\n/)[0] ?? '').split(',').map((c) => c.trim().toLowerCase());
  const secret = header.filter((h) => SECRET_KEY_COLUMNS.includes(h));
  if (secret.length) {
    // The values are never echoed: only the column names.
    throw new DomainError('SECRET_KEY_IN_FILE', `the file carries secret key columns (${secret.join(', ')}); import key references only`, ['input', 'csv']);
  }
  for (const col of ['iccid', 'imsi']) if (!header.includes(col)) throw new DomainError('CSV_COLUMN_MISSING', `the header has no ${col} column`, ['input', 'csv']);
  if (!header.includes('key_reference') && !header.includes('key_ref')) throw new DomainError('CSV_COLUMN_MISSING', 'the header has no key_reference column', ['input', 'csv']);

  const rejected: RejectedRow[] = [];
  const valid: { line: number; row: SimImportRow }[] = [];
  const seenIccid = new Map<string, number>();
  const seenImsi = new Map<string, number>();
  records.forEach((rec, i) => {
    const line = i + 2;
    const v = validateSimRow(rec);
    if (!v.ok) {
      rejected.push({ line, iccid: rec.iccid || null, reasons: v.reasons });
      return;
    }
    const dup = seenIccid.get(v.row.iccid) ?? seenImsi.get(v.row.imsi);
    if (dup !== undefined) {
      rejected.push({ line, iccid: v.row.iccid, reasons: [{ code: 'DUPLICATE_IN_FILE', message: `same ICCID or IMSI as line ${dup}` }] });
      return;
    }
    seenIccid.set(v.row.iccid, line);
    seenImsi.set(v.row.imsi, line);
    valid.push({ line, row: v.row });
  });

  return db.transaction(async (trx) => {
    const exists = await trx('sim_import_batches').where({ batch_ref: cmd.batchRef }).first();
    if (exists) throw new DomainError('BATCH_EXISTS', 'a batch with this reference was imported already', ['input', 'batchRef']);
    let imported = 0;
    for (let i = 0; i < valid.length; i += 1000) {
      const chunk = valid.slice(i, i + 1000);
      const inserted: { iccid: string }[] = await trx('sims')
        .insert(chunk.map(({ row }) => ({
          iccid: row.iccid, imsi: row.imsi, form: cmd.form, state: 'available', batch_ref: cmd.batchRef, pin: row.pin1, puk: row.puk1, key_reference: row.keyReference,
        })))
        .onConflict()
        .ignore()
        .returning('iccid');
      imported += inserted.length;
      const got = new Set(inserted.map((r) => r.iccid));
      for (const { line, row } of chunk) {
        if (!got.has(row.iccid)) rejected.push({ line, iccid: row.iccid, reasons: [{ code: 'ALREADY_IN_INVENTORY', message: 'a SIM with this ICCID or IMSI is already in the inventory' }] });
      }
    }
    rejected.sort((a, b) => a.line - b.line);
    await trx('sim_import_batches').insert({ batch_ref: cmd.batchRef, form: cmd.form, imported, rejected: JSON.stringify(rejected), actor: cmd.actor });
    return { batchRef: cmd.batchRef, form: cmd.form, received: records.length, imported, rejected };
  });
}

/** Reserves a SIM for an order: the one chosen (checked under a row lock) or the first available of
 * a form (skipping rows other orders hold). Idempotent per holder; `fresh` when the caller knows the
 * holder holds nothing yet (one look less). */
export async function reserveSim(trx: Knex.Transaction, holder: string, choice: { iccid?: string; form?: SimForm }, opts: { fresh?: boolean } = {}): Promise<Sim> {
  if (choice.iccid) {
    const sim: SimRow | undefined = await trx('sims').where({ iccid: choice.iccid }).forUpdate().first();
    if (!sim) throw new DomainError('SIM_NOT_FOUND', 'no SIM has this ICCID', ['input', 'iccid']);
    if (choice.form && sim.form !== choice.form) throw new DomainError('SIM_FORM_MISMATCH', `this SIM is ${sim.form === 'esim' ? 'an eSIM' : 'a physical SIM'}`, ['input', 'iccid']);
    if (!(sim.state === 'available' || (sim.state === 'reserved' && sim.reserved_for === holder))) {
      throw new DomainError('SIM_TAKEN', 'this SIM is not available', ['input', 'iccid']);
    }
    const [row] = await trx('sims').where({ id: sim.id }).update({ state: 'reserved', reserved_for: holder, updated_at: trx.fn.now() }).returning('*');
    return toSim(row);
  }
  const form = choice.form ?? 'physical';
  const mine: SimRow | undefined = opts.fresh ? undefined : await trx('sims').where({ reserved_for: holder, state: 'reserved', form }).first();
  if (mine) return toSim(mine);
  const { rows } = await trx.raw<{ rows: SimRow[] }>(
    `UPDATE sims SET state = 'reserved', reserved_for = ?, updated_at = now()
      WHERE id = (SELECT id FROM sims WHERE state = 'available' AND form = ? ORDER BY iccid LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    [holder, form],
  );
  if (!rows[0]) throw new DomainError('SIM_UNAVAILABLE', `no ${form === 'esim' ? 'eSIM profile' : 'SIM'} is available in the inventory`, ['input', 'simType']);
  return toSim(rows[0]);
}

/** Reserves a number: the one chosen, or the first free one (available, or out of quarantine).
 * Idempotent per holder; `fresh` as for reserveSim. */
export async function reserveMsisdn(trx: Knex.Transaction, holder: string, msisdn?: string, opts: { fresh?: boolean } = {}): Promise<{ msisdn: string; pooled: boolean }> {
  if (msisdn) {
    const pooled = await trx('msisdns').where({ msisdn }).forUpdate().first();
    // Ported-in numbers are not in the pool; the live-MSISDN unique index guards them.
    if (!pooled) return { msisdn, pooled: false };
    const free = pooled.state === 'available' || (pooled.state === 'quarantined' && new Date(pooled.quarantined_until) <= new Date());
    if (!(free || (pooled.state === 'reserved' && pooled.reserved_for === holder))) {
      throw new DomainError('MSISDN_TAKEN', 'this number is not available', ['input', 'msisdn']);
    }
    await trx('msisdns').where({ msisdn }).update({ state: 'reserved', reserved_for: holder, quarantined_until: null, updated_at: trx.fn.now() });
    return { msisdn, pooled: true };
  }
  const mine = opts.fresh ? undefined : await trx('msisdns').where({ reserved_for: holder, state: 'reserved' }).first();
  if (mine) return { msisdn: mine.msisdn, pooled: true };
  const { rows } = await trx.raw<{ rows: { msisdn: string }[] }>(
    `UPDATE msisdns SET state = 'reserved', reserved_for = ?, quarantined_until = NULL, updated_at = now()
      WHERE msisdn = (SELECT msisdn FROM msisdns
                       WHERE state = 'available' OR (state = 'quarantined' AND quarantined_until <= now())
                       ORDER BY msisdn LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING msisdn`,
    [holder],
  );
  if (!rows[0]) throw new DomainError('MSISDN_UNAVAILABLE', 'no number is free in the pool', ['input', 'msisdn']);
  return { msisdn: rows[0].msisdn, pooled: true };
}

/** Number state follows the line: assigned when active, back to the pool when an order is given up,
 * quarantined when a line that was live is terminated. */
export async function setMsisdnState(trx: Knex.Transaction, msisdn: string, state: MsisdnState, holder: string | null, at: Date): Promise<void> {
  await trx('msisdns').where({ msisdn }).update({
    state,
    reserved_for: state === 'reserved' || state === 'assigned' ? holder : null,
    quarantined_until: state === 'quarantined' ? trx.raw(`?::timestamptz + interval '${MSISDN_QUARANTINE_DAYS} days'`, [at]) : null,
    updated_at: at,
  });
}

export async function setSimState(trx: Knex.Transaction, simId: string, state: SimState, holder: string | null, at: Date, extra: { eid?: string } = {}): Promise<void> {
  await trx('sims').where({ id: simId }).update({ state, reserved_for: state === 'reserved' ? holder : null, updated_at: at, ...(extra.eid ? { eid: extra.eid } : {}) });
}

export async function findSimByIccid(db: Knex, iccid: string): Promise<Sim | undefined> {
  const r = await db('sims').where({ iccid }).first();
  return r ? toSim(r) : undefined;
}

export async function findSimById(db: Knex, id: string): Promise<Sim | undefined> {
  const r = await db('sims').where({ id }).first();
  return r ? toSim(r) : undefined;
}

export async function listSims(db: Knex, args: PageArgs, filter: { state?: SimState; form?: SimForm; batchRef?: string } = {}): Promise<Page<Sim>> {
  const q = db('sims').select('sims.id', 'sims.iccid', 'sims.imsi', 'sims.form', 'sims.state', 'sims.batch_ref', 'sims.eid', 'sims.reserved_for', 'sims.created_at', 'sims.updated_at');
  if (filter.state) q.where('sims.state', filter.state);
  if (filter.form) q.where('sims.form', filter.form);
  if (filter.batchRef) q.where('sims.batch_ref', filter.batchRef);
  const page = await keysetPage<SimRow>(db, q, args, 'sims');
  return { ...page, items: page.items.map(toSim) };
}

export interface MsisdnView {
  msisdn: string;
  state: MsisdnState;
  quarantinedUntil: Date | null;
}

/** Numbers in order, `after` a number (keyset on the number itself). */
export async function listMsisdns(db: Knex, args: { first?: number | null; after?: string | null }, filter: { state?: MsisdnState } = {}): Promise<{ items: MsisdnView[]; hasNextPage: boolean }> {
  const first = Math.min(Math.max(args.first ?? 20, 1), 100);
  const q = db('msisdns').orderBy('msisdn').limit(first + 1);
  if (filter.state) q.where({ state: filter.state });
  if (args.after) q.where('msisdn', '>', args.after);
  const rows = await q;
  return {
    items: rows.slice(0, first).map((r: { msisdn: string; state: MsisdnState; quarantined_until: Date | null }) => ({ msisdn: r.msisdn, state: r.state, quarantinedUntil: r.quarantined_until })),
    hasNextPage: rows.length > first,
  };
}

/** Adds numbers to the pool (admin, demo, tests). Existing numbers are left as they are. */
export async function addMsisdns(db: Knex, numbers: readonly string[]): Promise<number> {
  if (!numbers.length) return 0;
  const rows = await db('msisdns').insert(numbers.map((msisdn) => ({ msisdn }))).onConflict('msisdn').ignore().returning('msisdn');
  return rows.length;
}

/** Test and demo helper: n eSIM profiles (ICCID with check digit, IMSI) put straight into inventory. */
export async function seedEsimInventory(db: Knex, n: number, prefix = '8988'): Promise<string[]> {
  const rows = Array.from({ length: n }, () => {
    const serial = crypto.randomInt(0, 1e9).toString().padStart(9, '0') + crypto.randomInt(0, 1e6).toString().padStart(6, '0');
    return { iccid: withLuhn(`${prefix}${serial}`), imsi: `99999${serial.slice(0, 10)}`, form: 'esim', state: 'available', key_reference: `smdp:${serial}`, batch_ref: 'seed' };
  });
  const inserted = await db('sims').insert(rows).onConflict().ignore().returning('iccid');
  return inserted.map((r: { iccid: string }) => r.iccid);
}
