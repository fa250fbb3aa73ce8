/**
 * The billing run `billing-run:<cycle-date>`: renews every subscription due on or before the date, in
 * batches of thousands (one activity and one set-based statement per batch; never one workflow per
 * subscriber), then takes the lines whose grace period ended to suspension. It starts with the
 * final bills of terminated lines and the postpaid invoices that are due. Rerunning it for the
 * same date charges nothing twice (the charge row per subscription and period is unique).
 * `billingRunScheduledWorkflow` is what the daily Temporal Schedule starts: it runs the day's
 * `billing-run:<date>` as a child with that fixed id, so on-demand and scheduled runs are the same.
 */
import { continueAsNew, executeChild, patched, proxyActivities, startChild, workflowInfo, ParentClosePolicy } from '@temporalio/workflow';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { BillingActivities } from '../activities/billing.activities';
import type { InvoiceActivities } from '../activities/billing-invoice.activities';
import { invoiceWorkflow } from './invoice.workflow';
import { invoiceWorkflowId } from './invoice.messages';
import {
  ALL_SUBSCRIPTIONS,
  DEFAULT_BATCH_SIZE,
  DEFAULT_GRACE_DAYS,
  DEFAULT_LANES,
  FIRST_CURSOR,
  equalWidthLanes,
  ZERO_TOTALS,
  billingRunWorkflowId,
  type BillingBatchResult,
  type BillingRunInput,
  type BillingRunTotals,
} from '../domain/billing/billing-run.types';

const act = proxyActivities<BillingActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

const invoices = proxyActivities<InvoiceActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 20 } });

const FIRST_INVOICE = '00000000-0000-0000-0000-000000000000';

/** Batches per run before continue-as-new (keeps the history small on millions of lines). */
const BATCHES_PER_RUN = 400;


export async function billingRunWorkflow(input: BillingRunInput): Promise<BillingRunTotals> {
  const limit = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const graceDays = input.graceDays ?? DEFAULT_GRACE_DAYS;
  const totals: BillingRunTotals = { ...(input.resume?.totals ?? ZERO_TOTALS) };
  let cursor = input.resume?.cursor ?? FIRST_CURSOR;
  let phase = input.resume?.phase ?? 'charge';
  let graceAfterId = input.resume?.graceAfterId ?? '0';
  if (!input.resume) {
    await act.billingRunStart(input.cycleDate);
    // Final bills of lines terminated before this date: an account whose last line ended gets its open
    // invoice closed here, so the next step issues it. (Patched: runs started before this step existed
    // replay without it.)
    if (patched('final-bill-requests')) {
      let scanned: number;
      do scanned = (await invoices.billingRunFinalBills({ cycleDate: input.cycleDate, limit: 200 })).scanned;
      while (scanned === 200);
    }
    // Postpaid first: open invoices whose period has ended are issued (so this run's fees open the next
    // invoice), then dunned, each by its own `invoice:<id>`.
    let invoiceAfter = FIRST_INVOICE;
    if (patched('invoice-workflows-by-date')) {
      // Issue, then start `invoice:<id>` for every invoice issued for this date, looked up in the
      // database: an issuing step retried after its issues committed returns none of them, and their
      // workflows must still start. The starts are idempotent (fixed ids), so reruns are safe.
      for (;;) {
        const ids = await invoices.billingRunIssueDue({ cycleDate: input.cycleDate, limit: 200, afterId: invoiceAfter });
        if (ids.length < 200) break;
        invoiceAfter = ids[ids.length - 1];
      }
      let startAfter = FIRST_INVOICE;
      for (;;) {
        const page = await invoices.billingRunStartInvoices({
          cycleDate: input.cycleDate, limit: 200, afterId: startAfter, ...(input.dunningDayMs ? { dunningDayMs: input.dunningDayMs } : {}),
        });
        if (!page.lastId || page.scanned < 200) break;
        startAfter = page.lastId;
      }
    } else {
      // Runs started before that patch: the children started from what the issuing step returned.
      for (;;) {
        const ids = await invoices.billingRunIssueDue({ cycleDate: input.cycleDate, limit: 200, afterId: invoiceAfter });
        for (const invoiceId of ids) {
          try {
            await startChild(invoiceWorkflow, {
              workflowId: invoiceWorkflowId(invoiceId), args: [{ invoiceId, asOf: input.cycleDate, ...(input.dunningDayMs ? { dayMs: input.dunningDayMs } : {}) }],
              parentClosePolicy: ParentClosePolicy.ABANDON, workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            });
          } catch (err) {
            if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
          }
        }
        if (ids.length < 200) break;
        invoiceAfter = ids[ids.length - 1];
      }
    }
  }

  let batches = 0;
  const batchesPerRun = input.batchesPerRun ?? BATCHES_PER_RUN;
  let lanes = input.resume?.lanes;
  const carry = () => continueAsNew<typeof billingRunWorkflow>({ ...input, resume: { cursor, lanes, totals, phase, graceAfterId } });
  const addBatch = (r: BillingBatchResult) => {
    totals.claimed += r.claimed;
    totals.charged += r.charged;
    totals.waived += r.waived;
    totals.insufficient += r.insufficient;
  };

  if (phase === 'charge' && (lanes || patched('billing-run-lanes'))) {
    // Lanes of the id space renewed concurrently, each its own keyset loop; a run carried over from
    // before lanes goes on from its cursor as one lane over every id. Lanes are cut at quantiles of
    // the due ids (time-ordered ids crowd one end of the space); runs started before that patch
    // replay lanes of equal width.
    if (!lanes && input.resume) lanes = [{ lane: ALL_SUBSCRIPTIONS, cursor, done: false }];
    if (!lanes) {
      const count = input.lanes ?? DEFAULT_LANES;
      // Equal widths first, in any case: it refuses a bad count here (RangeError), not in 20 activity attempts.
      const equal = equalWidthLanes(count);
      const cut = patched('billing-run-lanes-at-quantiles') ? await act.billingRunLanes({ cycleDate: input.cycleDate, count }) : equal;
      lanes = cut.map((lane) => ({ lane, cursor: FIRST_CURSOR, done: false }));
    }
    let carryOver = false;
    await Promise.all(lanes.map(async (p) => {
      while (!p.done && !carryOver) {
        const r = await act.billingRunBatch({ cycleDate: input.cycleDate, after: p.cursor, limit, graceDays, lane: p.lane });
        addBatch(r);
        if (!r.cursor || r.scanned < limit) p.done = true;
        else p.cursor = r.cursor;
        if (++batches >= batchesPerRun || workflowInfo().continueAsNewSuggested) carryOver = true;
      }
    }));
    if (lanes.some((p) => !p.done)) return carry();
    phase = 'grace';
  }

  while (phase === 'charge') {
    // Runs started before lanes (patch `billing-run-lanes`) replay this one sequential loop.
    const r = await act.billingRunBatch({ cycleDate: input.cycleDate, after: cursor, limit, graceDays });
    addBatch(r);
    if (!r.cursor || r.scanned < limit) {
      phase = 'grace';
      break;
    }
    cursor = r.cursor;
    if (++batches >= batchesPerRun || workflowInfo().continueAsNewSuggested) return carry();
  }

  for (;;) {
    const g = await act.billingRunGraceBatch({ cycleDate: input.cycleDate, afterId: graceAfterId, limit, graceDays });
    totals.suspended += g.suspended;
    if (!g.lastId || g.scanned < limit) break;
    graceAfterId = g.lastId;
    if (++batches >= batchesPerRun || workflowInfo().continueAsNewSuggested) return carry();
  }

  await act.billingRunFinish({ cycleDate: input.cycleDate, totals });
  return totals;
}

/** Started by the daily Schedule: the cycle date is the scheduled day (UTC). */
export async function billingRunScheduledWorkflow(options: { batchSize?: number; graceDays?: number } = {}): Promise<BillingRunTotals | null> {
  const cycleDate = workflowInfo().startTime.toISOString().slice(0, 10);
  try {
    return await executeChild(billingRunWorkflow, {
      workflowId: billingRunWorkflowId(cycleDate),
      args: [{ cycleDate, ...options }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (err) {
    // Already run (or running) for this date, e.g. started on demand: nothing to do.
    if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') return null;
    throw err;
  }
}
