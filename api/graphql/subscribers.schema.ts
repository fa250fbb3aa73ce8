import crypto from 'node:crypto';
import { z } from 'zod';
import { ApplicationFailure, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { findSubscriber, listSubscribers, currentPlanCodes, type Subscriber } from '../../domain/subscribers/subscribers.repository';
import { SUBSCRIBER_STATES, SUSPEND_REASONS } from '../../domain/subscribers/subscriber-lifecycle';
import { activationCodeQrDataUrl } from '../../domain/sims/es2plus.activation-code';
import { findEsimOrder } from '../../domain/sims/esim-orders.repository';
import { findSimById } from '../../domain/sims/inventory.repository';
import { SIM_FORMS } from '../../domain/sims/inventory';
import { esimOrderActivationCodeUpdate, esimOrderSnapshotQuery, esimOrderWorkflowId, type EsimOrderSnapshot } from '../../workflows/esim-order.messages';
import { findBillingAccount } from '../../domain/customers/customers.repository';
import { DomainError } from '../../domain/shared/domain-error';
import { ROLE_GROUPS } from '../../domain/access/roles';
import {
  subscriberActivateUpdate,
  subscriberChangePlanUpdate,
  subscriberRegisteredUpdate,
  subscriberResumeUpdate,
  subscriberSimSwapUpdate,
  subscriberSnapshotQuery,
  subscriberSuspendUpdate,
  subscriberTerminateUpdate,
  subscriberTransferUpdate,
  subscriberWorkflowId,
  type SubscriberSnapshot,
} from '../../workflows/subscriber.messages';
import { allow, builder, type GraphQLContext } from './builder';
import { BillingAccountType, isUuid } from './customers.schema';
import { connection, runMutation, UserErrorType } from './user-errors';
import { stripNulls } from './catalog.schema';

export const SubscriberStateEnum = builder.enumType('SubscriberState', { values: SUBSCRIBER_STATES });
export const SubscriberType = builder.objectRef<Subscriber>('Subscriber');

const LifecycleEventType = builder.objectRef<SubscriberSnapshot['history'][number]>('LifecycleEvent').implement({
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime' }),
    action: t.exposeString('action'),
    from: t.exposeString('from', { nullable: true }),
    to: t.exposeString('to'),
    actor: t.exposeString('actor'),
    reason: t.exposeString('reason', { nullable: true }),
  }),
});

SubscriberType.implement({
  description: 'A line: one MSISDN on one billing account, with its lifecycle run by the workflow `subscriber:<id>`.',
  fields: (t) => ({
    id: t.exposeID('id'),
    msisdn: t.exposeString('msisdn'),
    state: t.expose('state', { type: SubscriberStateEnum }),
    suspendReason: t.exposeString('suspendReason', { nullable: true }),
    workflowId: t.string({ resolve: (s) => subscriberWorkflowId(s.id) }),
    billingAccount: t.field({ type: BillingAccountType, resolve: async (s, _a, ctx) => (await findBillingAccount(ctx.db, s.billingAccountId))! }),
    planCode: t.string({ nullable: true, resolve: async (s, _a, ctx) => (await currentPlanCodes(ctx.db, [s.id])).get(s.id) ?? null }),
    iccid: t.string({ nullable: true, resolve: async (s, _a, ctx) => (s.simId ? ((await findSimById(ctx.db, s.simId))?.iccid ?? null) : null) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    terminatedAt: t.expose('terminatedAt', { type: 'DateTime', nullable: true }),
    lifecycle: t.field({
      type: [LifecycleEventType],
      description: 'Transitions as the lifecycle workflow records them (queried from Temporal).',
      resolve: async (s, _a, ctx) => {
        try {
          return (await ctx.temporal.workflow.getHandle(subscriberWorkflowId(s.id)).query(subscriberSnapshotQuery)).history;
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return [];
          throw err;
        }
      },
    }),
  }),
});

builder.queryFields((t) => ({
  subscribers: t.connection({
    type: SubscriberType,
    ...allow('subscribers', ROLE_GROUPS.staffReaders),
    args: { billingAccountId: t.arg.id(), state: t.arg({ type: SubscriberStateEnum }), msisdn: t.arg.string() },
    resolve: async (_root, args, ctx) =>
      connection(() => listSubscribers(ctx.db, args, {
          billingAccountId: args.billingAccountId && isUuid(args.billingAccountId) ? String(args.billingAccountId) : undefined,
          state: args.state ?? undefined,
          msisdn: args.msisdn ?? undefined,
        })),
  }),
  subscriber: t.field({
    type: SubscriberType,
    nullable: true,
    ...allow('subscriber', ROLE_GROUPS.staffReaders),
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => (isUuid(args.id) ? ((await findSubscriber(ctx.db, String(args.id))) ?? null) : null),
  }),
}));

const subscriberCreateSchema = z.object({
  billingAccountId: z.string().uuid('must be a billing account id'),
  planCode: z.string().min(1, 'is required'),
  msisdn: z.string().regex(/^[1-9][0-9]{6,14}$/, 'must be an E.164 number without +, 7 to 15 digits'),
  iccid: z.string().regex(/^89[0-9]{16,18}$/, 'must be an ICCID of 18 to 20 digits starting with 89').optional(),
  activate: z.boolean().default(true),
  idempotencyKey: z.string().min(8, 'must be at least 8 characters').max(200).optional(),
});

const SubscriberCreateInput = builder.inputType('SubscriberCreateInput', {
  fields: (t) => ({
    billingAccountId: t.id({ required: true }),
    planCode: t.string({ required: true }),
    msisdn: t.string({ required: true }),
    iccid: t.string(),
    activate: t.boolean({ description: 'Activate right away (default true); false leaves the line pending.' }),
    idempotencyKey: t.string({ description: 'Retrying with the same key returns the same line instead of a second one.' }),
  }),
});

const SubscriberCreatePayload = builder
  .objectRef<{ subscriber: Subscriber | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('SubscriberCreatePayload')
  .implement({
    fields: (t) => ({
      subscriber: t.field({ type: SubscriberType, nullable: true, resolve: (p) => p.subscriber }),
      userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
    }),
  });

/** A deterministic id from an idempotency key, so a retried request addresses the same workflow. */
function subscriberIdFor(idempotencyKey?: string): string {
  if (!idempotencyKey) return crypto.randomUUID();
  const h = crypto.createHash('sha256').update(`subscriber:${idempotencyKey}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function createSubscriber(ctx: GraphQLContext, input: z.infer<typeof subscriberCreateSchema>): Promise<Subscriber> {
  const account = await findBillingAccount(ctx.db, input.billingAccountId);
  if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  const subscriberId = subscriberIdFor(input.idempotencyKey);
  const workflowId = subscriberWorkflowId(subscriberId);
  const snapshot = await ctx.temporal.workflow.executeUpdateWithStart(subscriberRegisteredUpdate, {
    startWorkflowOperation: new WithStartWorkflowOperation('subscriberWorkflow', {
      workflowId,
      taskQueue: ctx.config.temporal.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{ subscriberId, billingAccountId: input.billingAccountId, msisdn: input.msisdn, planCode: input.planCode, iccid: input.iccid, actor: ctx.actor }],
    }),
  });
  if (snapshot.state === 'rejected') {
    const field = snapshot.rejection?.code.startsWith('MSISDN') ? ['input', 'msisdn'] : snapshot.rejection?.code.startsWith('PLAN') ? ['input', 'planCode'] : snapshot.rejection?.code.startsWith('SIM') ? ['input', 'iccid'] : null;
    throw new DomainError(snapshot.rejection?.code ?? 'REJECTED', snapshot.rejection?.message ?? 'the line was refused', field);
  }
  if (input.activate && snapshot.state === 'pending') {
    try {
      await ctx.temporal.workflow.getHandle(workflowId).executeUpdate(subscriberActivateUpdate, { args: [{ actor: ctx.actor }] });
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new DomainError('ACTIVATION_REFUSED', err.cause?.message ?? err.message);
      throw err;
    }
  }
  const subscriber = await findSubscriber(ctx.db, subscriberId);
  if (!subscriber) throw new Error(`subscriber ${subscriberId} registered by its workflow but not found in the database`);
  return subscriber;
}

builder.mutationFields((t) => ({
  subscriberCreate: t.field({
    type: SubscriberCreatePayload,
    description: 'Registers a line on a billing account and plan: starts its lifecycle workflow, which writes the billing record.',
    ...allow('subscriberCreate', ['admin', 'integrator', 'storefront']),
    args: { input: t.arg({ type: SubscriberCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) => runMutation('subscriber', subscriberCreateSchema, stripNulls(input), (value) => createSubscriber(ctx, value)),
  }),
}));

// ---- lifecycle operations (issue 4): every one is an update of the line's workflow ----------------

export const SimFormEnum = builder.enumType('SimForm', { values: SIM_FORMS });
const SuspendReasonEnum = builder.enumType('SuspendReason', { values: SUSPEND_REASONS });
const PlanChangeWhenEnum = builder.enumType('PlanChangeWhen', { values: ['now', 'end_of_cycle'] as const });

interface EsimOrderView {
  id: string;
  status: string;
  iccid: string;
  eid: string | null;
  activationCode: string | null;
  failure: { step: string; code: string; message: string } | null;
}

const EsimOrderFailureType = builder.objectRef<{ step: string; code: string; message: string }>('EsimOrderFailure').implement({
  fields: (t) => ({ step: t.exposeString('step'), code: t.exposeString('code'), message: t.exposeString('message') }),
});

export const EsimOrderType = builder.objectRef<EsimOrderView>('EsimOrder').implement({
  description: 'An eSIM order at the SM-DP+ (workflow `esim-order:<id>`). Poll it until `status` is `completed` or `failed`.',
  fields: (t) => ({
    id: t.exposeID('id'),
    workflowId: t.string({ resolve: (o) => esimOrderWorkflowId(o.id) }),
    status: t.exposeString('status', { description: 'ordering, confirming, awaiting_download, downloaded, installed, completed or failed' }),
    iccid: t.exposeString('iccid'),
    eid: t.exposeString('eid', { nullable: true }),
    activationCode: t.exposeString('activationCode', { nullable: true, description: 'LPA:1$<SM-DP+ address>$<matching id>, for the device (or typed in).' }),
    qrCode: t.string({
      nullable: true,
      description: 'The activation code as a QR code image (PNG data URL).',
      resolve: (o) => (o.activationCode ? activationCodeQrDataUrl(o.activationCode) : null),
    }),
    failure: t.field({ type: EsimOrderFailureType, nullable: true, resolve: (o) => o.failure }),
  }),
});

const fromSnapshot = (s: EsimOrderSnapshot): EsimOrderView => ({
  id: s.orderId, status: s.status, iccid: s.iccid, eid: s.eid ?? null, activationCode: s.activationCode ?? null, failure: s.failure ?? null,
});

/** The order as its workflow knows it, or as the billing record has it once the history is gone. */
async function loadEsimOrder(ctx: GraphQLContext, id: string): Promise<EsimOrderView | null> {
  try {
    return fromSnapshot(await ctx.temporal.workflow.getHandle(esimOrderWorkflowId(id)).query(esimOrderSnapshotQuery));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  const r = isUuid(id) ? await findEsimOrder(ctx.db, id) : undefined;
  return r ? { id: r.id, status: r.state, iccid: r.iccid, eid: r.eid, activationCode: r.activationCode, failure: r.failureCode ? { step: 'unknown', code: r.failureCode, message: r.failureMessage ?? '' } : null } : null;
}

/** Waits a little for the activation code so the storefront usually gets it in the same answer. */
async function esimOrderWhenReady(ctx: GraphQLContext, id: string, waitMs = 5_000): Promise<EsimOrderView | null> {
  let timer: NodeJS.Timeout | undefined;
  const handle = ctx.temporal.workflow.getHandle(esimOrderWorkflowId(id));
  try {
    const ready = await Promise.race([
      handle.executeUpdate(esimOrderActivationCodeUpdate).then(fromSnapshot),
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), waitMs);
      }),
    ]);
    return ready ?? (await loadEsimOrder(ctx, id));
  } catch {
    return loadEsimOrder(ctx, id);
  } finally {
    clearTimeout(timer);
  }
}

const FIELD_OF_CODE: [RegExp, string][] = [
  [/^MSISDN/, 'msisdn'], [/^SIM|^SAME_SIM|^SWAP/, 'iccid'], [/^PLAN|^SAME_PLAN|^CURRENCY/, 'planCode'], [/^ACCOUNT|^SAME_ACCOUNT/, 'billingAccountId'],
  [/^INVALID_REASON/, 'reason'], [/^SUBSCRIBER|^OPEN_RESERVATIONS/, 'subscriberId'],
];
function fieldOf(code: string): string[] | null {
  const hit = FIELD_OF_CODE.find(([re]) => re.test(code));
  return hit ? ['input', hit[1]] : null;
}

/** Runs a lifecycle update on the line's workflow; a refusal (validator or billing record) becomes a
 * DomainError, so it reaches the caller as a userError with the workflow's code. */
async function lifecycleUpdate<A>(ctx: GraphQLContext, subscriberId: string, run: (h: WorkflowHandle) => Promise<A>): Promise<{ subscriber: Subscriber; result: A }> {
  const existing = isUuid(subscriberId) ? await findSubscriber(ctx.db, subscriberId) : undefined;
  if (!existing) throw new DomainError('SUBSCRIBER_NOT_FOUND', 'no line has this id', ['input', 'subscriberId']);
  let result: A;
  try {
    result = await run(ctx.temporal.workflow.getHandle(subscriberWorkflowId(subscriberId)));
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const cause = err.cause;
      const code = cause instanceof ApplicationFailure && cause.type ? cause.type : 'REFUSED';
      throw new DomainError(code, cause?.message ?? err.message, fieldOf(code));
    }
    if (err instanceof WorkflowNotFoundError) throw new DomainError('INVALID_STATE', `the line is ${existing.state} and takes no more changes`, ['input', 'subscriberId']);
    throw err;
  }
  return { subscriber: (await findSubscriber(ctx.db, subscriberId))!, result };
}

type LinePayload = { subscriber: Subscriber | null; esimOrder?: EsimOrderView | null; userErrors: { field: string[] | null; message: string; code: string }[] };
const payloadType = (name: string, withOrder = false) =>
  builder.objectRef<LinePayload>(name).implement({
    fields: (t) => ({
      subscriber: t.field({ type: SubscriberType, nullable: true, resolve: (p) => p.subscriber }),
      ...(withOrder ? { esimOrder: t.field({ type: EsimOrderType, nullable: true, description: 'For an eSIM: the order, with the activation code when ready.', resolve: (p) => p.esimOrder ?? null }) } : {}),
      userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
    }),
  });

/** runMutation's payload keyed `subscriber`, with an optional eSIM order beside it. */
async function runLineMutation<S extends z.ZodType>(schema: S, input: unknown, action: (v: z.infer<S>) => Promise<{ subscriber: Subscriber; esimOrder?: EsimOrderView | null }>): Promise<LinePayload> {
  let extra: EsimOrderView | null | undefined;
  const p = await runMutation('subscriber', schema, input, async (v) => {
    const r = await action(v);
    extra = r.esimOrder;
    return r.subscriber;
  });
  return { ...p, esimOrder: extra ?? null };
}

const uuidField = (what: string) => z.string().uuid(`must be a ${what} id`);

const activateSchema = z.object({
  billingAccountId: uuidField('billing account'),
  planCode: z.string().min(1, 'is required'),
  simType: z.enum(SIM_FORMS),
  iccid: z.string().regex(/^89[0-9]{16,18}$/, 'must be an ICCID of 18 to 20 digits starting with 89').optional(),
  msisdn: z.string().regex(/^[1-9][0-9]{6,14}$/, 'must be an E.164 number without +, 7 to 15 digits').optional(),
  eid: z.string().regex(/^[0-9]{32}$/, 'must be an EID of 32 digits').optional(),
  idempotencyKey: z.string().min(8, 'must be at least 8 characters').max(200),
});

const SubscriberActivateInput = builder.inputType('SubscriberActivateInput', {
  fields: (t) => ({
    billingAccountId: t.id({ required: true }),
    planCode: t.string({ required: true }),
    simType: t.field({ type: SimFormEnum, required: true }),
    iccid: t.string({ description: 'A chosen SIM; otherwise the first free one of the type is reserved.' }),
    msisdn: t.string({ description: 'A chosen number; otherwise the first free one of the pool.' }),
    eid: t.string({ description: "The device's EID (eSIM), when known." }),
    idempotencyKey: t.string({ required: true, description: 'Retrying with the same key returns the same line and order.' }),
  }),
});

async function activateLine(ctx: GraphQLContext, input: z.infer<typeof activateSchema>) {
  const account = await findBillingAccount(ctx.db, input.billingAccountId);
  if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  const subscriberId = subscriberIdFor(`activate:${input.idempotencyKey}`);
  const workflowId = subscriberWorkflowId(subscriberId);
  const snapshot = await ctx.temporal.workflow.executeUpdateWithStart(subscriberRegisteredUpdate, {
    startWorkflowOperation: new WithStartWorkflowOperation('subscriberWorkflow', {
      workflowId,
      taskQueue: ctx.config.temporal.taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
      args: [{
        subscriberId, billingAccountId: input.billingAccountId, msisdn: input.msisdn, planCode: input.planCode, iccid: input.iccid,
        simForm: input.simType, eid: input.eid, actor: ctx.actor,
      }],
    }),
  });
  if (snapshot.state === 'rejected') {
    const code = snapshot.rejection?.code ?? 'REJECTED';
    throw new DomainError(code, snapshot.rejection?.message ?? 'the line was refused', fieldOf(code));
  }
  let esimOrder: EsimOrderView | null = null;
  if (snapshot.simForm === 'esim' && snapshot.esimOrderId) {
    esimOrder = await esimOrderWhenReady(ctx, snapshot.esimOrderId);
  } else if (snapshot.state === 'pending') {
    await lifecycleUpdate(ctx, subscriberId, (h) => h.executeUpdate(subscriberActivateUpdate, { args: [{ actor: ctx.actor }] }));
  }
  const subscriber = await findSubscriber(ctx.db, subscriberId);
  if (!subscriber) throw new Error(`subscriber ${subscriberId} registered by its workflow but not found in the database`);
  return { subscriber, esimOrder };
}

const SubscriberRefInput = (name: string, extra: Record<string, 'string' | 'id'> = {}) =>
  builder.inputType(name, {
    fields: (t) => ({
      subscriberId: t.id({ required: true }),
      ...Object.fromEntries(Object.entries(extra).map(([k, kind]) => [k, kind === 'id' ? t.id({ required: true }) : t.string({ required: true })])),
    }),
  });

const SubscriberSuspendInput = builder.inputType('SubscriberSuspendInput', {
  fields: (t) => ({ subscriberId: t.id({ required: true }), reason: t.field({ type: SuspendReasonEnum, required: true }) }),
});
const SubscriberChangePlanInput = builder.inputType('SubscriberChangePlanInput', {
  fields: (t) => ({
    subscriberId: t.id({ required: true }),
    planCode: t.string({ required: true }),
    when: t.field({ type: PlanChangeWhenEnum, required: true, description: 'now: prorated at once; end_of_cycle: the new plan starts with the next period.' }),
  }),
});
const SimSwapInput = builder.inputType('SimSwapInput', {
  fields: (t) => ({
    subscriberId: t.id({ required: true }),
    simType: t.field({ type: SimFormEnum, required: true }),
    iccid: t.string({ description: 'The new SIM (required for a physical SIM; for an eSIM the first free profile when omitted).' }),
    eid: t.string(),
  }),
});

const subscriberRef = z.object({ subscriberId: uuidField('line') });
const suspendSchema = subscriberRef.extend({ reason: z.enum(SUSPEND_REASONS) });
const transferSchema = subscriberRef.extend({ billingAccountId: uuidField('billing account') });
const changePlanSchema = subscriberRef.extend({ planCode: z.string().min(1, 'is required'), when: z.enum(['now', 'end_of_cycle']) });
const simSwapSchema = subscriberRef.extend({
  simType: z.enum(SIM_FORMS),
  iccid: z.string().regex(/^89[0-9]{16,18}$/, 'must be an ICCID of 18 to 20 digits starting with 89').optional(),
  eid: z.string().regex(/^[0-9]{32}$/, 'must be an EID of 32 digits').optional(),
});

const LIFECYCLE_ROLES = ROLE_GROUPS.lifecycle;
const SUSPEND_ROLES: typeof LIFECYCLE_ROLES = ['admin', 'integrator', 'support'];

builder.queryFields((t) => ({
  esimOrder: t.field({
    type: EsimOrderType,
    nullable: true,
    ...allow('esimOrder', ['admin', 'integrator', 'support', 'storefront']),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => (isUuid(args.id) ? loadEsimOrder(ctx, String(args.id)) : null),
  }),
}));

builder.mutationFields((t) => ({
  subscriberActivate: t.field({
    type: payloadType('SubscriberActivatePayload', true),
    description: 'Activates a line: a plan, a physical SIM or an eSIM, an optional number. A physical SIM line is active on return; an eSIM line is pending until the device has downloaded its profile — `esimOrder` carries the activation code (poll `esimOrder(id)`).',
    ...allow('subscriberActivate', ['admin', 'integrator', 'storefront']),
    args: { input: t.arg({ type: SubscriberActivateInput, required: true }) },
    resolve: (_root, { input }, ctx) => runLineMutation(activateSchema, stripNulls(input), (v) => activateLine(ctx, v)),
  }),
  subscriberSuspend: t.field({
    type: payloadType('SubscriberSuspendPayload'),
    ...allow('subscriberSuspend', SUSPEND_ROLES),
    args: { input: t.arg({ type: SubscriberSuspendInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(suspendSchema, stripNulls(input), async (v) =>
        lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberSuspendUpdate, { args: [{ actor: ctx.actor, reason: v.reason }] }))),
  }),
  subscriberResume: t.field({
    type: payloadType('SubscriberResumePayload'),
    ...allow('subscriberResume', SUSPEND_ROLES),
    args: { input: t.arg({ type: SubscriberRefInput('SubscriberResumeInput'), required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(subscriberRef, stripNulls(input), (v) => lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberResumeUpdate, { args: [{ actor: ctx.actor }] }))),
  }),
  subscriberTerminate: t.field({
    type: payloadType('SubscriberTerminatePayload'),
    description: 'Terminates the line: the SIM is retired, the number quarantined, and the final bill requested. A line still pending on its eSIM order: the order is cancelled at the SM-DP+ and the SIM and number go back to the inventory (no final bill).',
    ...allow('subscriberTerminate', LIFECYCLE_ROLES),
    args: { input: t.arg({ type: SubscriberRefInput('SubscriberTerminateInput'), required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(subscriberRef, stripNulls(input), (v) => lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberTerminateUpdate, { args: [{ actor: ctx.actor }] }))),
  }),
  subscriberTransfer: t.field({
    type: payloadType('SubscriberTransferPayload'),
    description: 'Moves the line to another billing account. The balance stays with the old account; line buckets move, pooled ones do not.',
    ...allow('subscriberTransfer', LIFECYCLE_ROLES),
    args: { input: t.arg({ type: SubscriberRefInput('SubscriberTransferInput', { billingAccountId: 'id' }), required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(transferSchema, stripNulls(input), (v) =>
        lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberTransferUpdate, { args: [{ actor: ctx.actor, billingAccountId: v.billingAccountId }] }))),
  }),
  subscriberChangePlan: t.field({
    type: payloadType('SubscriberChangePlanPayload'),
    ...allow('subscriberChangePlan', LIFECYCLE_ROLES),
    args: { input: t.arg({ type: SubscriberChangePlanInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(changePlanSchema, stripNulls(input), (v) =>
        lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberChangePlanUpdate, { args: [{ actor: ctx.actor, planCode: v.planCode, when: v.when }] }))),
  }),
  simSwap: t.field({
    type: payloadType('SimSwapPayload', true),
    description: 'Moves the line to a new SIM (physical ↔ eSIM); the old SIM is retired. An eSIM swap completes when the device has the profile (`esimOrder`).',
    ...allow('simSwap', LIFECYCLE_ROLES),
    args: { input: t.arg({ type: SimSwapInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runLineMutation(simSwapSchema, stripNulls(input), async (v) => {
        const r = await lifecycleUpdate(ctx, v.subscriberId, (h) => h.executeUpdate(subscriberSimSwapUpdate, { args: [{ actor: ctx.actor, form: v.simType, iccid: v.iccid, eid: v.eid }] }));
        const orderId = r.result.pendingSimSwap?.orderId;
        return { subscriber: r.subscriber, esimOrder: orderId ? await esimOrderWhenReady(ctx, orderId) : null };
      }),
  }),
}));
