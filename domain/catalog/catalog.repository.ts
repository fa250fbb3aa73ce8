import type { Knex } from 'knex';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError, PG_UNIQUE_VIOLATION, pgErrorCode } from '../shared/domain-error';
import type { Plan, PlanAllowance, PlanCreateInput } from './plan';

interface PlanRow {
  id: string; code: string; name: string; payment_type: Plan['paymentType']; category: Plan['category']; currency: string;
  recurring_fee_minor: string; billing_period_unit: Plan['billingPeriodUnit']; billing_period_count: number; tariff: unknown;
  status: Plan['status']; available_from: Date | null; available_until: Date | null; created_at: Date;
}
interface AllowanceRow { plan_id: string; service: PlanAllowance['service']; units: string; shared: boolean; rollover: boolean; priority: number }

const toAllowance = (r: AllowanceRow): PlanAllowance => ({
  service: r.service, units: BigInt(r.units), shared: r.shared, rollover: r.rollover, priority: r.priority,
});
const toPlan = (r: PlanRow, allowances: AllowanceRow[]): Plan => ({
  id: r.id, code: r.code, name: r.name, paymentType: r.payment_type, category: r.category, currency: r.currency.trim(),
  recurringFeeMinor: BigInt(r.recurring_fee_minor), billingPeriodUnit: r.billing_period_unit,
  billingPeriodCount: r.billing_period_count, tariff: r.tariff, status: r.status, availableFrom: r.available_from,
  availableUntil: r.available_until, createdAt: r.created_at,
  allowances: allowances.filter((a) => a.plan_id === r.id).map(toAllowance),
});

async function withAllowances(db: Knex, rows: PlanRow[]): Promise<Plan[]> {
  if (rows.length === 0) return [];
  const allowances: AllowanceRow[] = await db('plan_allowances').whereIn('plan_id', rows.map((r) => r.id)).orderBy(['plan_id', 'priority']);
  return rows.map((r) => toPlan(r, allowances));
}

export async function createPlan(db: Knex, input: PlanCreateInput): Promise<Plan> {
  try {
    return await db.transaction(async (trx) => {
      const [row] = await trx('plans')
        .insert({
          code: input.code, name: input.name, payment_type: input.paymentType, category: input.category,
          currency: input.currency, recurring_fee_minor: input.recurringFeeMinor.toString(),
          billing_period_unit: input.billingPeriodUnit, billing_period_count: input.billingPeriodCount,
          tariff: JSON.stringify(input.tariff), available_from: input.availableFrom ?? null, available_until: input.availableUntil ?? null,
        })
        .returning('*');
      if (input.allowances.length > 0) {
        await trx('plan_allowances').insert(
          input.allowances.map((a) => ({ plan_id: row.id, service: a.service, units: a.units.toString(), shared: a.shared, rollover: a.rollover, priority: a.priority })),
        );
      }
      const [plan] = await withAllowances(trx, [row]);
      return plan;
    });
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION) throw new DomainError('TAKEN', 'another plan has this code', ['input', 'code']);
    throw err;
  }
}

export async function findPlanByCode(db: Knex, code: string): Promise<Plan | undefined> {
  const row = await db('plans').where({ code }).first();
  return row ? (await withAllowances(db, [row]))[0] : undefined;
}

export async function findPlansByIds(db: Knex, ids: readonly string[]): Promise<Plan[]> {
  const rows: PlanRow[] = await db('plans').whereIn('id', ids as string[]);
  return withAllowances(db, rows);
}

export async function listPlans(db: Knex, args: PageArgs, filter: { paymentType?: string; category?: string; status?: string } = {}): Promise<Page<Plan>> {
  const q = db('plans').select('plans.*');
  if (filter.paymentType) q.where('plans.payment_type', filter.paymentType);
  if (filter.category) q.where('plans.category', filter.category);
  if (filter.status) q.where('plans.status', filter.status);
  const page = await keysetPage<PlanRow>(db, q, args, 'plans');
  return { ...page, items: await withAllowances(db, page.items) };
}
