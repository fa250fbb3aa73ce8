/**
 * `top-up:<idempotency key>`: capture the payment at the gateway → credit the wallet in the ledger
 * → notify, and settle the account's open recurring charges (which resumes a line suspended for
 * non-payment). If the credit cannot be made the payment is refunded (saga compensation). A declined
 * card ends the workflow with status 'declined' and the gateway's reason (the API shows it as a
 * userError), never as a workflow failure.
 */
import { proxyActivities, ApplicationFailure, ActivityFailure } from '@temporalio/workflow';
import type { PaymentActivities } from '../activities/payment.activities';
import type { BillingActivities } from '../activities/billing.activities';

export interface TopUpWorkflowInput {
  key: string;
}

export interface TopUpWorkflowResult {
  status: 'credited' | 'declined' | 'failed' | 'refunded';
  code?: string;
  message?: string;
  paymentRef?: string | null;
}

export const topUpWorkflowId = (key: string) => `top-up:${key}`;

const payments = proxyActivities<PaymentActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});
const billing = proxyActivities<BillingActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5 } });

export async function topUpWorkflow(input: TopUpWorkflowInput): Promise<TopUpWorkflowResult> {
  const capture = await payments.topUpCapture(input.key);
  if (capture.status !== 'succeeded') {
    await payments.topUpNotify({ key: input.key, outcome: 'failed' });
    return { status: capture.status === 'declined' ? 'declined' : 'failed', code: capture.code, message: capture.message, paymentRef: capture.paymentRef };
  }
  try {
    await payments.topUpCredit(input.key);
  } catch (err) {
    const cause = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    await payments.topUpRefund({ key: input.key, reason: cause?.message ?? 'the wallet credit failed' });
    await payments.topUpNotify({ key: input.key, outcome: 'failed' });
    return { status: 'refunded', code: cause?.type ?? 'CREDIT_FAILED', message: 'the balance could not be credited; the payment was refunded', paymentRef: capture.paymentRef };
  }
  await payments.topUpNotify({ key: input.key, outcome: 'completed' });
  const { billingAccountId } = await payments.topUpAccount(input.key);
  await billing.billingSettleAccount({ billingAccountId, cycleDate: new Date().toISOString().slice(0, 10) });
  return { status: 'credited', paymentRef: capture.paymentRef };
}
