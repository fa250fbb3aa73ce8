/** MNO wholesale reconciliation: partners (rate cards, tolerances), imports, runs with progress,
 * discrepancies, settlement reports and finance approval. */
import { Readable } from 'node:stream';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Knex } from 'knex';
import { apiKeyFromHeaders } from '../../domain/access/api-key';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { z } from 'zod';
import type { Role } from '../../domain/access/roles';
import { DomainError } from '../../domain/shared/domain-error';
import {
  createPartner,
  findPartner,
  listPartners,
  listTerms,
  partnerCreateSchema,
  partnerUpdateSchema,
  rateCardToRows,
  updatePartner,
  type Partner,
  type PartnerTerms,
} from '../../domain/reconciliation/partners';
import {
  approveRun,
  findRun,
  getReport,
  listDiscrepancies,
  listRuns,
  periodBounds,
  RECONCILIATION_CATEGORIES,
  RUN_STATUSES,
  type Discrepancy,
  type ReconciliationRun,
} from '../../domain/reconciliation/reconciliation-runs';
import {
  importWholesaleFile,
  importWholesaleFileFromPath,
  listImports,
  listRejections,
  type WholesaleImportRow,
} from '../../domain/reconciliation/wholesale-import';
import { reconciliationProgressQuery, reconciliationWorkflowId } from '../../workflows/reconciliation.messages';
import { allow, builder } from './builder';
import { connection, runMutation, UserErrorType } from './user-errors';

const READERS: Role[] = ['admin', 'integrator', 'finance'];
const MANAGERS: Role[] = ['admin', 'finance'];
const APPROVERS: Role[] = ['admin', 'finance'];

const ServiceEnum = builder.enumType('WholesaleService', { values: ['data', 'voice', 'sms'] as const });
const CategoryEnum = builder.enumType('ReconciliationCategory', { values: RECONCILIATION_CATEGORIES });
const RunStatusEnum = builder.enumType('ReconciliationRunStatus', { values: RUN_STATUSES });
const IdentityKeyEnum = builder.enumType('SubscriberIdentityKey', { values: ['imsi', 'msisdn'] as const });

type Rate = { service: 'data' | 'voice' | 'sms'; zone: string; microsPerUnit: bigint; unitSize: bigint };
const WholesaleRateType = builder.objectRef<Rate>('WholesaleRate').implement({
  description: 'Price of one started unit (unitSize bytes, seconds or messages) in micro-units of the partner currency.',
  fields: (t) => ({
    service: t.expose('service', { type: ServiceEnum }),
    zone: t.exposeString('zone'),
    microsPerUnit: t.expose('microsPerUnit', { type: 'BigInt' }),
    unitSize: t.expose('unitSize', { type: 'BigInt' }),
  }),
});

const PartnerTermsType = builder.objectRef<PartnerTerms>('ReconciliationPartnerTerms').implement({
  description: 'A version of the partner terms: matching tolerances and the wholesale rate card, in force from a date.',
  fields: (t) => ({
    version: t.exposeInt('version'),
    effectiveFrom: t.exposeString('effectiveFrom'),
    timeWindowMs: t.int({ resolve: (x) => x.tolerances.timeWindowMs }),
    volumeRelativePpm: t.int({ resolve: (x) => x.tolerances.volumeRelativePpm }),
    volumeAbsoluteData: t.field({ type: 'BigInt', resolve: (x) => x.tolerances.volumeAbsolute.data ?? 0n }),
    volumeAbsoluteVoice: t.field({ type: 'BigInt', resolve: (x) => x.tolerances.volumeAbsolute.voice ?? 0n }),
    volumeAbsoluteSms: t.field({ type: 'BigInt', resolve: (x) => x.tolerances.volumeAbsolute.sms ?? 0n }),
    amountToleranceMicros: t.field({ type: 'BigInt', resolve: (x) => x.tolerances.amountMicros }),
    rates: t.field({ type: [WholesaleRateType], resolve: (x) => rateCardToRows(x.rateCard) }),
    createdBy: t.exposeString('createdBy'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const PartnerType = builder.objectRef<Partner>('ReconciliationPartner').implement({
  description: 'A host MNO whose wholesale usage files are reconciled.',
  fields: (t) => ({
    id: t.exposeID('id'),
    code: t.exposeString('code'),
    name: t.exposeString('name'),
    currency: t.exposeString('currency'),
    identityKey: t.expose('identityKey', { type: IdentityKeyEnum }),
    columnMapping: t.field({ type: 'JSON', nullable: true, resolve: (p) => p.columnMapping }),
    terms: t.field({ type: [PartnerTermsType], description: 'Every version, newest first.', resolve: (p, _a, ctx) => listTerms(ctx.db, p.id) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const RejectionType = builder.objectRef<{ lineNumber: number; reason: string; raw: string }>('WholesaleRejectedRow').implement({
  fields: (t) => ({ lineNumber: t.exposeInt('lineNumber'), reason: t.exposeString('reason'), raw: t.exposeString('raw') }),
});

const ImportType = builder.objectRef<WholesaleImportRow>('WholesaleImport').implement({
  description: 'One imported MNO file.',
  fields: (t) => ({
    id: t.exposeID('id'),
    partnerCode: t.exposeString('partnerCode'),
    fileName: t.exposeString('fileName'),
    source: t.exposeString('source'),
    contentSha256: t.exposeString('contentSha256'),
    lines: t.exposeInt('lines'),
    records: t.exposeInt('records'),
    rejected: t.exposeInt('rejected'),
    firstStartedAt: t.expose('firstStartedAt', { type: 'DateTime', nullable: true }),
    lastStartedAt: t.expose('lastStartedAt', { type: 'DateTime', nullable: true }),
    importedBy: t.exposeString('importedBy'),
    importedAt: t.expose('importedAt', { type: 'DateTime' }),
    rejections: t.field({
      type: [RejectionType],
      description: 'Malformed rows with their line numbers (up to `first`).',
      args: { first: t.arg.int() },
      resolve: (i, args, ctx) => listRejections(ctx.db, i.id, Math.min(Math.max(args.first ?? 100, 1), 1000)),
    }),
  }),
});

type Side = NonNullable<Discrepancy['mno']> & { ratedUsageId?: string };
const RecordSideType = builder.objectRef<Side>('ReconciliationRecordSide').implement({
  fields: (t) => ({
    ratedUsageId: t.exposeID('ratedUsageId', { nullable: true }),
    key: t.exposeString('key', { description: 'IMSI or MSISDN, as the partner matches.' }),
    service: t.exposeString('service'),
    zone: t.exposeString('zone'),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    volume: t.expose('volume', { type: 'BigInt' }),
    amountMicros: t.expose('amountMicros', { type: 'BigInt', description: 'MNO side: the claimed wholesale amount; our side: the retail amount charged.' }),
  }),
});

const DiscrepancyType = builder.objectRef<Discrepancy>('ReconciliationDiscrepancy').implement({
  description: 'A record (or pair) that did not match cleanly, both sides side by side.',
  fields: (t) => ({
    id: t.exposeID('id'),
    category: t.expose('category', { type: CategoryEnum }),
    side: t.exposeString('side'),
    importId: t.exposeID('importId', { nullable: true }),
    lineNumber: t.exposeInt('lineNumber', { nullable: true }),
    recordId: t.exposeString('recordId', { nullable: true }),
    mno: t.field({ type: RecordSideType, nullable: true, resolve: (d) => d.mno }),
    ours: t.field({ type: RecordSideType, nullable: true, resolve: (d) => d.ours }),
    rateCardMicros: t.field({ type: 'BigInt', nullable: true, resolve: (d) => d.rateCardMicros }),
    amountAtStakeMicros: t.expose('amountAtStakeMicros', { type: 'BigInt' }),
  }),
});

type Report = { runId: string };
const SettlementReportType = builder.objectRef<Report>('SettlementReport').implement({
  description: 'The settlement of a run: CSV, readable HTML and a JSON summary (also at the `*Url` paths, with the same API key).',
  fields: (t) => ({
    csvUrl: t.string({ resolve: (r) => `/reconciliation/runs/${r.runId}/report.csv` }),
    htmlUrl: t.string({ resolve: (r) => `/reconciliation/runs/${r.runId}/report.html` }),
    jsonUrl: t.string({ resolve: (r) => `/reconciliation/runs/${r.runId}/report.json` }),
    csv: t.string({ nullable: true, resolve: (r, _a, ctx) => getReport(ctx.db, r.runId, 'csv') }),
    html: t.string({ nullable: true, resolve: (r, _a, ctx) => getReport(ctx.db, r.runId, 'html') }),
    summary: t.field({ type: 'JSON', nullable: true, resolve: async (r, _a, ctx) => JSON.parse((await getReport(ctx.db, r.runId, 'json')) ?? 'null') }),
  }),
});

const RunType = builder.objectRef<ReconciliationRun>('ReconciliationRun').implement({
  description: 'One reconciliation of a partner and month (a version; approved runs are immutable).',
  fields: (t) => ({
    id: t.exposeID('id'),
    partnerCode: t.exposeString('partnerCode'),
    period: t.exposeString('period'),
    version: t.exposeInt('version'),
    status: t.expose('status', { type: RunStatusEnum }),
    chunkCount: t.exposeInt('chunkCount'),
    chunksDone: t.exposeInt('chunksDone'),
    progress: t.float({ description: '0..1, chunks matched.', resolve: (r) => (r.chunkCount ? r.chunksDone / r.chunkCount : 0) }),
    counts: t.field({ type: 'JSON', nullable: true, description: 'Records per category.', resolve: (r) => r.summary?.counts ?? null }),
    totals: t.field({ type: 'JSON', nullable: true, resolve: (r) => r.summary?.totals ?? null }),
    error: t.exposeString('error', { nullable: true }),
    workflowId: t.exposeString('workflowId', { nullable: true }),
    requestedBy: t.exposeString('requestedBy'),
    approvedBy: t.exposeString('approvedBy', { nullable: true }),
    approvedAt: t.expose('approvedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    settlement: t.field({ type: SettlementReportType, nullable: true, resolve: (r) => (r.status === 'ready' || r.status === 'approved' ? { runId: r.id } : null) }),
    discrepancies: t.connection({
      type: DiscrepancyType,
      args: { category: t.arg({ type: CategoryEnum }) },
      resolve: (r, args, ctx) => connection(() => listDiscrepancies(ctx.db, r.id, { category: args.category, first: args.first, after: args.after })),
    }),
  }),
});

type Progress = { workflowId: string; stage: string; runId: string | null; chunksDone: number; chunkCount: number };
const StartedType = builder.objectRef<Progress>('ReconciliationStarted').implement({
  fields: (t) => ({
    workflowId: t.exposeString('workflowId'),
    stage: t.exposeString('stage'),
    runId: t.exposeID('runId', { nullable: true }),
    chunksDone: t.exposeInt('chunksDone'),
    chunkCount: t.exposeInt('chunkCount'),
  }),
});

builder.queryFields((t) => ({
  reconciliationPartners: t.field({
    type: [PartnerType],
    ...allow('reconciliationPartners', READERS),
    resolve: (_r, _a, ctx) => listPartners(ctx.db),
  }),
  reconciliationPartner: t.field({
    type: PartnerType,
    nullable: true,
    ...allow('reconciliationPartner', READERS),
    args: { code: t.arg.string({ required: true }) },
    resolve: (_r, args, ctx) => findPartner(ctx.db, args.code),
  }),
  wholesaleImports: t.field({
    type: [ImportType],
    ...allow('wholesaleImports', READERS),
    args: { partnerCode: t.arg.string() },
    resolve: (_r, args, ctx) => listImports(ctx.db, args.partnerCode ?? undefined),
  }),
  reconciliationRuns: t.field({
    type: [RunType],
    ...allow('reconciliationRuns', READERS),
    args: { partnerCode: t.arg.string(), period: t.arg.string() },
    resolve: (_r, args, ctx) => listRuns(ctx.db, { partnerCode: args.partnerCode ?? undefined, period: args.period ?? undefined }),
  }),
  reconciliationRun: t.field({
    type: RunType,
    nullable: true,
    ...allow('reconciliationRun', READERS),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => findRun(ctx.db, String(args.id)),
  }),
  reconciliationProgress: t.field({
    type: StartedType,
    nullable: true,
    description: 'Live progress of the `reconciliation:<partner>:<period>` workflow (Temporal query).',
    ...allow('reconciliationProgress', READERS),
    args: { partnerCode: t.arg.string({ required: true }), period: t.arg.string({ required: true }) },
    resolve: async (_r, args, ctx) => {
      const workflowId = reconciliationWorkflowId(args.partnerCode, args.period);
      try {
        const p = await ctx.temporal.workflow.getHandle(workflowId).query(reconciliationProgressQuery);
        return { workflowId, stage: p.stage, runId: p.runId, chunksDone: p.chunksDone, chunkCount: p.chunkCount };
      } catch {
        return null;
      }
    },
  }),
}));

const RateInput = builder.inputType('WholesaleRateInput', {
  fields: (t) => ({
    service: t.field({ type: ServiceEnum, required: true }),
    zone: t.string({ required: true }),
    microsPerUnit: t.field({ type: 'BigInt', required: true }),
    unitSize: t.field({ type: 'BigInt', required: true }),
  }),
});
const TolerancesInput = builder.inputType('ReconciliationTolerancesInput', {
  fields: (t) => ({
    timeWindowMs: t.int(),
    volumeRelativePpm: t.int(),
    volumeAbsoluteData: t.field({ type: 'BigInt' }),
    volumeAbsoluteVoice: t.field({ type: 'BigInt' }),
    volumeAbsoluteSms: t.field({ type: 'BigInt' }),
    amountMicros: t.field({ type: 'BigInt' }),
  }),
});
const PartnerCreateInput = builder.inputType('ReconciliationPartnerCreateInput', {
  fields: (t) => ({
    code: t.string({ required: true }),
    name: t.string({ required: true }),
    currency: t.string({ required: true }),
    identityKey: t.field({ type: IdentityKeyEnum }),
    columnMapping: t.field({ type: 'JSON' }),
    tolerances: t.field({ type: TolerancesInput }),
    rateCard: t.field({ type: [RateInput], required: true }),
    effectiveFrom: t.string(),
  }),
});
const PartnerUpdateInput = builder.inputType('ReconciliationPartnerUpdateInput', {
  fields: (t) => ({
    code: t.string({ required: true }),
    name: t.string(),
    identityKey: t.field({ type: IdentityKeyEnum }),
    columnMapping: t.field({ type: 'JSON' }),
    tolerances: t.field({ type: TolerancesInput }),
    rateCard: t.field({ type: [RateInput] }),
    effectiveFrom: t.string({ description: 'New terms apply from this date (YYYY-MM-DD); default today.' }),
  }),
});
const ImportInput = builder.inputType('WholesaleImportCreateInput', {
  fields: (t) => ({
    partnerCode: t.string({ required: true }),
    fileName: t.string(),
    content: t.string({ description: 'The file as text (small files). Large files: POST the bytes to /reconciliation/partners/<code>/imports.' }),
    contentBase64: t.string({ description: 'The file base64-encoded (e.g. gzip).' }),
    path: t.string({ description: 'A file on the server (admin only).' }),
  }),
});
const RunStartInput = builder.inputType('ReconciliationRunStartInput', {
  fields: (t) => ({ partnerCode: t.string({ required: true }), period: t.string({ required: true, description: 'YYYY-MM' }) }),
});
const RunApproveInput = builder.inputType('ReconciliationRunApproveInput', { fields: (t) => ({ runId: t.id({ required: true }) }) });

type Errors = { field: string[] | null; message: string; code: string }[];
const PartnerPayload = builder.objectRef<{ partner: Partner | null; userErrors: Errors }>('ReconciliationPartnerPayload').implement({
  fields: (t) => ({
    partner: t.field({ type: PartnerType, nullable: true, resolve: (p) => p.partner }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});
const ImportPayload = builder.objectRef<{ import: WholesaleImportRow | null; userErrors: Errors }>('WholesaleImportCreatePayload').implement({
  fields: (t) => ({
    import: t.field({ type: ImportType, nullable: true, resolve: (p) => p.import }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});
const StartPayload = builder.objectRef<{ reconciliation: Progress | null; userErrors: Errors }>('ReconciliationRunStartPayload').implement({
  fields: (t) => ({
    reconciliation: t.field({ type: StartedType, nullable: true, resolve: (p) => p.reconciliation }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});
const ApprovePayload = builder.objectRef<{ run: ReconciliationRun | null; userErrors: Errors }>('ReconciliationRunApprovePayload').implement({
  fields: (t) => ({
    run: t.field({ type: RunType, nullable: true, resolve: (p) => p.run }),
    userErrors: t.field({ type: [UserErrorType], resolve: (p) => p.userErrors }),
  }),
});

const strip = <T>(v: T): T =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? (Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, strip(x)])) as T)
    : Array.isArray(v)
      ? (v.map(strip) as T)
      : v;

const importSchema = z
  .object({
    partnerCode: z.string().min(1),
    fileName: z.string().min(1).max(255).optional(),
    content: z.string().optional(),
    contentBase64: z.string().optional(),
    path: z.string().optional(),
  })
  .refine((v) => [v.content, v.contentBase64, v.path].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of content, contentBase64 or path',
    path: ['content'],
  });

builder.mutationFields((t) => ({
  reconciliationPartnerCreate: t.field({
    type: PartnerPayload,
    ...allow('reconciliationPartnerCreate', MANAGERS),
    args: { input: t.arg({ type: PartnerCreateInput, required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('partner', partnerCreateSchema, strip(input), (v) => createPartner(ctx.db, v, ctx.actor)),
  }),
  reconciliationPartnerUpdate: t.field({
    type: PartnerPayload,
    ...allow('reconciliationPartnerUpdate', MANAGERS),
    args: { input: t.arg({ type: PartnerUpdateInput, required: true }) },
    resolve: (_r, { input }, ctx) => runMutation('partner', partnerUpdateSchema, strip(input), (v) => updatePartner(ctx.db, v, ctx.actor)),
  }),
  wholesaleImportCreate: t.field({
    type: ImportPayload,
    ...allow('wholesaleImportCreate', MANAGERS),
    args: { input: t.arg({ type: ImportInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      runMutation('import', importSchema, strip(input), async (v) => {
        let r;
        if (v.path !== undefined) {
          if (ctx.role !== 'admin') throw new DomainError('FORBIDDEN_PATH', 'only admin may import a server path', ['input', 'path']);
          r = await importWholesaleFileFromPath(ctx.db, { partnerCode: v.partnerCode, path: v.path, actor: ctx.actor });
        } else {
          const bytes = v.content !== undefined ? Buffer.from(v.content, 'utf8') : Buffer.from(v.contentBase64 ?? '', 'base64');
          r = await importWholesaleFile(ctx.db, {
            partnerCode: v.partnerCode,
            input: Readable.from([bytes]),
            fileName: v.fileName ?? 'upload.csv',
            source: 'upload',
            actor: ctx.actor,
          });
        }
        return (await listImports(ctx.db, v.partnerCode)).find((i) => i.id === r.importId) ?? null;
      }),
  }),
  reconciliationRunStart: t.field({
    type: StartPayload,
    description: 'Start (on demand) the workflow `reconciliation:<partner>:<period>`; a rerun makes a new run version.',
    ...allow('reconciliationRunStart', MANAGERS),
    args: { input: t.arg({ type: RunStartInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      runMutation('reconciliation', z.object({ partnerCode: z.string().min(1), period: z.string() }), input, async (v) => {
        periodBounds(v.period);
        if (!(await findPartner(ctx.db, v.partnerCode))) throw new DomainError('PARTNER_NOT_FOUND', `no partner with code '${v.partnerCode}'`, ['input', 'partnerCode']);
        const workflowId = reconciliationWorkflowId(v.partnerCode, v.period);
        try {
          await ctx.temporal.workflow.start('reconciliationWorkflow', {
            workflowId,
            taskQueue: ctx.config.temporal.taskQueue,
            args: [{ partnerCode: v.partnerCode, period: v.period, actor: ctx.actor }],
            searchAttributes: { PartnerCode: [v.partnerCode] },
            memo: { partnerCode: v.partnerCode, period: v.period },
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            throw new DomainError('ALREADY_RUNNING', `a reconciliation of ${v.partnerCode} ${v.period} is already running`, ['input', 'period']);
          }
          throw err;
        }
        return { workflowId, stage: 'started', runId: null, chunksDone: 0, chunkCount: 0 };
      }),
  }),
  reconciliationRunApprove: t.field({
    type: ApprovePayload,
    description: 'Finance approval: the run and its results become immutable.',
    ...allow('reconciliationRunApprove', APPROVERS),
    args: { input: t.arg({ type: RunApproveInput, required: true }) },
    resolve: (_r, { input }, ctx) =>
      runMutation('run', z.object({ runId: z.union([z.string(), z.number()]).transform(String) }), input, async (v) => {
        if (!(await findRun(ctx.db, v.runId))) throw new DomainError('RUN_NOT_FOUND', `no reconciliation run ${v.runId}`, ['input', 'runId']);
        return approveRun(ctx.db, v.runId, ctx.actor);
      }),
  }),
}));

// ---------------------------------------------------------------------------------------------
// HTTP: streamed upload of big files and report downloads (mounted at /reconciliation by api/app.ts)
// ---------------------------------------------------------------------------------------------

/**
 *   POST /reconciliation/partners/:code/imports?fileName=jan.csv.gz   body: the file's bytes (any size, streamed)
 *   GET  /reconciliation/runs/:id/report.(csv|html|json)
 * Both need an API key (admin or finance to upload; admin, integrator or finance to read).
 */
export function createReconciliationRouter(deps: {
  db: Knex;
  resolveApiKey: (key: string) => Promise<{ role: Role; actor: string } | undefined>;
}) {
  const router = Router();
  const fail = (res: Response, status: number, code: string, message: string) => res.status(status).json({ errors: [{ message, extensions: { code } }] });
  const auth = (roles: Role[]) => async (req: Request, res: Response, next: NextFunction) => {
    const key = apiKeyFromHeaders(req.headers);
    if (!key) return fail(res, 401, 'UNAUTHENTICATED', 'an API key is required: send `Authorization: Bearer <key>`');
    try {
      const a = await deps.resolveApiKey(key);
      if (!a) return fail(res, 401, 'UNAUTHENTICATED', 'unknown or revoked API key');
      if (!roles.includes(a.role)) return fail(res, 403, 'FORBIDDEN', `the ${a.role} role may not do this`);
      res.locals.auth = a;
      next();
    } catch (err) {
      next(err);
    }
  };
  router.post('/partners/:code/imports', auth(MANAGERS), async (req, res, next) => {
    try {
      const fileName = typeof req.query.fileName === 'string' && req.query.fileName ? req.query.fileName.slice(0, 255) : 'upload.csv';
      const r = await importWholesaleFile(deps.db, { partnerCode: String(req.params.code), input: req, fileName, source: 'upload', actor: res.locals.auth.actor });
      res.status(201).json({ import: r });
    } catch (err) {
      if (err instanceof DomainError) {
        req.resume();
        return fail(res, err.code === 'PARTNER_NOT_FOUND' ? 404 : err.code === 'DUPLICATE_FILE' ? 409 : 422, err.code, err.message);
      }
      next(err);
    }
  });
  router.get('/runs/:id/report.:format', auth(READERS), async (req, res, next) => {
    try {
      const format = String(req.params.format);
      if (format !== 'csv' && format !== 'html' && format !== 'json') return fail(res, 404, 'NOT_FOUND', 'report formats: csv, html, json');
      const run = await findRun(deps.db, String(req.params.id));
      const content = run ? await getReport(deps.db, run.id, format) : null;
      if (!run || content === null) return fail(res, 404, 'NOT_FOUND', 'no report for this run (yet)');
      const type = { csv: 'text/csv; charset=utf-8', html: 'text/html; charset=utf-8', json: 'application/json; charset=utf-8' }[format];
      res.setHeader('Content-Type', type);
      if (format === 'csv') res.setHeader('Content-Disposition', `attachment; filename="settlement-${run.partnerCode}-${run.period}-v${run.version}.csv"`);
      res.send(content);
    } catch (err) {
      next(err);
    }
  });
  return router;
}
