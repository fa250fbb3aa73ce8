/** Types and constants of the billing run shared by the workflow (no I/O here: the workflow bundle
 * imports this file), the activities and the repository. */
export interface DueCursor {
  /** next_charge_on of the last subscription seen, YYYY-MM-DD. */
  date: string;
  /** Its id. */
  id: string;
}

export const FIRST_CURSOR: DueCursor = { date: '0001-01-01', id: '00000000-0000-0000-0000-000000000000' };

export interface BillingRunTotals {
  claimed: number;
  charged: number;
  waived: number;
  insufficient: number;
  suspended: number;
}

export const ZERO_TOTALS: BillingRunTotals = { claimed: 0, charged: 0, waived: 0, insufficient: 0, suspended: 0 };

export interface BillingBatchResult {
  cursor: DueCursor | null;
  scanned: number;
  claimed: number;
  charged: number;
  waived: number;
  lapsed: number;
  insufficient: number;
}

export interface GraceBatchResult {
  lastId: string | null;
  scanned: number;
  collected: number;
  suspended: number;
}

export interface BillingRunInput {
  /** The cycle date, YYYY-MM-DD (UTC): subscriptions with next_charge_on on or before it are renewed. */
  cycleDate: string;
  /** Subscriptions per batch (one set-based statement each). */
  batchSize?: number;
  /** Days a prepaid line keeps running after a charge it could not pay, before suspension. */
  graceDays?: number;
  /** Length of a dunning "day" for the invoices this run issues (tests); default one day. */
  dunningDayMs?: number;
  /** Carried through continue-as-new. */
  resume?: { cursor: DueCursor; totals: BillingRunTotals; phase: 'charge' | 'grace'; graceAfterId: string };
}

export const billingRunWorkflowId = (cycleDate: string) => `billing-run:${cycleDate}`;
export const BILLING_RUN_SCHEDULE_ID = 'billing-run-daily';
export const DEFAULT_BATCH_SIZE = 5000;
export const DEFAULT_GRACE_DAYS = 3;
