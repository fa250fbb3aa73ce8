/**
 * MNO partners and their versioned terms: matching tolerances and the wholesale rate card.
 * A change of tolerances or rates is a new terms version effective from a date; a run uses the
 * version in force at the start of its period, so an old month is always settled on the terms
 * that applied to it.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { DomainError } from '../shared/domain-error';
import { parseWholesaleColumnMapping, WHOLESALE_SERVICES, type WholesaleColumnMapping, type WholesaleService } from './wholesale-file.parser';
import { DEFAULT_WHOLESALE_TOLERANCES, type WholesaleRateCard, type WholesaleTolerances } from './wholesale-file.generator';

export interface PartnerTerms {
  id: string;
  version: number;
  /** YYYY-MM-DD (UTC). */
  effectiveFrom: string;
  tolerances: WholesaleTolerances;
  rateCard: WholesaleRateCard;
  createdBy: string;
  createdAt: Date;
}

export interface Partner {
  id: string;
  code: string;
  name: string;
  currency: string;
  identityKey: 'imsi' | 'msisdn';
  columnMapping: WholesaleColumnMapping | null;
  createdAt: Date;
  updatedAt: Date;
}

const bigintLike = z.union([z.bigint(), z.string().regex(/^\d{1,18}$/), z.number().int().nonnegative()]).transform((v) => BigInt(v));

export const rateCardSchema = z
  .array(z.object({ service: z.enum(WHOLESALE_SERVICES), zone: z.string().min(1).max(64), microsPerUnit: bigintLike, unitSize: bigintLike }))
  .min(1, 'a rate card needs at least one rate')
  .superRefine((rows, ctx) => {
    const seen = new Set<string>();
    rows.forEach((r, i) => {
      const k = r.service + '/' + r.zone;
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i, 'zone'], message: `${k} is listed twice` });
      seen.add(k);
      if (r.unitSize <= 0n) ctx.addIssue({ code: 'custom', path: [i, 'unitSize'], message: 'must be > 0' });
    });
  });

export const tolerancesSchema = z.object({
  timeWindowMs: z.number().int().min(0).max(86_400_000).optional(),
  volumeRelativePpm: z.number().int().min(0).max(1_000_000).optional(),
  volumeAbsoluteData: bigintLike.optional(),
  volumeAbsoluteVoice: bigintLike.optional(),
  volumeAbsoluteSms: bigintLike.optional(),
  amountMicros: bigintLike.optional(),
});

export const partnerCreateSchema = z.object({
  code: z.string().regex(/^[a-z0-9][a-z0-9_-]{1,31}$/, 'lower-case letters, digits, - and _, 2–32 characters'),
  name: z.string().trim().min(1).max(200),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code'),
  identityKey: z.enum(['imsi', 'msisdn']).optional(),
  columnMapping: z.unknown().optional(),
  tolerances: tolerancesSchema.optional(),
  rateCard: rateCardSchema,
  effectiveFrom: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
});
export type PartnerCreateInput = z.input<typeof partnerCreateSchema>;

export const partnerUpdateSchema = z.object({
  code: z.string(),
  name: z.string().trim().min(1).max(200).optional(),
  identityKey: z.enum(['imsi', 'msisdn']).optional(),
  columnMapping: z.unknown().optional(),
  /** New terms (tolerances and/or rate card) from this date; unchanged parts carry over. */
  tolerances: tolerancesSchema.optional(),
  rateCard: rateCardSchema.optional(),
  effectiveFrom: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
});
export type PartnerUpdateInput = z.input<typeof partnerUpdateSchema>;

export type RateRow = { service: WholesaleService; zone: string; microsPerUnit: bigint; unitSize: bigint };

export function rateCardFromRows(rows: RateRow[]): WholesaleRateCard {
  const card: WholesaleRateCard = {};
  for (const r of rows) (card[r.service] ??= {})[r.zone] = { microsPerUnit: r.microsPerUnit, unitSize: r.unitSize };
  return card;
}

export function rateCardToRows(card: WholesaleRateCard): RateRow[] {
  const rows: RateRow[] = [];
  for (const service of WHOLESALE_SERVICES) {
    for (const [zone, rate] of Object.entries(card[service] ?? {})) rows.push({ service, zone, ...rate });
  }
  return rows;
}

function mergeTolerances(base: WholesaleTolerances, t: z.output<typeof tolerancesSchema> | undefined): WholesaleTolerances {
  return {
    timeWindowMs: t?.timeWindowMs ?? base.timeWindowMs,
    volumeRelativePpm: t?.volumeRelativePpm ?? base.volumeRelativePpm,
    volumeAbsolute: {
      data: t?.volumeAbsoluteData ?? base.volumeAbsolute.data ?? 0n,
      voice: t?.volumeAbsoluteVoice ?? base.volumeAbsolute.voice ?? 0n,
      sms: t?.volumeAbsoluteSms ?? base.volumeAbsolute.sms ?? 0n,
    },
    amountMicros: t?.amountMicros ?? base.amountMicros,
  };
}

function validMapping(m: unknown): WholesaleColumnMapping | null {
  if (m === undefined || m === null) return null;
  try {
    return parseWholesaleColumnMapping(m);
  } catch (err) {
    throw new DomainError('INVALID_MAPPING', (err as Error).message, ['input', 'columnMapping']);
  }
}

const toPartner = (r: Record<string, unknown>): Partner => ({
  id: String(r.id),
  code: r.code as string,
  name: r.name as string,
  currency: r.currency as string,
  identityKey: r.identity_key as 'imsi' | 'msisdn',
  columnMapping: (r.column_mapping as WholesaleColumnMapping | null) ?? null,
  createdAt: r.created_at as Date,
  updatedAt: r.updated_at as Date,
});

const today = () => new Date().toISOString().slice(0, 10);

async function insertTerms(
  trx: Knex,
  partnerId: string,
  version: number,
  effectiveFrom: string,
  tol: WholesaleTolerances,
  rows: RateRow[],
  actor: string,
): Promise<void> {
  const [t] = await trx('reconciliation_partner_terms')
    .insert({
      partner_id: partnerId,
      version,
      effective_from: effectiveFrom,
      time_window_ms: tol.timeWindowMs,
      volume_relative_ppm: tol.volumeRelativePpm,
      volume_abs_data: String(tol.volumeAbsolute.data ?? 0n),
      volume_abs_voice: String(tol.volumeAbsolute.voice ?? 0n),
      volume_abs_sms: String(tol.volumeAbsolute.sms ?? 0n),
      amount_tolerance_micros: String(tol.amountMicros),
      created_by: actor,
    })
    .returning('id');
  await trx('reconciliation_rates').insert(
    rows.map((r) => ({ terms_id: t.id, service: r.service, zone: r.zone, micros_per_unit: String(r.microsPerUnit), unit_size: String(r.unitSize) })),
  );
}

export async function createPartner(db: Knex, input: PartnerCreateInput, actor: string): Promise<Partner> {
  const v = partnerCreateSchema.parse(input);
  const mapping = validMapping(v.columnMapping);
  return db.transaction(async (trx) => {
    const existing = await trx('reconciliation_partners').where({ code: v.code }).first();
    if (existing) throw new DomainError('PARTNER_EXISTS', `a partner with code '${v.code}' already exists`, ['input', 'code']);
    const [row] = await trx('reconciliation_partners')
      .insert({ code: v.code, name: v.name, currency: v.currency, identity_key: v.identityKey ?? 'imsi', column_mapping: mapping ? JSON.stringify(mapping) : null })
      .returning('*');
    const tol = mergeTolerances(DEFAULT_WHOLESALE_TOLERANCES, v.tolerances);
    await insertTerms(trx, String(row.id), 1, v.effectiveFrom ?? '2000-01-01', tol, v.rateCard as RateRow[], actor);
    return toPartner(row);
  });
}

export async function updatePartner(db: Knex, input: PartnerUpdateInput, actor: string): Promise<Partner> {
  const v = partnerUpdateSchema.parse(input);
  return db.transaction(async (trx) => {
    const row = await trx('reconciliation_partners').where({ code: v.code }).forUpdate().first();
    if (!row) throw new DomainError('PARTNER_NOT_FOUND', `no partner with code '${v.code}'`, ['input', 'code']);
    const patch: Record<string, unknown> = { updated_at: trx.fn.now() };
    if (v.name !== undefined) patch.name = v.name;
    if (v.identityKey !== undefined) patch.identity_key = v.identityKey;
    if (v.columnMapping !== undefined) {
      const m = validMapping(v.columnMapping);
      patch.column_mapping = m ? JSON.stringify(m) : null;
    }
    const [updated] = await trx('reconciliation_partners').where({ id: row.id }).update(patch).returning('*');
    if (v.tolerances !== undefined || v.rateCard !== undefined) {
      const effectiveFrom = v.effectiveFrom ?? today();
      const current = await termsFor(trx, String(row.id), effectiveFrom);
      const last = await trx('reconciliation_partner_terms').where({ partner_id: row.id }).max('version as v').first();
      const same = await trx('reconciliation_partner_terms').where({ partner_id: row.id, effective_from: effectiveFrom }).first();
      if (same) throw new DomainError('TERMS_EXIST', `terms effective from ${effectiveFrom} already exist; choose another date`, ['input', 'effectiveFrom']);
      const tol = mergeTolerances(current?.tolerances ?? DEFAULT_WHOLESALE_TOLERANCES, v.tolerances);
      const rows = (v.rateCard as RateRow[] | undefined) ?? (current ? rateCardToRows(current.rateCard) : []);
      if (rows.length === 0) throw new DomainError('RATE_CARD_REQUIRED', 'a rate card is required', ['input', 'rateCard']);
      await insertTerms(trx, String(row.id), Number(last?.v ?? 0) + 1, effectiveFrom, tol, rows, actor);
    }
    return toPartner(updated);
  });
}

export async function findPartner(db: Knex, code: string): Promise<Partner | null> {
  const row = await db('reconciliation_partners').where({ code }).first();
  return row ? toPartner(row) : null;
}

export async function getPartner(db: Knex, code: string): Promise<Partner> {
  const p = await findPartner(db, code);
  if (!p) throw new DomainError('PARTNER_NOT_FOUND', `no partner with code '${code}'`, ['input', 'partnerCode']);
  return p;
}

export async function listPartners(db: Knex): Promise<Partner[]> {
  return (await db('reconciliation_partners').orderBy('code')).map(toPartner);
}

async function loadTerms(db: Knex, row: Record<string, unknown> | undefined): Promise<PartnerTerms | null> {
  if (!row) return null;
  const rates = await db('reconciliation_rates').where({ terms_id: row.id }).orderBy(['service', 'zone']);
  return {
    id: String(row.id),
    version: row.version as number,
    effectiveFrom: toDateString(row.effective_from),
    tolerances: {
      timeWindowMs: row.time_window_ms as number,
      volumeRelativePpm: row.volume_relative_ppm as number,
      volumeAbsolute: { data: BigInt(row.volume_abs_data as string), voice: BigInt(row.volume_abs_voice as string), sms: BigInt(row.volume_abs_sms as string) },
      amountMicros: BigInt(row.amount_tolerance_micros as string),
    },
    rateCard: rateCardFromRows(
      rates.map((r: Record<string, string>) => ({
        service: r.service as WholesaleService,
        zone: r.zone,
        microsPerUnit: BigInt(r.micros_per_unit),
        unitSize: BigInt(r.unit_size),
      })),
    ),
    createdBy: row.created_by as string,
    createdAt: row.created_at as Date,
  };
}

function toDateString(d: unknown): string {
  if (d instanceof Date) {
    const y = d.getFullYear(), m = d.getMonth() + 1, day = d.getDate();
    return `${y}-${String(m).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
  }
  return String(d).slice(0, 10);
}

/** The terms in force on `date` (YYYY-MM-DD): the latest version effective on or before it. */
export async function termsFor(db: Knex, partnerId: string, date: string): Promise<PartnerTerms | null> {
  const row = await db('reconciliation_partner_terms')
    .where({ partner_id: partnerId })
    .andWhere('effective_from', '<=', date)
    .orderBy('effective_from', 'desc')
    .first();
  return loadTerms(db, row);
}

export async function termsById(db: Knex, termsId: string): Promise<PartnerTerms> {
  const t = await loadTerms(db, await db('reconciliation_partner_terms').where({ id: termsId }).first());
  if (!t) throw new Error(`terms ${termsId} not found`);
  return t;
}

export async function listTerms(db: Knex, partnerId: string): Promise<PartnerTerms[]> {
  const rows = await db('reconciliation_partner_terms').where({ partner_id: partnerId }).orderBy('version', 'desc');
  return Promise.all(rows.map((r: Record<string, unknown>) => loadTerms(db, r) as Promise<PartnerTerms>));
}
