import { z } from 'zod';

export const PAYMENT_TYPES = ['prepaid', 'postpaid', 'hybrid'] as const;
export type PaymentType = (typeof PAYMENT_TYPES)[number];

export const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code in capitals, e.g. EUR');
export const minorUnitsSchema = z.bigint().min(0n, 'must not be negative').max(10n ** 15n, 'is too large');

export const billingAccountInputSchema = z
  .object({
    paymentType: z.enum(PAYMENT_TYPES),
    currency: currencySchema,
    creditLimitMinor: minorUnitsSchema.default(0n),
    billingDay: z.number().int().min(1).max(28).default(1),
    parentAccountId: z.string().uuid('must be a billing account id').nullish(),
  })
  .superRefine((value, ctx) => {
    if (value.paymentType === 'prepaid' && value.creditLimitMinor !== 0n) {
      ctx.addIssue({ code: 'custom', path: ['creditLimitMinor'], message: 'a prepaid account has no credit limit' });
    }
  });

export const customerCreateInputSchema = z.object({
  kind: z.enum(['individual', 'business']).default('individual'),
  name: z.string().trim().min(1, 'is required').max(200, 'is at most 200 characters'),
  email: z.string().trim().email('is not an email address').nullish(),
  externalRef: z.string().trim().min(1).max(100).nullish(),
  account: billingAccountInputSchema,
});

export type CustomerCreateInput = z.infer<typeof customerCreateInputSchema>;

export interface Customer {
  id: string;
  kind: 'individual' | 'business';
  name: string;
  email: string | null;
  externalRef: string | null;
  createdAt: Date;
}

export interface BillingAccount {
  id: string;
  customerId: string;
  parentAccountId: string | null;
  paymentType: PaymentType;
  currency: string;
  creditLimitMinor: bigint;
  billingDay: number;
  status: 'active' | 'closed';
  createdAt: Date;
}
