import crypto from 'node:crypto';
import { z } from 'zod';
import { WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { findSubscriber, listSubscribers, currentPlanCodes, type Subscriber } from '../../domain/subscribers/subscribers.repository';
import { SUBSCRIBER_STATES } from '../../domain/subscribers/subscriber-lifecycle';
import { findBillingAccount } from '../../domain/customers/customers.repository';
import { DomainError } from '../../domain/shared/domain-error';
import { ROLE_GROUPS } from '../../domain/access/roles';
import {
  subscriberActivateUpdate,
  subscriberRegisteredUpdate,
  subscriberSnapshotQuery,
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
