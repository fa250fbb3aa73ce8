/**
 * Billing in GraphQL: subscriptions with their balances and buckets, recurring charges, invoices
 * (with the readable HTML, and links to it and to the PDF), credit notes, payments, auto top-up settings, notification
 * webhook endpoints and their delivery log, and the billing run on demand. Finance issues invoices
 * and credit notes; support and integrators read.
 */
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Knex } from 'knex';
import { ROLE_GROUPS, type Role } from '../../domain/access/roles';
import { apiKeyFromHeaders } from '../../domain/access/api-key';
import { DomainError } from '../../domain/shared/domain-error';
import { toBucketView, type BucketView } from '../../domain/ledger/buckets.repository';
import { microsToMinorFloor } from '../../domain/ledger/money';
import {
  creditNotesOf, findInvoice, invoiceLines, listInvoices, type CreditNote, type Invoice, type InvoiceLine,
} from '../../domain/billing/invoices.repository';
import { renderInvoiceHtml, type InvoiceDocument } from '../../domain/billing/invoice-render';
import { issueCreditNote } from '../../domain/billing/invoice-wallet.service';
import { renderInvoicePdf } from '../../domain/billing/invoice-pdf';
import { findAutoTopUp, setAutoTopUp, type AutoTopUpSettings } from '../../domain/payments/auto-top-up.repository';
import { NOTIFICATION_EVENT_TYPES } from '../../domain/notifications/notifications.repository';
import { billingRunWorkflowId } from '../../domain/billing/billing-run.types';
import { invoiceWorkflowId } from '../../workflows/invoice.messages';
import { allow, builder, type GraphQLContext } from './builder';
import { MoneyType } from './catalog.schema';
import { isUuid } from './customers.schema';
import { runMutation, UserErrorType } from './user-errors';

const finance: Role[] = ['admin', 'finance'];
const financeReaders: Role[] = ['admin', 'finance', 'support', 'integrator'];
const uuid = z.string().refine(isUuid, 'must be a UUID');
type Errors = { field: string[] | null; message: string; code: string }[];

// ---- subscriptions with balances -----------------------------------------------------------

interface SubscriptionRow {
  id: string; subscriberId: string; billingAccountId: string; payerAccountId: string; planCode: string; state: string;
  currentPeriodStart: Date; currentPeriodEnd: Date; nextChargeOn: string; currency: string;
}

export const BucketType = builder.objectRef<BucketView>('Bucket').implement({
  description: 'An allowance bucket (bytes, seconds, messages, or micro-units of money); shared = an account pool.',
  fields: (t) => ({
    id: t.exposeID('id'),
    service: t.exposeString('service'),
    unit: t.exposeString('unit'),
    initialUnits: t.field({ type: 'BigInt', resolve: (b) => b.initialUnits }),
    balanceUnits: t.field({ type: 'BigInt', resolve: (b) => b.balanceUnits }),
    reservedUnits: t.field({ type: 'BigInt', resolve: (b) => b.reservedUnits }),
    availableUnits: t.field({ type: 'BigInt', resolve: (b) => b.availableUnits }),
    usedPercent: t.int({ resolve: (b) => (b.initialUnits > 0n ? Number(((b.initialUnits - b.balanceUnits) * 100n) / b.initialUnits) : 0) }),
    validFrom: t.expose('validFrom', { type: 'DateTime' }),
    validUntil: t.expose('validUntil', { type: 'DateTime' }),
    rollover: t.exposeBoolean('rollover'),
    shared: t.exposeBoolean('shared'),
    source: t.exposeString('source'),
  }),
});

interface ChargeRow { id: string; cycle: number; periodStart: Date; periodEnd: Date; feeMinor: bigint; discountMinor: bigint; currency: string; status: string; graceUntil: string | null }

const RecurringChargeType = builder.objectRef<ChargeRow>('RecurringCharge').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    cycle: t.exposeInt('cycle'),
    periodStart: t.expose('periodStart', { type: 'DateTime' }),
    periodEnd: t.expose('periodEnd', { type: 'DateTime' }),
    fee: t.field({ type: MoneyType, resolve: (c) => ({ amount: c.feeMinor, currency: c.currency }) }),
    discount: t.field({ type: MoneyType, resolve: (c) => ({ amount: c.discountMinor, currency: c.currency }) }),
    status: t.exposeString('status'),
    graceUntil: t.exposeString('graceUntil', { nullable: true }),
  }),
});

async function bucketsFor(db: Knex, s: SubscriptionRow): Promise<BucketView[]> {
  const rows = await db('buckets')
    .where((q) => q.where({ subscription_id: s.id }).orWhere((p) => p.whereNull('subscription_id').whereIn('billing_account_id', [s.billingAccountId, s.payerAccountId])))
    .andWhere('valid_until', '>', db.fn.now()).andWhere('valid_from', '<=', db.fn.now())
    .orderBy([{ column: 'priority' }, { column: 'valid_until' }]);
  return rows.map(toBucketView);
}

const SubscriptionType = builder.objectRef<SubscriptionRow>('Subscription').implement({
  description: 'A line on a plan, with its current period, its balance and its buckets, always up to date (read from the ledger view).',
  fields: (t) => ({
    id: t.exposeID('id'),
    subscriberId: t.exposeID('subscriberId'),
    planCode: t.exposeString('planCode'),
    state: t.exposeString('state'),
    currentPeriodStart: t.expose('currentPeriodStart', { type: 'DateTime' }),
    currentPeriodEnd: t.expose('currentPeriodEnd', { type: 'DateTime' }),
    nextChargeOn: t.exposeString('nextChargeOn'),
    balance: t.field({
      type: MoneyType, nullable: true, description: 'What the paying account can spend now (balance − reserved), rounded down.',
      resolve: async (s, _a, ctx) => {
        const w = await ctx.db('wallets').where({ billing_account_id: s.payerAccountId }).first();
        if (!w) return null;
        const cur = String(w.currency).trim();
        return { amount: microsToMinorFloor(BigInt(w.balance_micros) - BigInt(w.reserved_micros), cur), currency: cur };
      },
    }),
    buckets: t.field({ type: [BucketType], resolve: (s, _a, ctx) => bucketsFor(ctx.db, s) }),
    charges: t.field({
      type: [RecurringChargeType], args: { last: t.arg.int({ required: false }) },
      resolve: async (s, args, ctx) => (await ctx.db('recurring_charges').where({ subscription_id: s.id }).orderBy('period_start', 'desc').limit(Math.min(args.last ?? 12, 100)))
        .map((r) => ({
          id: String(r.id), cycle: r.cycle, periodStart: r.period_start, periodEnd: r.period_end, feeMinor: BigInt(r.fee_minor), discountMinor: BigInt(r.discount_minor),
          currency: String(r.currency).trim(), status: r.status, graceUntil: r.grace_until ? new Date(r.grace_until).toISOString().slice(0, 10) : null,
        })),
    }),
  }),
});

async function subscriptions(db: Knex, where: { subscriberId?: string; billingAccountId?: string }): Promise<SubscriptionRow[]> {
  const q = db('subscriptions as s').join('subscribers as sb', 'sb.id', 's.subscriber_id').join('billing_accounts as a', 'a.id', 'sb.billing_account_id')
    .join('plans as p', 'p.id', 's.plan_id')
    .select('s.id', 's.subscriber_id', 'sb.billing_account_id', db.raw('coalesce(a.parent_account_id, a.id) AS payer'), 'p.code', 's.state',
      's.current_period_start', 's.current_period_end', 's.next_charge_on', 'p.currency')
    .orderBy('s.started_at', 'desc').limit(100);
  if (where.subscriberId) q.where('s.subscriber_id', where.subscriberId);
  if (where.billingAccountId) q.where((w) => w.where('sb.billing_account_id', where.billingAccountId!).orWhere('a.parent_account_id', where.billingAccountId!));
  return (await q).map((r) => ({
    id: r.id, subscriberId: r.subscriber_id, billingAccountId: r.billing_account_id, payerAccountId: r.payer, planCode: r.code, state: r.state,
    currentPeriodStart: r.current_period_start, currentPeriodEnd: r.current_period_end,
    nextChargeOn: r.next_charge_on instanceof Date ? r.next_charge_on.toISOString().slice(0, 10) : String(r.next_charge_on), currency: String(r.currency).trim(),
  }));
}

// ---- invoices ----------------------------------------------------------------------------------

const InvoiceLineType = builder.objectRef<InvoiceLine>('InvoiceLine').implement({
  fields: (t) => ({
    kind: t.exposeString('kind'),
    description: t.exposeString('description'),
    service: t.exposeString('service', { nullable: true }),
    quantity: t.field({ type: 'BigInt', nullable: true, resolve: (l) => l.quantity }),
    amountMinor: t.field({ type: 'BigInt', resolve: (l) => l.amountMinor }),
    subscriberId: t.exposeID('subscriberId', { nullable: true }),
  }),
});

const CreditNoteType = builder.objectRef<CreditNote>('CreditNote').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    number: t.exposeString('number'),
    invoiceId: t.exposeID('invoiceId'),
    amountMinor: t.field({ type: 'BigInt', resolve: (c) => c.amountMinor }),
    reason: t.exposeString('reason'),
    createdBy: t.exposeString('createdBy'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const InvoiceType = builder.objectRef<Invoice>('Invoice').implement({
  description: 'A postpaid bill for one billing account and month; immutable once issued (corrections are credit notes).',
  fields: (t) => ({
    id: t.exposeID('id'),
    number: t.exposeString('number', { nullable: true }),
    billingAccountId: t.exposeID('billingAccountId'),
    status: t.exposeString('status'),
    periodStart: t.exposeString('periodStart'),
    periodEnd: t.exposeString('periodEnd'),
    subtotal: t.field({ type: MoneyType, resolve: (i) => ({ amount: i.subtotalMinor, currency: i.currency }) }),
    tax: t.field({ type: MoneyType, resolve: (i) => ({ amount: i.taxMinor, currency: i.currency }) }),
    total: t.field({ type: MoneyType, resolve: (i) => ({ amount: i.totalMinor, currency: i.currency }) }),
    credited: t.field({ type: MoneyType, resolve: (i) => ({ amount: i.creditedMinor, currency: i.currency }) }),
    paid: t.field({ type: MoneyType, resolve: (i) => ({ amount: i.paidMinor, currency: i.currency }) }),
    issuedAt: t.expose('issuedAt', { type: 'DateTime', nullable: true }),
    dueOn: t.exposeString('dueOn', { nullable: true }),
    lines: t.field({ type: [InvoiceLineType], resolve: (i, _a, ctx) => invoiceLines(ctx.db, i.id) }),
    creditNotes: t.field({ type: [CreditNoteType], resolve: (i, _a, ctx) => creditNotesOf(ctx.db, i.id) }),
    workflowId: t.string({ resolve: (i) => invoiceWorkflowId(i.id) }),
    htmlUrl: t.string({ description: 'The readable invoice as HTML (send the same API key).', resolve: (i) => `/invoices/${i.id}.html` }),
    pdfUrl: t.string({ description: 'The invoice as a PDF (send the same API key).', resolve: (i) => `/invoices/${i.id}.pdf` }),
    html: t.string({ resolve: async (i, _a, ctx) => renderInvoiceHtml(await invoiceDocument(ctx.db, i)) }),
  }),
});

/** What both renderings of an invoice are made from. */
async function invoiceDocument(db: Knex, i: Invoice): Promise<InvoiceDocument> {
  const customer = await db('billing_accounts').join('customers', 'customers.id', 'billing_accounts.customer_id').where('billing_accounts.id', i.billingAccountId).first('customers.name');
  return { invoice: i, lines: await invoiceLines(db, i.id), creditNotes: await creditNotesOf(db, i.id), customerName: customer?.name ?? '' };
}

/** `GET /invoices/<id>.html` (also without the extension) and `GET /invoices/<id>.pdf`, with an API
 * key of a role that may read invoices. */
export function createInvoiceDocumentRouter(deps: { db: Knex; resolveApiKey: (key: string) => Promise<{ role: Role; actor: string } | undefined> }) {
  const router = express.Router();
  router.get('/invoices/:file', async (req: Request, res: Response) => {
    const key = apiKeyFromHeaders(req.headers);
    const auth = key ? await deps.resolveApiKey(key) : undefined;
    if (!auth) return res.status(401).json({ error: 'UNAUTHENTICATED' });
    if (!financeReaders.includes(auth.role)) return res.status(403).json({ error: 'FORBIDDEN' });
    const [, id, format] = /^(.*?)(?:\.(html|pdf))?$/.exec(String(req.params.file))!;
    const inv = isUuid(id) ? await findInvoice(deps.db, id) : undefined;
    if (!inv) return res.status(404).json({ error: 'NOT_FOUND' });
    const doc = await invoiceDocument(deps.db, inv);
    if (format !== 'pdf') return res.type('html').send(renderInvoiceHtml(doc));
    const name = inv.number ?? `invoice-${inv.id}`;
    res.type('application/pdf').setHeader('Content-Disposition', `inline; filename="${name}.pdf"`);
    return res.send(await renderInvoicePdf(doc));
  });
  return router;
}

// ---- auto top-up, webhook endpoints, delivery log -------------------------------------------

const AutoTopUpType = builder.objectRef<AutoTopUpSettings>('AutoTopUpSettings').implement({
  fields: (t) => ({
    billingAccountId: t.exposeID('billingAccountId'),
    enabled: t.exposeBoolean('enabled'),
    thresholdMinor: t.field({ type: 'BigInt', resolve: (s) => s.thresholdMinor }),
    amountMinor: t.field({ type: 'BigInt', resolve: (s) => s.amountMinor }),
    paymentMethodId: t.exposeID('paymentMethodId'),
  }),
});

interface EndpointRow { id: string; url: string; eventTypes: string[]; enabled: boolean; createdAt: Date; secret?: string }
interface DeliveryRow { id: string; eventId: string; eventType: string; endpointId: string; status: string; attempts: number; lastStatusCode: number | null; lastError: string | null; deliveredAt: Date | null; createdAt: Date }

const WebhookDeliveryType = builder.objectRef<DeliveryRow>('WebhookDelivery').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    eventId: t.exposeID('eventId'),
    eventType: t.exposeString('eventType'),
    status: t.exposeString('status'),
    attempts: t.exposeInt('attempts'),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    deliveredAt: t.expose('deliveredAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const WebhookEndpointType = builder.objectRef<EndpointRow>('WebhookEndpoint').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    eventTypes: t.exposeStringList('eventTypes'),
    enabled: t.exposeBoolean('enabled'),
    secret: t.exposeString('secret', { nullable: true, description: 'Shown once, when the endpoint is created.' }),
    deliveries: t.field({
      type: [WebhookDeliveryType], args: { last: t.arg.int({ required: false }) },
      resolve: async (e, args, ctx) => (await ctx.db('webhook_deliveries as d').join('notification_events as n', 'n.id', 'd.event_id')
        .where('d.endpoint_id', e.id).orderBy('d.id', 'desc').limit(Math.min(args.last ?? 50, 200)).select('d.*', 'n.event_type'))
        .map((r) => ({
          id: String(r.id), eventId: String(r.event_id), eventType: r.event_type, endpointId: r.endpoint_id, status: r.status, attempts: r.attempts,
          lastStatusCode: r.last_status_code, lastError: r.last_error, deliveredAt: r.delivered_at, createdAt: r.created_at,
        })),
    }),
  }),
});

const toEndpoint = (r: Record<string, unknown>, secret?: string): EndpointRow => ({
  id: r.id as string, url: r.url as string, eventTypes: r.event_types as string[], enabled: r.enabled as boolean, createdAt: r.created_at as Date, secret,
});

// ---- payloads ----------------------------------------------------------------------------------

const payload = <K extends string, T>(name: string, key: K, type: Parameters<typeof builder.objectRef>[0] | object) =>
  builder.objectRef<{ [k in K]: T | null } & { userErrors: Errors }>(name).implement({
    fields: (t) => ({
      [key]: t.field({ type: type as never, nullable: true, resolve: (p: Record<string, unknown>) => p[key] as never }),
      userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
    }) as never,
  });

const CreditNotePayload = payload<'creditNote', CreditNote>('CreditNoteCreatePayload', 'creditNote', CreditNoteType);
const InvoiceIssuePayload = payload<'invoice', Invoice>('InvoiceIssuePayload', 'invoice', InvoiceType);
const AutoTopUpPayload = payload<'settings', AutoTopUpSettings>('AutoTopUpSetPayload', 'settings', AutoTopUpType);
const EndpointPayload = payload<'endpoint', EndpointRow>('WebhookEndpointCreatePayload', 'endpoint', WebhookEndpointType);
interface RunStarted { workflowId: string; cycleDate: string }
const RunStartedType = builder.objectRef<RunStarted>('BillingRunStarted').implement({
  fields: (t) => ({ workflowId: t.exposeString('workflowId'), cycleDate: t.exposeString('cycleDate') }),
});
const RunPayload = payload<'run', RunStarted>('BillingRunStartPayload', 'run', RunStartedType);

// ---- root fields -------------------------------------------------------------------------------

builder.queryFields((t) => ({
  subscriptions: t.field({
    type: [SubscriptionType],
    ...allow('subscriptions', ROLE_GROUPS.staffReaders),
    description: 'Subscriptions of a line or of a billing account (with its family or business members).',
    args: { subscriberId: t.arg.id(), billingAccountId: t.arg.id() },
    resolve: async (_r, args, ctx) => {
      const subscriberId = args.subscriberId && isUuid(args.subscriberId) ? String(args.subscriberId) : undefined;
      const billingAccountId = args.billingAccountId && isUuid(args.billingAccountId) ? String(args.billingAccountId) : undefined;
      if (!subscriberId && !billingAccountId) return [];
      return subscriptions(ctx.db, { subscriberId, billingAccountId });
    },
  }),
  invoices: t.field({
    type: [InvoiceType],
    ...allow('invoices', financeReaders),
    args: { billingAccountId: t.arg.id(), status: t.arg.string(), first: t.arg.int() },
    resolve: async (_r, args, ctx) => listInvoices(ctx.db, {
      billingAccountId: args.billingAccountId && isUuid(args.billingAccountId) ? String(args.billingAccountId) : undefined,
      status: (['open', 'issued', 'paid', 'void'] as const).find((s) => s === args.status),
    }, Math.min(args.first ?? 50, 200)),
  }),
  invoice: t.field({
    type: InvoiceType, nullable: true,
    ...allow('invoice', financeReaders),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_r, args, ctx) => (isUuid(args.id) ? ((await findInvoice(ctx.db, String(args.id))) ?? null) : null),
  }),
  autoTopUp: t.field({
    type: AutoTopUpType, nullable: true,
    ...allow('autoTopUp', ROLE_GROUPS.staffReaders),
    args: { billingAccountId: t.arg.id({ required: true }) },
    resolve: async (_r, args, ctx) => (isUuid(args.billingAccountId) ? ((await findAutoTopUp(ctx.db, String(args.billingAccountId))) ?? null) : null),
  }),
  webhookEndpoints: t.field({
    type: [WebhookEndpointType],
    ...allow('webhookEndpoints', ['admin', 'integrator']),
    resolve: async (_r, _a, ctx) => (await ctx.db('webhook_endpoints').orderBy('created_at')).map((r) => toEndpoint(r)),
  }),
}));

builder.mutationFields((t) => ({
  creditNoteCreate: t.field({
    type: CreditNotePayload,
    ...allow('creditNoteCreate', finance),
    description: 'Corrects an issued invoice by a gross amount (tax included), idempotent on `idempotencyKey`: its tax share goes back from the tax liability and its pre-tax part back to the paying account’s wallet.',
    args: { input: t.arg({ type: builder.inputType('CreditNoteCreateInput', { fields: (f) => ({
      invoiceId: f.id({ required: true }), amount: f.field({ type: 'BigInt', required: true }), reason: f.string({ required: true }), idempotencyKey: f.string({ required: true }),
    }) }), required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('creditNote', z.object({ invoiceId: uuid, amount: z.bigint().positive(), reason: z.string().trim().min(3).max(500), idempotencyKey: z.string().min(8).max(200) }), input,
      (v) => issueCreditNote({ db: ctx.db, engine: ctx.chargingEngine() }, { invoiceId: v.invoiceId, amountMinor: v.amount, reason: v.reason, idempotencyKey: v.idempotencyKey, actor: ctx.actor })),
  }),
  invoiceIssue: t.field({
    type: InvoiceIssuePayload,
    ...allow('invoiceIssue', finance),
    description: 'Issues an open invoice now and starts its collection and dunning (`invoice:<id>`).',
    args: { input: t.arg({ type: builder.inputType('InvoiceIssueInput', { fields: (f) => ({ invoiceId: f.id({ required: true }) }) }), required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('invoice', z.object({ invoiceId: uuid }), input, async (v) => {
      const inv = await findInvoice(ctx.db, v.invoiceId);
      if (!inv) throw new DomainError('INVOICE_NOT_FOUND', 'no invoice has this id', ['input', 'invoiceId']);
      if (inv.status !== 'open') throw new DomainError('INVOICE_ALREADY_ISSUED', 'this invoice is already issued', ['input', 'invoiceId']);
      const h = await ctx.temporal.workflow.start('invoiceWorkflow', {
        workflowId: invoiceWorkflowId(inv.id), taskQueue: ctx.config.temporal.taskQueue, args: [{ invoiceId: inv.id, asOf: new Date().toISOString().slice(0, 10) }],
      }).catch((err) => {
        if (err instanceof WorkflowExecutionAlreadyStartedError) return ctx.temporal.workflow.getHandle(invoiceWorkflowId(inv.id));
        throw err;
      });
      for (let i = 0; i < 50; i++) {
        const cur = await findInvoice(ctx.db, inv.id);
        if (cur && cur.status !== 'open') return cur;
        await new Promise((r) => setTimeout(r, 100));
      }
      void h;
      return (await findInvoice(ctx.db, inv.id))!;
    }),
  }),
  autoTopUpSet: t.field({
    type: AutoTopUpPayload,
    ...allow('autoTopUpSet', ['admin', 'storefront', 'support']),
    args: { input: t.arg({ type: builder.inputType('AutoTopUpSetInput', { fields: (f) => ({
      billingAccountId: f.id({ required: true }), enabled: f.boolean({ required: true }), threshold: f.field({ type: 'BigInt', required: true }),
      amount: f.field({ type: 'BigInt', required: true }), paymentMethodId: f.id({ required: false }),
    }) }), required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('settings', z.object({
      billingAccountId: uuid, enabled: z.boolean(), threshold: z.bigint().min(0n), amount: z.bigint().positive().max(1_000_000n), paymentMethodId: uuid.nullish(),
    }), input, (v) => setAutoTopUp(ctx.db, { billingAccountId: v.billingAccountId, enabled: v.enabled, thresholdMinor: v.threshold, amountMinor: v.amount, paymentMethodId: v.paymentMethodId })),
  }),
  webhookEndpointCreate: t.field({
    type: EndpointPayload,
    ...allow('webhookEndpointCreate', ['admin']),
    description: 'Registers an endpoint for signed notification webhooks (HMAC-SHA256 over `<timestamp>.<body>` in `Mvno-Signature`).',
    args: { input: t.arg({ type: builder.inputType('WebhookEndpointCreateInput', { fields: (f) => ({ url: f.string({ required: true }), eventTypes: f.stringList({ required: false }) }) }), required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('endpoint', z.object({
      url: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL'), eventTypes: z.array(z.enum(NOTIFICATION_EVENT_TYPES)).nullish(),
    }), input, async (v) => {
      const secret = `whsec_${crypto.randomBytes(24).toString('hex')}`;
      const [row] = await ctx.db('webhook_endpoints').insert({ url: v.url, secret, event_types: v.eventTypes ?? [] }).returning('*');
      return toEndpoint(row, secret);
    }),
  }),
  billingRunStart: t.field({
    type: RunPayload,
    ...allow('billingRunStart', finance),
    description: 'Starts `billing-run:<cycleDate>` now (the daily Schedule does the same); a rerun charges nothing twice.',
    args: { input: t.arg({ type: builder.inputType('BillingRunStartInput', { fields: (f) => ({ cycleDate: f.string({ required: true }) }) }), required: true }) },
    resolve: (_r, { input }, ctx: GraphQLContext) => runMutation('run', z.object({ cycleDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD') }), input, async (v) => {
      const workflowId = billingRunWorkflowId(v.cycleDate);
      try {
        await ctx.temporal.workflow.start('billingRunWorkflow', { workflowId, taskQueue: ctx.config.temporal.taskQueue, args: [{ cycleDate: v.cycleDate }] });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
      return { workflowId, cycleDate: v.cycleDate };
    }),
  }),
}));
