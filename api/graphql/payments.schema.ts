/** Top-ups, vouchers, saved payment methods and payments. Storefronts top up and redeem vouchers;
 * finance creates voucher batches and reads payments; support reads. */
import crypto from 'node:crypto';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ROLE_GROUPS } from '../../domain/access/roles';
import { DomainError } from '../../domain/shared/domain-error';
import { openTopUp, findTopUp, listPaymentMethods, savePaymentMethod, type SavedMethodRow, type TopUp } from '../../domain/payments/top-ups.repository';
import { createVoucherBatch, redeemVoucher, type Redemption, type VoucherBatch } from '../../domain/payments/vouchers';
import { processPaymentGateway, type PaymentGateway } from '../../domain/payments';
import { microsToMinorFloor } from '../../domain/ledger/money';
import { topUpWorkflowId, type TopUpWorkflowResult } from '../../workflows/top-up.workflow';
import { allow, builder, type GraphQLContext } from './builder';
import { MoneyType } from './catalog.schema';
import { isUuid } from './customers.schema';
import { runMutation, UserErrorType } from './user-errors';

let gateway: PaymentGateway | undefined;
/** The API's gateway client (saving payment methods); tests may replace it. */
export function setApiPaymentGateway(g: PaymentGateway | undefined): void {
  gateway = g;
}
const apiGateway = () => (gateway ??= processPaymentGateway());

const TopUpStatusEnum = builder.enumType('TopUpStatus', { values: ['pending', 'captured', 'credited', 'declined', 'failed', 'refunded'] as const });

const TopUpType = builder.objectRef<TopUp>('TopUp').implement({
  description: 'A balance top-up, run by the workflow `top-up:<idempotencyKey>`.',
  fields: (t) => ({
    id: t.exposeID('id'),
    idempotencyKey: t.exposeString('idempotencyKey'),
    billingAccountId: t.exposeID('billingAccountId'),
    amount: t.field({ type: MoneyType, resolve: (x) => ({ amount: x.amountMinor, currency: x.currency }) }),
    status: t.field({ type: TopUpStatusEnum, resolve: (x) => x.status }),
    source: t.exposeString('source'),
    paymentRef: t.exposeString('paymentRef', { nullable: true }),
    refundRef: t.exposeString('refundRef', { nullable: true }),
    errorCode: t.exposeString('errorCode', { nullable: true }),
    errorMessage: t.exposeString('errorMessage', { nullable: true }),
    workflowId: t.string({ resolve: (x) => topUpWorkflowId(x.idempotencyKey) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const PaymentMethodType = builder.objectRef<SavedMethodRow>('PaymentMethod').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    gateway: t.exposeString('gateway'),
    brand: t.exposeString('brand', { nullable: true }),
    last4: t.exposeString('last4', { nullable: true }),
    isDefault: t.exposeBoolean('isDefault'),
  }),
});

const RedemptionType = builder.objectRef<Redemption>('VoucherRedemption').implement({
  fields: (t) => ({
    serial: t.exposeString('serial'),
    amount: t.field({ type: MoneyType, resolve: (r) => ({ amount: r.amountMinor, currency: r.currency }) }),
    balance: t.field({ type: MoneyType, resolve: (r) => ({ amount: microsToMinorFloor(r.balanceMicros, r.currency), currency: r.currency }) }),
  }),
});

const VoucherPinType = builder.objectRef<{ serial: string; pin: string }>('VoucherPin').implement({
  fields: (t) => ({ serial: t.exposeString('serial'), pin: t.exposeString('pin', { description: 'Shown once; only a hash is stored.' }) }),
});

const VoucherBatchType = builder.objectRef<VoucherBatch>('VoucherBatch').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    count: t.exposeInt('count'),
    amount: t.field({ type: MoneyType, resolve: (b) => ({ amount: b.amountMinor, currency: b.currency }) }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    pins: t.field({ type: [VoucherPinType], resolve: (b) => b.pins }),
  }),
});

const TopUpPayload = builder.objectRef<{ topUp: TopUp | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('BalanceTopUpPayload').implement({
  fields: (t) => ({ topUp: t.field({ type: TopUpType, nullable: true, resolve: (p) => p.topUp }), userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }) }),
});
const RedeemPayload = builder.objectRef<{ redemption: Redemption | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('VoucherRedeemPayload').implement({
  fields: (t) => ({ redemption: t.field({ type: RedemptionType, nullable: true, resolve: (p) => p.redemption }), userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }) }),
});
const BatchPayload = builder.objectRef<{ batch: VoucherBatch | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('VoucherBatchCreatePayload').implement({
  fields: (t) => ({ batch: t.field({ type: VoucherBatchType, nullable: true, resolve: (p) => p.batch }), userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }) }),
});
const MethodPayload = builder.objectRef<{ paymentMethod: SavedMethodRow | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('PaymentMethodAddPayload').implement({
  fields: (t) => ({ paymentMethod: t.field({ type: PaymentMethodType, nullable: true, resolve: (p) => p.paymentMethod }), userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }) }),
});

const uuid = z.string().refine(isUuid, 'must be a UUID');
const positiveMinor = z.bigint().positive('must be positive').max(10_000_000n, 'is too large');

const TopUpInput = builder.inputType('BalanceTopUpInput', {
  fields: (t) => ({
    billingAccountId: t.id({ required: true }),
    amount: t.field({ type: 'BigInt', required: true, description: 'Minor units of the account currency.' }),
    idempotencyKey: t.string({ required: true }),
    paymentMethodId: t.id({ required: false, description: 'A saved method; default: the account default.' }),
  }),
});
const topUpSchema = z.object({
  billingAccountId: uuid, amount: positiveMinor, idempotencyKey: z.string().min(8, 'at least 8 characters').max(200), paymentMethodId: uuid.nullish(),
});

/** Starts (or joins) `top-up:<key>` and waits for its outcome. A decline is a userError. */
export async function runTopUp(ctx: GraphQLContext, input: z.infer<typeof topUpSchema>): Promise<TopUp> {
  let methodRef: string | null = null;
  if (input.paymentMethodId) {
    const m = (await listPaymentMethods(ctx.db, input.billingAccountId)).find((x) => x.id === input.paymentMethodId);
    if (!m) throw new DomainError('PAYMENT_METHOD_NOT_FOUND', 'the account has no saved payment method with this id', ['input', 'paymentMethodId']);
    methodRef = m.paymentMethodRef;
  }
  const topUp = await openTopUp(ctx.db, { idempotencyKey: input.idempotencyKey, billingAccountId: input.billingAccountId, amountMinor: input.amount, source: 'card', paymentMethodRef: methodRef });
  const workflowId = topUpWorkflowId(topUp.idempotencyKey);
  let result: TopUpWorkflowResult;
  try {
    const handle = await ctx.temporal.workflow.start('topUpWorkflow', { workflowId, taskQueue: ctx.config.temporal.taskQueue, args: [{ key: topUp.idempotencyKey }] });
    result = (await handle.result()) as TopUpWorkflowResult;
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    result = (await ctx.temporal.workflow.getHandle(workflowId).result()) as TopUpWorkflowResult;
  }
  if (result.status !== 'credited') {
    const code = result.code ?? 'PAYMENT_FAILED';
    const message = result.status === 'declined' ? `the payment was declined: ${result.message ?? 'card declined'}` : (result.message ?? 'the top-up failed');
    throw new DomainError(code, message, ['input', code === 'NO_PAYMENT_METHOD' ? 'paymentMethodId' : 'amount']);
  }
  return (await findTopUp(ctx.db, topUp.idempotencyKey))!;
}

builder.mutationFields((t) => ({
  balanceTopUp: t.field({
    type: TopUpPayload,
    ...allow('balanceTopUp', ['admin', 'storefront']),
    description: 'Tops up a billing account from its saved payment method: capture → wallet credit → notification (workflow `top-up:<idempotencyKey>`).',
    args: { input: t.arg({ type: TopUpInput, required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('topUp', topUpSchema, input, (v) => runTopUp(ctx, v)),
  }),
  voucherRedeem: t.field({
    type: RedeemPayload,
    ...allow('voucherRedeem', ['admin', 'storefront']),
    args: { input: t.arg({ type: builder.inputType('VoucherRedeemInput', { fields: (f) => ({ billingAccountId: f.id({ required: true }), pin: f.string({ required: true }) }) }), required: true }) },
    resolve: (_r, { input }, ctx) =>
      runMutation('redemption', z.object({ billingAccountId: uuid, pin: z.string().regex(/^[0-9 -]{12,24}$/, 'must be the voucher PIN') }), input,
        (v) => redeemVoucher(ctx.db, ctx.chargingEngine(), { pin: v.pin, billingAccountId: v.billingAccountId, actor: ctx.actor })),
  }),
  voucherBatchCreate: t.field({
    type: BatchPayload,
    ...allow('voucherBatchCreate', ['admin', 'finance']),
    args: {
      input: t.arg({
        type: builder.inputType('VoucherBatchCreateInput', {
          fields: (f) => ({ count: f.int({ required: true }), amount: f.field({ type: 'BigInt', required: true }), currency: f.string({ required: true }), expiresAt: f.field({ type: 'DateTime', required: true }) }),
        }),
        required: true,
      }),
    },
    resolve: (_r, { input }, ctx) =>
      runMutation('batch', z.object({ count: z.number().int().min(1).max(10_000), amount: positiveMinor, currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code'), expiresAt: z.date() }), input,
        (v) => createVoucherBatch(ctx.db, { count: v.count, amountMinor: v.amount, currency: v.currency, expiresAt: v.expiresAt, actor: ctx.actor })),
  }),
  paymentMethodAdd: t.field({
    type: MethodPayload,
    ...allow('paymentMethodAdd', ['admin', 'storefront']),
    description: 'Saves a payment method (a gateway token such as a Stripe PaymentMethod id) as the account default.',
    args: { input: t.arg({ type: builder.inputType('PaymentMethodAddInput', { fields: (f) => ({ billingAccountId: f.id({ required: true }), paymentMethodToken: f.string({ required: true }) }) }), required: true }) },
    resolve: (_r, { input }, ctx) =>
      runMutation('paymentMethod', z.object({ billingAccountId: uuid, paymentMethodToken: z.string().regex(/^pm_[A-Za-z0-9_]+$/, 'must be a payment method token') }), input, async (v) => {
        const account = await ctx.db('billing_accounts').where({ id: v.billingAccountId }).first('id');
        if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
        const existing = (await listPaymentMethods(ctx.db, v.billingAccountId))[0];
        const g = apiGateway();
        const customerRef = existing?.customerRef ?? (await g.createCustomer({ billingAccountId: v.billingAccountId, idempotencyKey: `customer:${v.billingAccountId}` })).customerRef;
        const saved = await g.attachPaymentMethod({ customerRef, paymentMethodRef: v.paymentMethodToken, setAsDefault: true, idempotencyKey: `attach:${crypto.randomUUID()}` });
        return savePaymentMethod(ctx.db, { billingAccountId: v.billingAccountId, gateway: g.name, customerRef, paymentMethodRef: saved.paymentMethodRef, brand: saved.card?.brand, last4: saved.card?.last4 });
      }),
  }),
}));

interface PaymentRow { id: string; gateway: string; paymentRef: string; purpose: string; purposeRef: string; amountMinor: bigint; refundedMinor: bigint; currency: string; status: string; createdAt: Date }
const PaymentType = builder.objectRef<PaymentRow>('Payment').implement({
  description: 'A payment taken at the gateway (a top-up or an invoice), with what was refunded.',
  fields: (t) => ({
    id: t.exposeID('id'),
    gateway: t.exposeString('gateway'),
    paymentRef: t.exposeString('paymentRef'),
    purpose: t.exposeString('purpose'),
    purposeRef: t.exposeString('purposeRef'),
    amount: t.field({ type: MoneyType, resolve: (p) => ({ amount: p.amountMinor, currency: p.currency }) }),
    refunded: t.field({ type: MoneyType, resolve: (p) => ({ amount: p.refundedMinor, currency: p.currency }) }),
    status: t.exposeString('status'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  payments: t.field({
    type: [PaymentType],
    ...allow('payments', ROLE_GROUPS.staffReaders),
    args: { billingAccountId: t.arg.id({ required: true }), first: t.arg.int() },
    resolve: async (_r, args, ctx) => {
      if (!isUuid(args.billingAccountId)) return [];
      const rows = await ctx.db('payments').where({ billing_account_id: String(args.billingAccountId) }).orderBy('created_at', 'desc').limit(Math.min(args.first ?? 50, 200));
      return rows.map((r) => ({
        id: r.id, gateway: r.gateway, paymentRef: r.payment_ref, purpose: r.purpose, purposeRef: r.purpose_ref, amountMinor: BigInt(r.amount_minor),
        refundedMinor: BigInt(r.refunded_minor), currency: String(r.currency).trim(), status: r.status, createdAt: r.created_at,
      }));
    },
  }),
  topUp: t.field({
    type: TopUpType,
    nullable: true,
    ...allow('topUp', ROLE_GROUPS.everyone),
    args: { idempotencyKey: t.arg.string({ required: true }) },
    resolve: async (_r, args, ctx) => (await findTopUp(ctx.db, args.idempotencyKey)) ?? null,
  }),
  paymentMethods: t.field({
    type: [PaymentMethodType],
    ...allow('paymentMethods', ROLE_GROUPS.staffReaders),
    args: { billingAccountId: t.arg.id({ required: true }) },
    resolve: async (_r, args, ctx) => (isUuid(args.billingAccountId) ? listPaymentMethods(ctx.db, String(args.billingAccountId)) : []),
  }),
}));
