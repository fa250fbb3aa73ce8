import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  proxyActivities,
  setHandler,
  startChild,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ReconciliationActivities } from '../activities/reconciliation.activities';
import {
  previousPeriod,
  reconciliationProgressQuery,
  reconciliationWorkflowId,
  type ReconciliationProgress,
  type ReconciliationWorkflowInput,
  type ReconciliationWorkflowResult,
} from './reconciliation.messages';

const PartnerCodeKey = defineSearchAttributeKey('PartnerCode', SearchAttributeType.KEYWORD);

const short = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['DomainRefusal'] },
});
/** Imports, staging and chunks run long: they heartbeat, and a lost worker is noticed within a minute. */
const long = proxyActivities<ReconciliationActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', nonRetryableErrorTypes: ['DomainRefusal'] },
});

function messageOf(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * `reconciliation:<partner>:<period>` — import the files (if given), create a run (a new
 * version), stage our usage, match every chunk (a few at once; each chunk is idempotent and
 * written in one transaction), settle and report. Progress through a query and the memo.
 */
export async function reconciliationWorkflow(input: ReconciliationWorkflowInput): Promise<ReconciliationWorkflowResult> {
  const info = workflowInfo();
  const period = input.period ?? previousPeriod(info.startTime.getTime());
  const progress: ReconciliationProgress = {
    partnerCode: input.partnerCode,
    period,
    stage: 'importing',
    runId: null,
    version: null,
    chunkCount: 0,
    chunksDone: 0,
    imported: [],
    error: null,
  };
  setHandler(reconciliationProgressQuery, () => progress);
  const memo = () => upsertMemo({ stage: progress.stage, runId: progress.runId, chunksDone: progress.chunksDone, chunkCount: progress.chunkCount });
  try {
    for (const file of input.files ?? []) {
      const r = await long.reconciliationImportFile({ partnerCode: input.partnerCode, path: file, actor: input.actor });
      progress.imported.push({ file, importId: r.importId, records: r.records, duplicate: r.duplicate });
    }
    progress.stage = 'creating';
    const run = await short.reconciliationCreateRun({
      partnerCode: input.partnerCode,
      period,
      actor: input.actor,
      requestKey: `${info.workflowId}/${info.runId}`,
      chunkCount: input.chunkCount,
    });
    progress.runId = run.id;
    progress.version = run.version;
    progress.chunkCount = run.chunkCount;
    progress.stage = 'staging';
    memo();
    await long.reconciliationStage({ runId: run.id });
    progress.stage = 'matching';
    memo();
    let next = 0;
    const lane = async () => {
      for (;;) {
        const chunk = next++;
        if (chunk >= run.chunkCount) return;
        await long.reconciliationMatchChunk({ runId: run.id, chunk });
        progress.chunksDone++;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, input.concurrency ?? 2) }, lane));
    progress.stage = 'settling';
    memo();
    const done = await long.reconciliationFinalize({ runId: run.id });
    progress.stage = 'ready';
    memo();
    return { runId: run.id, version: run.version, status: done.status, counts: done.counts };
  } catch (err) {
    progress.stage = 'failed';
    progress.error = messageOf(err);
    memo();
    if (progress.runId) await short.reconciliationMarkFailed({ runId: progress.runId, error: progress.error });
    throw err instanceof ActivityFailure ? ApplicationFailure.create({ message: progress.error, type: 'ReconciliationFailed', nonRetryable: true, cause: err }) : err;
  }
}

/** Started by the monthly Schedule: one child `reconciliation:<partner>:<previous month>` per partner, with its inbox files. */
export async function reconciliationMonthlyWorkflow(input: { actor?: string } = {}): Promise<string[]> {
  const period = previousPeriod(workflowInfo().startTime.getTime());
  const partners = await short.reconciliationScheduledWork();
  const started: string[] = [];
  for (const p of partners) {
    const workflowId = reconciliationWorkflowId(p.partnerCode, period);
    try {
      await startChild(reconciliationWorkflow, {
        workflowId,
        args: [{ partnerCode: p.partnerCode, period, actor: input.actor ?? 'schedule', files: p.files }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: [{ key: PartnerCodeKey, value: p.partnerCode }],
      });
      started.push(workflowId);
    } catch (err) {
      // already running for this partner and period: leave it alone
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
    }
  }
  return started;
}
