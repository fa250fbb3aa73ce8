/** Client side (not in the workflow bundle): the daily Schedule that starts the billing run, created
 * idempotently when the stack starts, and an on-demand start for a given date. */
import { ScheduleAlreadyRunning, WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { BILLING_RUN_SCHEDULE_ID, billingRunWorkflowId, type BillingRunInput, type BillingRunTotals } from '../domain/billing/billing-run.types';

export async function ensureBillingRunSchedule(client: Client, taskQueue: string, options: { hourUtc?: number } = {}): Promise<'created' | 'exists'> {
  try {
    await client.schedule.create({
      scheduleId: BILLING_RUN_SCHEDULE_ID,
      spec: { calendars: [{ hour: options.hourUtc ?? 2, minute: 0 }] },
      action: { type: 'startWorkflow', workflowType: 'billingRunScheduledWorkflow', taskQueue, args: [{}] },
      policies: { catchupWindow: '1 day' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}

/** Starts (or joins) `billing-run:<date>` and waits for its totals. */
export async function runBillingRunNow(client: Client, taskQueue: string, input: BillingRunInput): Promise<BillingRunTotals> {
  const workflowId = billingRunWorkflowId(input.cycleDate);
  try {
    const handle = await client.workflow.start('billingRunWorkflow', { workflowId, taskQueue, args: [input] });
    return (await handle.result()) as BillingRunTotals;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return (await client.workflow.getHandle(workflowId).result()) as BillingRunTotals;
    throw err;
  }
}
