/** Types and constants of the billing run shared by the workflow (no I/O here: the workflow bundle
 * imports this file), the activities and the repository. */
export interface DueCursor {
  /** next_charge_on of the last subscription seen, YYYY-MM-DD. Informational: batches walk
   * subscriptions by id alone (the claim in billing-run.repository.ts); runs carried over with a
   * cursor keep their shape. */
  date: string;
  /** The last subscription seen: the next batch starts after it. */
  id: string;
}

export const FIRST_CURSOR: DueCursor = { date: '0001-01-01', id: '00000000-0000-0000-0000-000000000000' };

/** A slice of the subscription id space: a run renews its lanes concurrently, each with its own
 * keyset cursor, so a batch's statements on one connection overlap another lane's on a second
 * (the database does the work; one lane keeps one core busy). */
export interface DueLane {
  /** Lowest subscription id in the lane (inclusive). */
  fromId: string;
  /** Highest subscription id in the lane (inclusive). */
  toId: string;
}

export const ALL_SUBSCRIPTIONS: DueLane = { fromId: '00000000-0000-0000-0000-000000000000', toId: 'ffffffff-ffff-ffff-ffff-ffffffffffff' };

/** `count` lanes of equal width over the uuid space (split on the first 32 bits): even for random
 * (v4) ids. Runs started before `billing-run-lanes-at-quantiles` use it; today's cut their lanes at
 * quantiles of the due ids (`lanesSplitAt`), as time-ordered ids crowd one end of the space. */
export function equalWidthLanes(count: number): DueLane[] {
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError(`lanes must be an integer from 1 to 64, not ${count}`);
  const span = 2 ** 32;
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  return Array.from({ length: count }, (_x, i) => ({
    fromId: `${hex(Math.floor((i * span) / count))}-0000-0000-0000-000000000000`,
    toId: `${hex(Math.floor(((i + 1) * span) / count) - 1)}-ffff-ffff-ffff-ffffffffffff`,
  }));
}

/** Lanes that cover the whole uuid space, cut at these ids (each starts a lane): ascending, distinct
 * ids make as many lanes plus one; others are dropped. */
export function lanesSplitAt(ids: string[]): DueLane[] {
  const starts = [...new Set(ids.map((id) => id.toLowerCase()))].filter((id) => UUID.test(id) && id > ALL_SUBSCRIPTIONS.fromId).sort();
  const froms = [ALL_SUBSCRIPTIONS.fromId, ...starts];
  return froms.map((fromId, i) => ({ fromId, toId: i + 1 < froms.length ? uuidBefore(froms[i + 1]) : ALL_SUBSCRIPTIONS.toId }));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The id just below this one (lanes are inclusive at both ends, as the claim's BETWEEN is). */
function uuidBefore(id: string): string {
  const hex = (BigInt(`0x${id.replace(/-/g, '')}`) - 1n).toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Where a lane stands in a run (carried through continue-as-new). */
export interface LaneProgress {
  lane: DueLane;
  cursor: DueCursor;
  done: boolean;
}

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
  /** Lanes renewed concurrently (default DEFAULT_LANES). */
  lanes?: number;
  /** Batches before continue-as-new (default 400; tests make it small). */
  batchesPerRun?: number;
  /** Carried through continue-as-new. `cursor` alone: a run carried over before lanes existed. */
  resume?: { cursor: DueCursor; lanes?: LaneProgress[]; totals: BillingRunTotals; phase: 'charge' | 'grace'; graceAfterId: string };
}

export const billingRunWorkflowId = (cycleDate: string) => `billing-run:${cycleDate}`;
export const BILLING_RUN_SCHEDULE_ID = 'billing-run-daily';
export const DEFAULT_BATCH_SIZE = 5000;
/** Two: the machine the targets were set on has two cores. More lanes than cores only queue in the database. */
export const DEFAULT_LANES = 2;
export const DEFAULT_GRACE_DAYS = 3;
