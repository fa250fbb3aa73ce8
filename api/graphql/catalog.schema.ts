import { TariffSchema } from '../../domain/charging/tariff.types';
import { createPlan, findPlanByCode, listPlans } from '../../domain/catalog/catalog.repository';
import { ALLOWANCE_SERVICES, PLAN_CATEGORIES, planCreateInputSchema, type Plan, type PlanAllowance } from '../../domain/catalog/plan';
import { PAYMENT_TYPES } from '../../domain/customers/customer';
import { ROLE_GROUPS } from '../../domain/access/roles';
import { allow, builder } from './builder';
import { connection, runMutation, UserErrorType } from './user-errors';

export const PaymentTypeEnum = builder.enumType('PaymentType', { values: PAYMENT_TYPES });
export const PlanCategoryEnum = builder.enumType('PlanCategory', { values: PLAN_CATEGORIES });
export const AllowanceServiceEnum = builder.enumType('AllowanceService', { values: ALLOWANCE_SERVICES });
export const BillingPeriodUnitEnum = builder.enumType('BillingPeriodUnit', { values: ['day', 'week', 'month'] as const });

export const MoneyType = builder.objectRef<{ amount: bigint; currency: string }>('Money').implement({
  description: 'An exact amount: `amount` in minor units of `currency` (cents for EUR).',
  fields: (t) => ({ amount: t.expose('amount', { type: 'BigInt' }), currency: t.exposeString('currency') }),
});

const PlanAllowanceType = builder.objectRef<PlanAllowance>('PlanAllowance').implement({
  description: 'What a plan includes each period. Units: data bytes, voice seconds, SMS messages, money micro-units.',
  fields: (t) => ({
    service: t.expose('service', { type: AllowanceServiceEnum }),
    units: t.expose('units', { type: 'BigInt' }),
    shared: t.exposeBoolean('shared', { description: 'Drawn from the account-level pool (family and business plans).' }),
    rollover: t.exposeBoolean('rollover'),
    priority: t.exposeInt('priority'),
  }),
});

export const PlanType = builder.objectRef<Plan>('Plan').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    code: t.exposeString('code'),
    name: t.exposeString('name'),
    paymentType: t.expose('paymentType', { type: PaymentTypeEnum }),
    category: t.expose('category', { type: PlanCategoryEnum }),
    recurringFee: t.field({ type: MoneyType, resolve: (p) => ({ amount: p.recurringFeeMinor, currency: p.currency }) }),
    billingPeriodUnit: t.expose('billingPeriodUnit', { type: BillingPeriodUnitEnum }),
    billingPeriodCount: t.exposeInt('billingPeriodCount'),
    allowances: t.field({ type: [PlanAllowanceType], resolve: (p) => p.allowances }),
    tariff: t.field({ type: 'JSON', description: 'Overage rates per service and zone, time bands and promotions.', resolve: (p) => p.tariff }),
    status: t.exposeString('status'),
    availableFrom: t.expose('availableFrom', { type: 'DateTime', nullable: true }),
    availableUntil: t.expose('availableUntil', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  plans: t.connection({
    type: PlanType,
    ...allow('plans', ROLE_GROUPS.everyone),
    args: { paymentType: t.arg({ type: PaymentTypeEnum }), category: t.arg({ type: PlanCategoryEnum }) },
    resolve: async (_root, args, ctx) =>
      connection(() => listPlans(ctx.db, args, { paymentType: args.paymentType ?? undefined, category: args.category ?? undefined })),
  }),
  plan: t.field({
    type: PlanType,
    nullable: true,
    ...allow('plan', ROLE_GROUPS.everyone),
    args: { code: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => (await findPlanByCode(ctx.db, args.code)) ?? null,
  }),
}));

const PlanAllowanceInput = builder.inputType('PlanAllowanceInput', {
  fields: (t) => ({
    service: t.field({ type: AllowanceServiceEnum, required: true }),
    units: t.field({ type: 'BigInt', required: true }),
    shared: t.boolean(),
    rollover: t.boolean(),
    priority: t.int(),
  }),
});

const PlanCreateInput = builder.inputType('PlanCreateInput', {
  fields: (t) => ({
    code: t.string({ required: true }),
    name: t.string({ required: true }),
    paymentType: t.field({ type: PaymentTypeEnum, required: true }),
    category: t.field({ type: PlanCategoryEnum }),
    currency: t.string({ required: true }),
    recurringFeeMinor: t.field({ type: 'BigInt', required: true }),
    billingPeriodUnit: t.field({ type: BillingPeriodUnitEnum }),
    billingPeriodCount: t.int(),
    allowances: t.field({ type: [PlanAllowanceInput] }),
    tariff: t.field({ type: 'JSON', required: true }),
    availableFrom: t.field({ type: 'DateTime' }),
    availableUntil: t.field({ type: 'DateTime' }),
  }),
});

const PlanCreatePayload = builder.objectRef<{ plan: Plan | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('PlanCreatePayload').implement({
  fields: (t) => ({
    plan: t.field({ type: PlanType, nullable: true, resolve: (p) => p.plan }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});

const planInputSchema = planCreateInputSchema(TariffSchema);

builder.mutationFields((t) => ({
  planCreate: t.field({
    type: PlanCreatePayload,
    ...allow('planCreate', ROLE_GROUPS.adminOnly),
    args: { input: t.arg({ type: PlanCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) => runMutation('plan', planInputSchema, stripNulls(input), (value) => createPlan(ctx.db, value)),
  }),
}));

/** GraphQL sends null for omitted optional fields; the validation schemas apply defaults to undefined. */
export function stripNulls<T>(value: T): T {
  if (Array.isArray(value)) return value.map(stripNulls) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, stripNulls(v)])) as T;
  }
  return value;
}
