/**
 * `auto-top-up:<account>:<balance event id>`: one auto top-up per crossing of the account's
 * threshold. Each attempt is a `top-up:<key>` child with its own key (a declined card needs a new
 * key at the gateway); a failing payment is retried on a schedule, and the workflow stops early when
 * auto top-up is switched off or the balance is back above the threshold.
 */
import { executeChild, proxyActivities, sleep } from '@temporalio/workflow';
import type { PaymentActivities } from '../activities/payment.activities';
import { topUpWorkflow, topUpWorkflowId, type TopUpWorkflowResult } from './top-up.workflow';

export interface AutoTopUpInput {
  billingAccountId: string;
  eventId: string;
  /** Waits before each retry (ms); default 1 h, 6 h, 24 h. */
  retryDelaysMs?: number[];
}

export const autoTopUpWorkflowId = (billingAccountId: string, eventId: string) => `auto-top-up:${billingAccountId}:${eventId}`;

const act = proxyActivities<PaymentActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10 } });

export async function autoTopUpWorkflow(input: AutoTopUpInput): Promise<{ status: 'credited' | 'skipped' | 'failed'; attempts: number; last?: TopUpWorkflowResult }> {
  const delays = input.retryDelaysMs ?? [3_600_000, 21_600_000, 86_400_000];
  let last: TopUpWorkflowResult | undefined;
  for (let attempt = 0; attempt <= delays.length; attempt++) {
    if (attempt > 0) await sleep(delays[attempt - 1]);
    const key = `auto:${input.billingAccountId}:${input.eventId}:${attempt}`;
    const opened = await act.autoTopUpOpen({ billingAccountId: input.billingAccountId, key });
    if (!opened) return { status: attempt === 0 ? 'skipped' : 'failed', attempts: attempt, last };
    last = await executeChild(topUpWorkflow, { workflowId: topUpWorkflowId(key), args: [{ key }] });
    if (last.status === 'credited') return { status: 'credited', attempts: attempt + 1, last };
  }
  return { status: 'failed', attempts: delays.length + 1, last };
}
