import { createCustomer, findBillingAccount, findCustomer, listBillingAccounts, listCustomers } from '../../domain/customers/customers.repository';
import { customerCreateInputSchema, type BillingAccount, type Customer } from '../../domain/customers/customer';
import { findWallet } from '../../domain/ledger/ledger.repository';
import { microsToMinorFloor } from '../../domain/ledger/money';
import { ROLE_GROUPS } from '../../domain/access/roles';
import { allow, builder } from './builder';
import { MoneyType, PaymentTypeEnum, stripNulls } from './catalog.schema';
import { connection, runMutation, UserErrorType } from './user-errors';

export const CustomerType = builder.objectRef<Customer>('Customer');
export const BillingAccountType = builder.objectRef<BillingAccount>('BillingAccount');

export const WalletType = builder.objectRef<{ currency: string; balanceMicros: bigint; reservedMicros: bigint; creditLimitMicros: bigint }>('Wallet').implement({
  description: 'The monetary balance of a billing account. `balance` is rounded down to minor units; `balanceMicros` is exact.',
  fields: (t) => ({
    balance: t.field({ type: MoneyType, resolve: (w) => ({ amount: microsToMinorFloor(w.balanceMicros, w.currency), currency: w.currency }) }),
    available: t.field({
      type: MoneyType,
      description: 'What can still be spent: balance minus open reservations plus the credit limit.',
      resolve: (w) => ({ amount: microsToMinorFloor(w.balanceMicros - w.reservedMicros + w.creditLimitMicros, w.currency), currency: w.currency }),
    }),
    balanceMicros: t.expose('balanceMicros', { type: 'BigInt' }),
    reservedMicros: t.expose('reservedMicros', { type: 'BigInt' }),
    creditLimitMicros: t.expose('creditLimitMicros', { type: 'BigInt' }),
  }),
});

CustomerType.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.exposeString('kind'),
    name: t.exposeString('name'),
    email: t.exposeString('email', { nullable: true }),
    externalRef: t.exposeString('externalRef', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    billingAccounts: t.connection({
      type: BillingAccountType,
      resolve: async (c, args, ctx) => connection(() => listBillingAccounts(ctx.db, args, { customerId: c.id })),
    }),
  }),
});

BillingAccountType.implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    customerId: t.exposeID('customerId'),
    parentAccountId: t.exposeID('parentAccountId', { nullable: true }),
    paymentType: t.expose('paymentType', { type: PaymentTypeEnum }),
    currency: t.exposeString('currency'),
    creditLimit: t.field({ type: MoneyType, resolve: (a) => ({ amount: a.creditLimitMinor, currency: a.currency }) }),
    billingDay: t.exposeInt('billingDay'),
    status: t.exposeString('status'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    wallet: t.field({ type: WalletType, nullable: true, resolve: async (a, _args, ctx) => (await findWallet(ctx.db, a.id)) ?? null }),
  }),
});

builder.queryFields((t) => ({
  customers: t.connection({
    type: CustomerType,
    ...allow('customers', ROLE_GROUPS.staffReaders),
    resolve: async (_root, args, ctx) => connection(() => listCustomers(ctx.db, args)),
  }),
  customer: t.field({
    type: CustomerType,
    nullable: true,
    ...allow('customer', ROLE_GROUPS.staffReaders),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => (isUuid(args.id) ? ((await findCustomer(ctx.db, String(args.id))) ?? null) : null),
  }),
  billingAccounts: t.connection({
    type: BillingAccountType,
    ...allow('billingAccounts', ROLE_GROUPS.staffReaders),
    resolve: async (_root, args, ctx) => connection(() => listBillingAccounts(ctx.db, args)),
  }),
  billingAccount: t.field({
    type: BillingAccountType,
    nullable: true,
    ...allow('billingAccount', ROLE_GROUPS.staffReaders),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => (isUuid(args.id) ? ((await findBillingAccount(ctx.db, String(args.id))) ?? null) : null),
  }),
}));

export function isUuid(value: unknown): boolean {
  return typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

const BillingAccountInput = builder.inputType('BillingAccountInput', {
  fields: (t) => ({
    paymentType: t.field({ type: PaymentTypeEnum, required: true }),
    currency: t.string({ required: true }),
    creditLimitMinor: t.field({ type: 'BigInt' }),
    billingDay: t.int(),
    parentAccountId: t.id(),
  }),
});

const CustomerCreateInput = builder.inputType('CustomerCreateInput', {
  fields: (t) => ({
    kind: t.string({ description: 'individual (default) or business' }),
    name: t.string({ required: true }),
    email: t.string(),
    externalRef: t.string({ description: "The customer's id in the CRM or storefront." }),
    account: t.field({ type: BillingAccountInput, required: true }),
  }),
});

const CustomerCreatePayload = builder
  .objectRef<{ customer: { customer: Customer; account: BillingAccount } | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('CustomerCreatePayload')
  .implement({
    fields: (t) => ({
      customer: t.field({ type: CustomerType, nullable: true, resolve: (p) => p.customer?.customer ?? null }),
      billingAccount: t.field({ type: BillingAccountType, nullable: true, resolve: (p) => p.customer?.account ?? null }),
      userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
    }),
  });

builder.mutationFields((t) => ({
  customerCreate: t.field({
    type: CustomerCreatePayload,
    ...allow('customerCreate', ['admin', 'integrator', 'storefront']),
    args: { input: t.arg({ type: CustomerCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) => runMutation('customer', customerCreateInputSchema, stripNulls(input), (value) => createCustomer(ctx.db, value)),
  }),
}));
