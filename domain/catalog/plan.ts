import { z } from 'zod';
import { PAYMENT_TYPES, currencySchema, minorUnitsSchema, type PaymentType } from '../customers/customer';

export const PLAN_CATEGORIES = ['standard', 'data_only', 'family', 'promotional'] as const;
export type PlanCategory = (typeof PLAN_CATEGORIES)[number];
export const SERVICES = ['data', 'voice', 'sms'] as const;
export type Service = (typeof SERVICES)[number];
export const ALLOWANCE_SERVICES = ['data', 'voice', 'sms', 'money'] as const;
export type AllowanceService = (typeof ALLOWANCE_SERVICES)[number];

/** Units per service: data in bytes, voice in seconds, SMS in messages, money in micro-units. */
export const SERVICE_UNITS: Record<AllowanceService, string> = { data: 'bytes', voice: 'seconds', sms: 'messages', money: 'currency' };

export const allowanceInputSchema = z.object({
  service: z.enum(ALLOWANCE_SERVICES),
  units: z.bigint().positive('must be positive'),
  shared: z.boolean().default(false),
  rollover: z.boolean().default(false),
  priority: z.number().int().min(0).max(1000).default(100),
});

/** The tariff document is validated by the rating engine's schema, injected here to keep the
 * catalog free of rating details. */
export function planCreateInputSchema(tariffSchema: z.ZodType) {
  return z
    .object({
      code: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'must be 2–63 lowercase letters, digits or dashes'),
      name: z.string().trim().min(1, 'is required').max(120),
      paymentType: z.enum(PAYMENT_TYPES),
      category: z.enum(PLAN_CATEGORIES).default('standard'),
      currency: currencySchema,
      recurringFeeMinor: minorUnitsSchema,
      billingPeriodUnit: z.enum(['day', 'week', 'month']).default('month'),
      billingPeriodCount: z.number().int().min(1).max(366).default(1),
      allowances: z.array(allowanceInputSchema).max(10).default([]),
      tariff: tariffSchema,
      availableFrom: z.date().nullish(),
      availableUntil: z.date().nullish(),
    })
    .superRefine((plan, ctx) => {
      const seen = new Set<string>();
      plan.allowances.forEach((a, i) => {
        if (seen.has(a.service)) ctx.addIssue({ code: 'custom', path: ['allowances', i, 'service'], message: 'appears twice' });
        seen.add(a.service);
      });
      if (plan.category === 'data_only' && plan.allowances.some((a) => a.service === 'voice' || a.service === 'sms')) {
        ctx.addIssue({ code: 'custom', path: ['allowances'], message: 'a data-only plan includes no voice or SMS' });
      }
      if (plan.category === 'family' && !plan.allowances.some((a) => a.shared)) {
        ctx.addIssue({ code: 'custom', path: ['allowances'], message: 'a family plan needs at least one shared allowance' });
      }
      if (plan.availableFrom && plan.availableUntil && plan.availableUntil <= plan.availableFrom) {
        ctx.addIssue({ code: 'custom', path: ['availableUntil'], message: 'must be after availableFrom' });
      }
    });
}

export type PlanCreateInput = z.infer<ReturnType<typeof planCreateInputSchema>>;

export interface PlanAllowance {
  service: AllowanceService;
  units: bigint;
  shared: boolean;
  rollover: boolean;
  priority: number;
}

export interface Plan {
  id: string;
  code: string;
  name: string;
  paymentType: PaymentType;
  category: PlanCategory;
  currency: string;
  recurringFeeMinor: bigint;
  billingPeriodUnit: 'day' | 'week' | 'month';
  billingPeriodCount: number;
  allowances: PlanAllowance[];
  tariff: unknown;
  status: 'active' | 'retired';
  availableFrom: Date | null;
  availableUntil: Date | null;
  createdAt: Date;
}
