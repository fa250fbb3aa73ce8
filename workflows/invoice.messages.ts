import { defineQuery, defineSignal } from '@temporalio/workflow';

/** Messages of the invoice and dunning workflow `invoice:<id>`. */
export const invoiceWorkflowId = (invoiceId: string) => `invoice:${invoiceId}`;

export interface DunningTimetable {
  /** Days after issue on which a reminder goes out (and collection is tried again). */
  reminderDays: number[];
  lateFeeMinor: number;
  /** Day the late fee is added to the next invoice; null: no late fee. */
  lateFeeAfterDays: number | null;
  suspendAfterDays: number;
  terminateAfterDays: number;
}

export interface InvoiceWorkflowInput {
  invoiceId: string;
  /** Issue date, YYYY-MM-DD. */
  asOf: string;
  /** Default: the `default` dunning policy from the database. */
  timetable?: DunningTimetable;
  /** Length of a "day" in ms (tests shorten it; default one day). */
  dayMs?: number;
}

export type DunningStep = 'issued' | 'collected' | 'reminder' | 'late_fee' | 'suspended' | 'terminated' | 'paid';

export interface InvoiceWorkflowState {
  invoiceId: string;
  number: string | null;
  outcome: 'open' | 'paid' | 'terminated';
  steps: { step: DunningStep; day: number }[];
}

/** Payment arrived (webhook, manual payment, credit note): stop dunning now. */
export const invoicePaidSignal = defineSignal('invoicePaid');
export const invoiceStateQuery = defineQuery<InvoiceWorkflowState>('invoiceState');
