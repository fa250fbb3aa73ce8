/**
 * Money in and out of a billing account's wallet for workflows and staff: top-ups, fees (proration),
 * refunds and manual adjustments. They go through the charging engine — the same batches, row locks
 * and lock order as the real-time hot path — so a top-up never races a data session, and each is
 * one journal entry, idempotent on its key. (The billing run's recurring fees are debited
 * set-based under the same lock order: recurring-debits.repository.ts.)
 */
import type { ChargingEngine } from '../charging/charging-engine';
import type { WalletOp, WalletOpResult } from '../charging/charging.types';
import { DomainError } from '../shared/domain-error';

export interface WalletMovement {
  billingAccountId: string;
  /** Positive micro-units of the wallet's currency. */
  amountMicros: bigint;
  idempotencyKey: string;
  actor: string;
  reason?: string;
  /** Business reference of what caused it: 'top-up:<id>', 'subscription:<id>:<period>'… */
  sourceRef?: string;
  details?: Record<string, unknown>;
}

export type WalletMovementResult = Extract<WalletOpResult, { status: 'applied' | 'duplicate' }>;

/** Credits a wallet (top-up captured at the payment gateway: gateway_cash → wallet). */
export async function creditWallet(
  engine: ChargingEngine, m: WalletMovement & { kind?: 'top_up' | 'refund' | 'credit_note' | 'payment' },
): Promise<WalletMovementResult> {
  positive(m.amountMicros);
  const kind = m.kind ?? 'top_up';
  const counterKind: WalletOp['counterKind'] = kind === 'credit_note' ? 'revenue' : kind === 'payment' ? 'receivables' : 'gateway_cash';
  return apply(engine, {
    kind: 'wallet', billingAccountId: m.billingAccountId, amountMicros: m.amountMicros, entryType: kind, counterKind,
    idempotencyKey: m.idempotencyKey, actor: m.actor, reason: m.reason, sourceRef: m.sourceRef ?? m.idempotencyKey, details: m.details,
  });
}

/** Debits a wallet (a fee, e.g. a proration charge: wallet → revenue). Refused with
 * INSUFFICIENT_FUNDS when the wallet cannot cover it within its credit limit. */
export async function debitWallet(
  engine: ChargingEngine, m: WalletMovement & { kind?: 'recurring_charge' },
): Promise<WalletMovementResult> {
  positive(m.amountMicros);
  return apply(engine, {
    kind: 'wallet', billingAccountId: m.billingAccountId, amountMicros: -m.amountMicros, entryType: m.kind ?? 'recurring_charge',
    counterKind: 'revenue', idempotencyKey: m.idempotencyKey, actor: m.actor, reason: m.reason, sourceRef: m.sourceRef ?? m.idempotencyKey,
    details: m.details,
  });
}

export interface AdjustBalanceCommand {
  billingAccountId: string;
  /** Signed: positive credits the customer, negative debits. */
  amountMicros: bigint;
  reason: string;
  actor: string;
  idempotencyKey: string;
  /** Kept in the journal entry's details (e.g. the caller's role, the amount as requested). */
  details?: Record<string, unknown>;
}

/** A manual balance adjustment by support or finance (adjustments ↔ wallet); the reason is required. */
export async function adjustBalance(engine: ChargingEngine, cmd: AdjustBalanceCommand): Promise<WalletMovementResult> {
  if (!cmd.reason || cmd.reason.trim().length === 0) throw new DomainError('REASON_REQUIRED', 'an adjustment needs a reason', ['input', 'reason']);
  if (cmd.amountMicros === 0n) throw new DomainError('ZERO_AMOUNT', 'the amount must not be zero', ['input', 'amountMicros']);
  return apply(engine, {
    kind: 'wallet', billingAccountId: cmd.billingAccountId, amountMicros: cmd.amountMicros, entryType: 'adjustment', counterKind: 'adjustments',
    idempotencyKey: `adjustment:${cmd.idempotencyKey}`, actor: cmd.actor, reason: cmd.reason.trim(), sourceRef: `adjustment:${cmd.idempotencyKey}`,
    details: cmd.details,
  });
}

async function apply(engine: ChargingEngine, op: WalletOp): Promise<WalletMovementResult> {
  const r = await engine.applyWalletOp(op);
  if (r.status === 'refused') {
    throw new DomainError(r.code, r.message, r.code === 'WALLET_NOT_FOUND' ? ['input', 'billingAccountId'] : ['input', 'amountMicros']);
  }
  return r;
}

function positive(amount: bigint): void {
  if (amount <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amountMicros']);
}
