/** Auto top-up settings per billing account: a threshold, an amount and a saved payment method. */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';
import { openTopUp, type TopUp } from './top-ups.repository';

export interface AutoTopUpSettings {
  billingAccountId: string;
  enabled: boolean;
  thresholdMinor: bigint;
  amountMinor: bigint;
  paymentMethodId: string;
  updatedAt: Date;
}

const toSettings = (r: Record<string, unknown>): AutoTopUpSettings => ({
  billingAccountId: r.billing_account_id as string, enabled: r.enabled as boolean, thresholdMinor: BigInt(r.threshold_minor as string),
  amountMinor: BigInt(r.amount_minor as string), paymentMethodId: r.payment_method_id as string, updatedAt: r.updated_at as Date,
});

export async function setAutoTopUp(
  db: Knex, s: { billingAccountId: string; enabled: boolean; thresholdMinor: bigint; amountMinor: bigint; paymentMethodId?: string | null },
): Promise<AutoTopUpSettings> {
  if (s.amountMinor <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amount']);
  if (s.thresholdMinor < 0n) throw new DomainError('INVALID_THRESHOLD', 'the threshold must not be negative', ['input', 'threshold']);
  const method = s.paymentMethodId
    ? await db('payment_methods').where({ id: s.paymentMethodId, billing_account_id: s.billingAccountId }).first('id')
    : await db('payment_methods').where({ billing_account_id: s.billingAccountId, is_default: true }).first('id');
  if (!method) throw new DomainError('PAYMENT_METHOD_NOT_FOUND', 'save a payment method for this account first', ['input', 'paymentMethodId']);
  const [row] = await db('auto_top_up_settings')
    .insert({ billing_account_id: s.billingAccountId, enabled: s.enabled, threshold_minor: s.thresholdMinor.toString(), amount_minor: s.amountMinor.toString(), payment_method_id: method.id })
    .onConflict('billing_account_id').merge(['enabled', 'threshold_minor', 'amount_minor', 'payment_method_id', 'updated_at'])
    .returning('*');
  return toSettings(row);
}

export async function findAutoTopUp(db: Knex, billingAccountId: string): Promise<AutoTopUpSettings | undefined> {
  const row = await db('auto_top_up_settings').where({ billing_account_id: billingAccountId }).first();
  return row ? toSettings(row) : undefined;
}

/** Opens the top-up of one attempt of an auto top-up, or null when it should not run any more
 * (disabled, or the balance is back at or above the threshold). */
export async function openAutoTopUp(db: Knex, input: { billingAccountId: string; key: string }): Promise<TopUp | null> {
  const s = await findAutoTopUp(db, input.billingAccountId);
  if (!s || !s.enabled) return null;
  const wallet = await db('wallets').where({ billing_account_id: input.billingAccountId }).first('balance_micros', 'reserved_micros', 'currency');
  const method = await db('payment_methods').where({ id: s.paymentMethodId }).first('payment_method_ref');
  if (!wallet || !method) return null;
  const existing = await db('top_ups').where({ idempotency_key: input.key }).first('id');
  if (!existing) {
    const factor = 10n ** BigInt(6 - (String(wallet.currency).trim() === 'JPY' ? 0 : 2));
    if (BigInt(wallet.balance_micros) - BigInt(wallet.reserved_micros) >= s.thresholdMinor * factor) return null;
  }
  return openTopUp(db, { idempotencyKey: input.key, billingAccountId: input.billingAccountId, amountMinor: s.amountMinor, source: 'auto', paymentMethodRef: method.payment_method_ref });
}
