/**
 * `invoice:<id>`: issue a postpaid invoice, collect it from the saved payment method, and dun on a
 * timetable — reminders (each with another collection attempt), an optional late fee (on the next
 * invoice: an issued one never changes), suspension and termination of the account's lines through
 * the lifecycle workflows — stopping as soon as the invoice is paid (signal, or seen at any step).
 */
import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import type { InvoiceActivities } from '../activities/billing-invoice.activities';
import { invoicePaidSignal, invoiceStateQuery, type DunningStep, type InvoiceWorkflowInput, type InvoiceWorkflowState } from './invoice.messages';

const act = proxyActivities<InvoiceActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

export async function invoiceWorkflow(input: InvoiceWorkflowInput): Promise<InvoiceWorkflowState> {
  const dayMs = input.dayMs ?? 86_400_000;
  let paid = false;
  const state: InvoiceWorkflowState = { invoiceId: input.invoiceId, number: null, outcome: 'open', steps: [] };
  setHandler(invoicePaidSignal, () => { paid = true; });
  setHandler(invoiceStateQuery, () => state);
  const mark = (step: DunningStep, day: number) => state.steps.push({ step, day });
  let suspended = false;
  const done = async () => {
    if (suspended) await act.invoiceResumeLines({ invoiceId: input.invoiceId });
    state.outcome = 'paid';
    mark('paid', elapsedDays);
    return state;
  };
  let elapsedDays = 0;

  const issued = await act.invoiceIssue({ invoiceId: input.invoiceId, asOf: input.asOf });
  state.number = issued.number;
  mark('issued', 0);
  if (issued.settled) return done();
  if ((await act.invoiceCollect({ invoiceId: input.invoiceId, attempt: 0 })).settled) {
    mark('collected', 0);
    return done();
  }

  const t = input.timetable ?? (await act.invoiceDunningPolicy());
  const steps: { day: number; step: 'reminder' | 'late_fee' | 'suspended' | 'terminated' }[] = [
    ...t.reminderDays.map((day) => ({ day, step: 'reminder' as const })),
    ...(t.lateFeeAfterDays !== null && t.lateFeeMinor > 0 ? [{ day: t.lateFeeAfterDays, step: 'late_fee' as const }] : []),
    { day: t.suspendAfterDays, step: 'suspended' },
    { day: t.terminateAfterDays, step: 'terminated' },
  ];
  steps.sort((a, b) => a.day - b.day);
  let attempt = 1;
  for (const s of steps) {
    if (await condition(() => paid, Math.max(0, (s.day - elapsedDays) * dayMs))) return done();
    elapsedDays = s.day;
    if ((await act.invoiceStatus({ invoiceId: input.invoiceId })).settled) return done();
    switch (s.step) {
      case 'reminder':
        if ((await act.invoiceCollect({ invoiceId: input.invoiceId, attempt: attempt++ })).settled) {
          mark('collected', s.day);
          return done();
        }
        await act.invoiceRemind({ invoiceId: input.invoiceId, day: s.day, final: false });
        break;
      case 'late_fee':
        await act.invoiceLateFee({ invoiceId: input.invoiceId, amountMinor: t.lateFeeMinor, asOf: input.asOf });
        break;
      case 'suspended':
        await act.invoiceRemind({ invoiceId: input.invoiceId, day: s.day, final: true });
        await act.invoiceSuspendLines({ invoiceId: input.invoiceId });
        suspended = true;
        break;
      case 'terminated':
        await act.invoiceTerminateLines({ invoiceId: input.invoiceId });
        mark('terminated', s.day);
        state.outcome = 'terminated';
        return state;
    }
    mark(s.step, s.day);
  }
  return state;
}
