import { z } from 'zod';
import { ROLE_GROUPS } from '../../domain/access/roles';
import { importSimBatch, listMsisdns, listSims, type Sim, type SimImportReport } from '../../domain/sims/inventory.repository';
import { MSISDN_STATES, SIM_FORMS, SIM_STATES, type MsisdnState } from '../../domain/sims/inventory';
import { allow, builder } from './builder';
import { connection, runMutation, toConnection, UserErrorType } from './user-errors';
import { stripNulls } from './catalog.schema';

/** SIM and number inventory. PIN, PUK and the key reference are never part of the API. */
const SimStateEnum = builder.enumType('SimState', { values: SIM_STATES });
const SimFormInventoryEnum = builder.enumType('SimType', { values: SIM_FORMS, description: 'physical or esim (inventory filter)' });
const MsisdnStateEnum = builder.enumType('MsisdnState', { values: MSISDN_STATES });

const SimType = builder.objectRef<Sim>('Sim').implement({
  description: 'A SIM card or eSIM profile in the inventory.',
  fields: (t) => ({
    id: t.exposeID('id'),
    iccid: t.exposeString('iccid'),
    imsi: t.exposeString('imsi'),
    form: t.exposeString('form'),
    state: t.field({ type: SimStateEnum, resolve: (s) => s.state }),
    batchRef: t.exposeString('batchRef', { nullable: true }),
    eid: t.exposeString('eid', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const MsisdnType = builder.objectRef<{ msisdn: string; state: MsisdnState; quarantinedUntil: Date | null }>('Msisdn').implement({
  fields: (t) => ({
    msisdn: t.exposeString('msisdn'),
    state: t.field({ type: MsisdnStateEnum, resolve: (m) => m.state }),
    quarantinedUntil: t.expose('quarantinedUntil', { type: 'DateTime', nullable: true }),
  }),
});

const RejectReasonType = builder.objectRef<{ code: string; message: string }>('SimImportRejectReason').implement({
  fields: (t) => ({ code: t.exposeString('code'), message: t.exposeString('message') }),
});
const RejectedRowType = builder.objectRef<SimImportReport['rejected'][number]>('SimImportRejectedRow').implement({
  fields: (t) => ({
    line: t.exposeInt('line'),
    iccid: t.exposeString('iccid', { nullable: true }),
    reasons: t.field({ type: [RejectReasonType], resolve: (r) => r.reasons }),
  }),
});
const SimImportReportType = builder.objectRef<SimImportReport>('SimImportReport').implement({
  fields: (t) => ({
    batchRef: t.exposeString('batchRef'),
    form: t.exposeString('form'),
    received: t.exposeInt('received'),
    imported: t.exposeInt('imported'),
    rejected: t.field({ type: [RejectedRowType], resolve: (r) => r.rejected }),
  }),
});

const INVENTORY_READERS = ['admin', 'integrator', 'support'] as typeof ROLE_GROUPS.adminOnly;

builder.queryFields((t) => ({
  sims: t.connection({
    type: SimType,
    ...allow('sims', INVENTORY_READERS),
    args: { state: t.arg({ type: SimStateEnum }), form: t.arg({ type: SimFormInventoryEnum }), batchRef: t.arg.string() },
    resolve: (_root, args, ctx) =>
      connection(() => listSims(ctx.db, args, { state: args.state ?? undefined, form: args.form ?? undefined, batchRef: args.batchRef ?? undefined })),
  }),
  msisdns: t.connection({
    type: MsisdnType,
    description: 'The number pool in order of the number; `after` is a cursor from a previous page.',
    ...allow('msisdns', INVENTORY_READERS),
    args: { state: t.arg({ type: MsisdnStateEnum }) },
    resolve: async (_root, args, ctx) => {
      const after = args.after ? Buffer.from(args.after, 'base64url').toString('utf8') : undefined;
      const page = await listMsisdns(ctx.db, { first: args.first, after: after && /^[0-9]{7,15}$/.test(after) ? after : undefined }, { state: args.state ?? undefined });
      return toConnection({
        items: page.items,
        cursors: page.items.map((m) => Buffer.from(m.msisdn).toString('base64url')),
        hasNextPage: page.hasNextPage,
        hasPreviousPage: Boolean(after),
      });
    },
  }),
}));

const importSchema = z.object({
  csv: z.string().min(1, 'is required').max(5_000_000, 'is over 5 MB: split the batch'),
  batchRef: z.string().min(1, 'is required').max(100),
  form: z.enum(SIM_FORMS).default('physical'),
});

const SimBatchImportInput = builder.inputType('SimBatchImportInput', {
  fields: (t) => ({
    csv: t.string({ required: true, description: 'Header `iccid,imsi,pin1,puk1,key_reference`; a reference to where the keys are held, never a key.' }),
    batchRef: t.string({ required: true }),
    form: t.field({ type: SimFormInventoryEnum, description: 'physical (default) or esim profiles from the SM-DP+ vendor' }),
  }),
});

const SimBatchImportPayload = builder
  .objectRef<{ report: SimImportReport | null; userErrors: { field: string[] | null; message: string; code: string }[] }>('SimBatchImportPayload')
  .implement({
    fields: (t) => ({
      report: t.field({ type: SimImportReportType, nullable: true, resolve: (p) => p.report }),
      userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
    }),
  });

builder.mutationFields((t) => ({
  simBatchImport: t.field({
    type: SimBatchImportPayload,
    description: 'Imports a batch of SIMs from CSV; rows that cannot be taken are reported with their reasons.',
    ...allow('simBatchImport', ROLE_GROUPS.adminOnly),
    args: { input: t.arg({ type: SimBatchImportInput, required: true }) },
    resolve: (_root, { input }, ctx) => runMutation('report', importSchema, stripNulls(input), (v) => importSimBatch(ctx.db, { ...v, actor: ctx.actor })),
  }),
}));
