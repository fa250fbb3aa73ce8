/**
 * Vouchers: batch-generated single-use PINs. Only a keyed hash of each PIN is stored (HMAC-SHA256
 * with a server-side pepper), so a database leak does not leak spendable PINs. Redemption is one
 * conditional UPDATE (`status = 'active'` → 'redeemed'): of two concurrent attempts exactly one
 * matches the row, the other finds it redeemed. The wallet credit then goes through the charging
 * engine with the voucher's id as idempotency key; a redemption interrupted between the two steps is
 * finished by the same account retrying the same PIN.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { ChargingEngine } from '../charging/charging-engine';
import { creditWallet } from '../ledger/wallet-operations';
import { minorToMicros } from '../ledger/money';
import { DomainError } from '../shared/domain-error';

const PIN_DIGITS = 16;

export function voucherPepper(): string {
  return process.env.VOUCHER_PEPPER ?? 'mvno-bss-dev-voucher-pepper';
}

export function hashPin(pin: string, pepper = voucherPepper()): Buffer {
  return crypto.createHmac('sha256', pepper).update(pin.replace(/[\s-]/g, '')).digest();
}

export function generatePin(): string {
  let pin = '';
  while (pin.length < PIN_DIGITS) pin += crypto.randomInt(0, 10).toString();
  return pin;
}

export interface VoucherBatch {
  id: string;
  currency: string;
  amountMinor: bigint;
  count: number;
  expiresAt: Date;
  /** Returned once, at creation; never stored. */
  pins: { serial: string; pin: string }[];
}

export async function createVoucherBatch(
  db: Knex, input: { count: number; amountMinor: bigint; currency: string; expiresAt: Date; actor: string },
): Promise<VoucherBatch> {
  if (!Number.isInteger(input.count) || input.count < 1 || input.count > 10_000) throw new DomainError('INVALID_COUNT', 'count must be 1 to 10000', ['input', 'count']);
  if (input.amountMinor <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amountMinor']);
  if (input.expiresAt <= new Date()) throw new DomainError('INVALID_EXPIRY', 'expiresAt must be in the future', ['input', 'expiresAt']);
  return db.transaction(async (trx) => {
    const [batch] = await trx('voucher_batches')
      .insert({ currency: input.currency, amount_minor: input.amountMinor.toString(), count: input.count, expires_at: input.expiresAt, created_by: input.actor })
      .returning('*');
    const pins = Array.from({ length: input.count }, (_, i) => ({ serial: `${String(batch.id).slice(0, 8)}-${String(i + 1).padStart(5, '0')}`, pin: generatePin() }));
    for (let i = 0; i < pins.length; i += 1000) {
      await trx('vouchers').insert(pins.slice(i, i + 1000).map((p) => ({ batch_id: batch.id, serial: p.serial, pin_hash: hashPin(p.pin) })));
    }
    return { id: batch.id, currency: String(batch.currency).trim(), amountMinor: input.amountMinor, count: input.count, expiresAt: batch.expires_at, pins };
  });
}

export interface Redemption {
  voucherId: string;
  serial: string;
  amountMinor: bigint;
  currency: string;
  journalEntryId: string | null;
  balanceMicros: bigint;
}

export async function redeemVoucher(db: Knex, engine: ChargingEngine, input: { pin: string; billingAccountId: string; actor: string }): Promise<Redemption> {
  const hash = hashPin(input.pin);
  const account = await db('billing_accounts').where({ id: input.billingAccountId }).first('currency');
  if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  const claimed = await db.raw(
    `UPDATE vouchers v SET status = 'redeemed', redeemed_at = now(), redeemed_by_account_id = ?
       FROM voucher_batches b
      WHERE v.batch_id = b.id AND v.pin_hash = ? AND v.status = 'active' AND b.expires_at > now() AND b.currency = ?
      RETURNING v.id, v.serial, b.amount_minor, b.currency`,
    [input.billingAccountId, hash, account.currency],
  );
  let row = claimed.rows[0] as { id: string; serial: string; amount_minor: string; currency: string } | undefined;
  if (!row) {
    // Finishing our own interrupted redemption is allowed; anything else is refused.
    const existing = await db('vouchers').join('voucher_batches', 'voucher_batches.id', 'vouchers.batch_id').where('vouchers.pin_hash', hash)
      .first('vouchers.id', 'vouchers.serial', 'vouchers.status', 'vouchers.redeemed_by_account_id', 'vouchers.journal_entry_id',
        'voucher_batches.amount_minor', 'voucher_batches.currency', 'voucher_batches.expires_at');
    if (!existing || existing.status === 'void') throw new DomainError('VOUCHER_INVALID', 'this PIN is not a valid voucher', ['input', 'pin']);
    if (existing.status === 'active' && existing.expires_at <= new Date()) throw new DomainError('VOUCHER_EXPIRED', 'this voucher has expired', ['input', 'pin']);
    if (existing.status === 'active') throw new DomainError('CURRENCY_MISMATCH', 'this voucher is in another currency than the account', ['input', 'pin']);
    if (existing.redeemed_by_account_id !== input.billingAccountId || existing.journal_entry_id !== null) {
      throw new DomainError('VOUCHER_ALREADY_REDEEMED', 'this voucher has already been redeemed', ['input', 'pin']);
    }
    row = existing;
  }
  const currency = String(row!.currency).trim();
  const amountMinor = BigInt(row!.amount_minor);
  const credit = await creditWallet(engine, {
    billingAccountId: input.billingAccountId, amountMicros: minorToMicros(amountMinor, currency), idempotencyKey: `voucher:${row!.id}`,
    actor: input.actor, sourceRef: `voucher:${row!.serial}`, kind: 'top_up', details: { voucher: row!.serial },
  });
  await db('vouchers').where({ id: row!.id }).update({ journal_entry_id: credit.journalEntryId });
  return { voucherId: row!.id, serial: row!.serial, amountMinor, currency, journalEntryId: credit.journalEntryId, balanceMicros: credit.balanceMicros };
}
