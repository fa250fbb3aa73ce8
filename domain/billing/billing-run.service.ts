/**
 * One batch of a billing run, end to end, in three transactions:
 *  1. claim (one statement) → debit the wallets (set-based, domain/ledger/recurring-debits.repository.ts)
 *     → the charge rows, each written once with its outcome, and the batch's fulfilment row. A batch
 *     that dies in here leaves nothing: its retry claims the same subscriptions afresh.
 *  2. allowances (one statement);
 *  3. the postpaid invoice lines, and the fulfilment row deleted.
 * Steps 2 and 3 are keyed (bucket codes, invoice lines by charge), so a batch that dies between them
 * is finished by the lane's next first batch, or the retried batch, from its fulfilment row
 * (`unfinishedFulfilments`), before claiming. Charges left `pending` by a version that claimed and debited
 * in separate transactions are finished there too (`strandedCharges`), and a top-up's settle may.
 */
import type { Knex } from 'knex';
import type { ChargingEngine } from '../charging/charging-engine';
import { debitRecurringChargesWithin, type RecurringDebitOptions } from '../ledger/recurring-debits.repository';
import { minorToMicros } from '../ledger/money';
import { DomainError } from '../shared/domain-error';
import { pgTransaction } from '../shared/pg-connection';
import type { PoolClient } from 'pg';
import {
  claimDueCharges,
  closeFulfilment,
  grantAllowances,
  invoiceCharges,
  recordChargeOutcomes,
  recordFulfilment,
  correctClaimedCharges,
  strandedCharges,
  unfinishedFulfilments,
  type ChargeOutcome,
  type DueCursor,
  type OpenCharge,
} from './billing-run.repository';
import { FIRST_CURSOR, type BillingBatchResult, type DueLane } from './billing-run.types';

export interface BillingBatchOutcome extends BillingBatchResult {
  /** Subscribers whose charge could not be collected this time (grace starts). */
  insufficientSubscriberIds: string[];
}

export interface BillingDeps {
  db: Knex;
  engine: ChargingEngine;
  /** Milliseconds per step of a batch (benchmarks). */
  onPhase?: (phase: string, ms: number) => void;
  /** A batch's fee debits went the locked way (domain/ledger/recurring-debits.repository.ts). */
  onLockedRetry?: RecurringDebitOptions['onLockedRetry'];
}

function phaseTimer(onPhase: (phase: string, ms: number) => void) {
  let last = performance.now();
  return (phase: string) => {
    const now = performance.now();
    onPhase(phase, now - last);
    last = now;
  };
}

export const chargeIdempotencyKey = (chargeId: string) => `recurring-charge:${chargeId}`;

export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** At most this many claims per batch: each renews one period of the subscriptions still behind
 * (a run after days without one); any further periods wait for the next day's run. */
export const MAX_CATCH_UP_CLAIMS = 24;

type BatchInput = { cycleDate: string; after: DueCursor; limit: number; graceDays: number; lane?: DueLane };

export async function runBillingBatch(deps: BillingDeps, input: BatchInput & { retried?: boolean }): Promise<BillingBatchOutcome> {
  // A lane's first batch (a run, or a rerun of a run that failed) and every retried batch first
  // finish what a crashed attempt claimed (`strandedCharges`); the other batches skip the scan.
  let total = input.retried || input.after.id === FIRST_CURSOR.id ? await finishStranded(deps, input) : undefined;
  // The keyset is on id alone, so a subscription still due after its renewal (more than one period
  // behind) lies behind the cursor: claim again from the same start until none is (a claim from there
  // also goes on past the previous batch, so the result's cursor is the last claim's).
  for (let claims = 1; ; claims++) {
    const { behind, ...r } = await renewBatch(deps, input);
    total = total ? addBatchOutcome(total, r) : r;
    if (behind === 0 || claims >= MAX_CATCH_UP_CLAIMS) return total;
  }
}

/** The counts of both; cursor and scanned from the later one. */
function addBatchOutcome(a: BillingBatchOutcome, b: BillingBatchOutcome): BillingBatchOutcome {
  return {
    ...b, claimed: a.claimed + b.claimed, charged: a.charged + b.charged, waived: a.waived + b.waived, lapsed: a.lapsed + b.lapsed,
    insufficient: a.insufficient + b.insufficient, insufficientSubscriberIds: [...new Set([...a.insufficientSubscriberIds, ...b.insufficientSubscriberIds])],
  };
}

/** Debit, then allowances, invoice lines and outcomes (`collect`, `fulfil`) for claimed charges still
 * to pay and waived ones still to fulfil; the counts a batch reports. */
async function payAndFulfil(
  deps: BillingDeps, pending: OpenCharge[], waivedIds: string[], graceUntil: string,
): Promise<Pick<BillingBatchOutcome, 'charged' | 'waived' | 'insufficient' | 'insufficientSubscriberIds'>> {
  const outcomes = await collect(deps, pending);
  await fulfil(deps, outcomes, { waivedIds, graceUntil });
  return outcomeCounts(outcomes, pending, waivedIds.length);
}

/** What a batch reports of its debits' outcomes. */
function outcomeCounts(
  outcomes: ChargeOutcome[], charges: { id: string; subscriberId: string }[], waived: number,
): Pick<BillingBatchOutcome, 'charged' | 'waived' | 'insufficient' | 'insufficientSubscriberIds'> {
  const insufficient = outcomes.filter((o) => o.status === 'insufficient');
  const subscriberOf = new Map(charges.map((c) => [c.id, c.subscriberId]));
  return {
    charged: outcomes.length - insufficient.length, waived,
    insufficient: insufficient.length, insufficientSubscriberIds: [...new Set(insufficient.map((o) => subscriberOf.get(o.id)!))],
  };
}

async function finishStranded(deps: BillingDeps, input: BatchInput): Promise<BillingBatchOutcome | undefined> {
  // What a batch that died after its charges committed still owes: allowances, invoice lines.
  for (const f of await unfinishedFulfilments(deps.db, input.lane)) await fulfilBatch(deps, f.id, f.chargeIds);
  const stranded = await strandedCharges(deps.db, input);
  if (stranded.pending.length === 0 && stranded.waivedIds.length === 0) return undefined;
  // Oldest first, as a batch pays them; a charge debited before the crash comes back charged with
  // its entry, and the buckets and invoice lines are keyed, so nothing is charged or granted twice.
  const paid = await payAndFulfil(deps, stranded.pending, stranded.waivedIds, addDays(input.cycleDate, input.graceDays));
  return { cursor: input.after, scanned: 0, claimed: stranded.pending.length + stranded.waivedIds.length, lapsed: 0, ...paid };
}

async function renewBatch(deps: BillingDeps, input: BatchInput): Promise<BillingBatchOutcome & { behind: number }> {
  const timer = deps.onPhase ? phaseTimer(deps.onPhase) : undefined;
  const { claim, outcomes, owed, fulfilmentId } = await claimAndDebitBatch(deps, input, timer);
  timer?.('commit');
  if (fulfilmentId) {
    // Only postpaid and hybrid fees are invoiced: the invoice step reads those rows alone.
    const invoiced = new Set(claim.charges.filter((ch) => ch.paymentType !== 'prepaid').map((ch) => ch.id));
    await fulfilBatch(deps, fulfilmentId, owed, { invoiceIds: owed.filter((id) => invoiced.has(id)), timer });
  }
  return {
    cursor: claim.cursor,
    scanned: claim.scanned,
    behind: claim.behind,
    claimed: claim.charges.length,
    lapsed: claim.charges.filter((ch) => ch.status === 'lapsed').length,
    ...outcomeCounts(outcomes, claim.charges, claim.charges.filter((ch) => ch.status === 'waived').length),
  };
}

/** Step 1 of a batch, one transaction: claim (every charge row written once), debit, the rows the
 * debit decided otherwise corrected, and the fulfilment row naming the charges whose allowances and
 * invoice lines follow. */
export async function claimAndDebitBatch(deps: BillingDeps, input: BatchInput, timer?: (phase: string) => void) {
  const graceUntil = addDays(input.cycleDate, input.graceDays);
  return pgTransaction(deps.db, async (c) => {
    const claim = await claimDueCharges(c, { cycleDate: input.cycleDate, after: input.after, limit: input.limit, lane: input.lane });
    timer?.('claim');
    const toCollect: OpenCharge[] = claim.charges.flatMap((ch) => (ch.status === 'pending' ? [{ ...ch, status: 'pending' as const }] : []));
    const outcomes = await collectWithin(c, deps, toCollect, { entryIds: claim.entries });
    // The claim wrote each of them charged under its currency's entry; correct the rows where the debit differs.
    const namedEntry = new Map(toCollect.map((ch) => [ch.id, claim.entries[ch.currency]]));
    await correctClaimedCharges(c, outcomes.filter((o) => o.status !== 'charged' || o.journalEntryId !== namedEntry.get(o.id)), graceUntil);
    timer?.('debit');
    const owed = [...claim.charges.filter((ch) => ch.status === 'waived').map((ch) => ch.id), ...outcomes.filter((o) => o.status === 'charged').map((o) => o.id)];
    const fulfilmentId = claim.charges.length === 0 ? null
      : await recordFulfilment(c, { cycleDate: input.cycleDate, firstSubscriptionId: claim.charges[0].subscriptionId, chargeIds: owed });
    return { claim, outcomes, owed, fulfilmentId };
  });
}

/** Steps 2 and 3 of a batch for the charges its fulfilment row names (`grantAndInvoice`), the row
 * deleted with the invoice lines. The batch itself knows which of them to invoice, which saves
 * reading the prepaid rows; recovering a fulfilment row, the invoice step reads them all. */
async function fulfilBatch(
  deps: BillingDeps, fulfilmentId: string, chargeIds: string[], options: { invoiceIds?: string[]; timer?: (phase: string) => void } = {},
): Promise<void> {
  await grantAndInvoice(deps, chargeIds, { owedByBatch: true, ...options }, (c) => closeFulfilment(c, fulfilmentId));
}

/** Allowance buckets for paid (or waived) charges, then in one transaction their postpaid invoice
 * lines and `finish` — what marks them fulfilled (their outcomes, or the batch's fulfilment row
 * deleted), so a retry never bills them twice. Buckets and lines are keyed. */
async function grantAndInvoice(
  deps: BillingDeps, paidIds: string[], options: { owedByBatch?: boolean; invoiceIds?: string[]; timer?: (phase: string) => void },
  finish: (c: PoolClient) => Promise<void>,
): Promise<void> {
  await grantAllowances(deps.db, paidIds, { owedByBatch: options.owedByBatch });
  options.timer?.('allowances');
  await pgTransaction(deps.db, async (c) => {
    await invoiceCharges(c, options.invoiceIds ?? paidIds, { owedByBatch: options.owedByBatch });
    await finish(c);
  });
  options.timer?.('invoice');
}

/** Debits the wallets for these charges in one set-based transaction (domain/ledger/
 * recurring-debits.repository.ts: the payer wallets locked in the charging engine's order, oldest
 * charge first per wallet; once one does not fit, the later ones on that wallet are insufficient
 * too). A charge already debited (a settle retried) comes back charged with its first journal entry.
 * The outcomes are written by `fulfil`, after the allowances and invoice lines. */
export async function collect(deps: BillingDeps, charges: OpenCharge[]): Promise<ChargeOutcome[]> {
  if (charges.length === 0) return [];
  return pgTransaction(deps.db, (c) => collectWithin(c, deps, charges));
}

/** The same debits inside the caller's transaction. `claimed`: a billing batch's, claimed in this
 * transaction — their ids are new (no prior debit to look up), and their fee entries' ids taken. */
async function collectWithin(c: PoolClient, deps: BillingDeps, charges: OpenCharge[], claimed?: { entryIds: Record<string, string> }): Promise<ChargeOutcome[]> {
  if (charges.length === 0) return [];
  const byId = new Map(charges.map((ch) => [ch.id, ch]));
  // Ids are bigint sequence values as decimal strings (no sign, no leading zeros): shorter is smaller,
  // else compare as text — a BigInt per comparison was 2.7 s of CPU over a 1M run.
  const oldestFirst = [...byId.values()].sort((a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const results = await debitRecurringChargesWithin(c, oldestFirst.map((ch) => {
    const amountMicros = minorToMicros(ch.amountMinor, ch.currency);
    if (amountMicros <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amountMicros']);
    return { key: chargeIdempotencyKey(ch.id), billingAccountId: ch.payerAccountId, amountMicros, currency: ch.currency };
  }), {
    actor: 'billing-run', sourceRef: 'billing-run', lowWalletThresholdMicros: deps.engine.policy.lowWalletThresholdMicros, onLockedRetry: deps.onLockedRetry,
    entryIds: claimed?.entryIds, newKeys: claimed !== undefined,
  });
  const outcomes = oldestFirst.map((ch, i): ChargeOutcome => {
    const r = results[i];
    return r.status === 'charged' ? { id: ch.id, status: 'charged', journalEntryId: r.journalEntryId } : { id: ch.id, status: 'insufficient', journalEntryId: null };
  });
  // In the caller's order (the engine path answered per charge, in order).
  const byCharge = new Map(outcomes.map((o) => [o.id, o]));
  return charges.map((ch) => byCharge.get(ch.id)!);
}

/** What follows a debit, for the charges paid (and the waived ones): allowance buckets, then in one
 * transaction the postpaid invoice lines and the outcomes of every charge — so each charge row is
 * updated once. Every step is keyed, so a retry after a crash grants and bills nothing twice. */
export async function fulfil(deps: BillingDeps, outcomes: ChargeOutcome[], options: { waivedIds?: string[]; graceUntil: string }): Promise<void> {
  const waivedIds = options.waivedIds ?? [];
  const paid = [...waivedIds, ...outcomes.filter((o) => o.status === 'charged').map((o) => o.id)];
  await grantAndInvoice(deps, paid, {}, (c) => recordChargeOutcomes(c, outcomes, options.graceUntil, waivedIds));
}

/** Retries open charges (after a top-up, or when grace ends); pays allowances and invoice lines for
 * those now collected. */
export async function settleCharges(deps: BillingDeps, charges: OpenCharge[], cycleDate: string, graceDays: number): Promise<ChargeOutcome[]> {
  const outcomes: ChargeOutcome[] = [];
  // Oldest first, one at a time per account, so a small top-up pays the oldest charge, not a random one,
  // and a younger, smaller charge is still tried after an older one that does not fit (a batch would
  // leave it insufficient too).
  for (const c of charges) outcomes.push(...(await collect(deps, [c])));
  await fulfil(deps, outcomes, { graceUntil: addDays(cycleDate, graceDays) });
  return outcomes;
}
