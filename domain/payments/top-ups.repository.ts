/** Saved payment methods and top-ups (one row per idempotency key: the `top-up:<key>` workflow's
 * record of what happened at the gateway and in the ledger). */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';

export interface SavedMethodRow {
  id: string;
  billingAccountId: string;
  gateway: string;
  customerRef: string;
  paymentMethodRef: string;
  brand: string | null;
  last4: string | null;
  isDefault: boolean;
}

const toMethod = (r: Record<string, unknown>): SavedMethodRow => ({
  id: r.id as string, billingAccountId: r.billing_account_id as string, gateway: r.gateway as string, customerRef: r.customer_ref as string,
  paymentMethodRef: r.payment_method_ref as string, brand: (r.brand as string | null) ?? null, last4: (r.last4 as string | null) ?? null,
  isDefault: r.is_default as boolean,
});

export async function savePaymentMethod(
  db: Knex, m: { billingAccountId: string; gateway: string; customerRef: string; paymentMethodRef: string; brand?: string; last4?: string },
): Promise<SavedMethodRow> {
  return db.transaction(async (trx) => {
    await trx('payment_methods').where({ billing_account_id: m.billingAccountId, is_default: true }).update({ is_default: false });
    const [row] = await trx('payment_methods')
      .insert({
        billing_account_id: m.billingAccountId, gateway: m.gateway, customer_ref: m.customerRef, payment_method_ref: m.paymentMethodRef,
        brand: m.brand ?? null, last4: m.last4 ?? null, is_default: true,
      })
      .onConflict(['gateway', 'payment_method_ref']).merge(['is_default'])
      .returning('*');
    return toMethod(row);
  });
}

export async function findPaymentMethod(db: Knex, q: { id?: string; billingAccountId: string }): Promise<SavedMethodRow | undefined> {
  const query = db('payment_methods').where({ billing_account_id: q.billingAccountId });
  const row = q.id ? await query.andWhere({ id: q.id }).first() : await query.andWhere({ is_default: true }).first();
  return row ? toMethod(row) : undefined;
}

export async function listPaymentMethods(db: Knex, billingAccountId: string): Promise<SavedMethodRow[]> {
  return (await db('payment_methods').where({ billing_account_id: billingAccountId }).orderBy('created_at', 'desc')).map(toMethod);
}

export type TopUpStatus = 'pending' | 'captured' | 'credited' | 'declined' | 'failed' | 'refunded';

export interface TopUp {
  id: string;
  idempotencyKey: string;
  billingAccountId: string;
  amountMinor: bigint;
  currency: string;
  source: 'card' | 'auto' | 'voucher';
  status: TopUpStatus;
  paymentMethodRef: string | null;
  paymentRef: string | null;
  refundRef: string | null;
  journalEntryId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export const toTopUp = (r: Record<string, unknown>): TopUp => ({
  id: r.id as string, idempotencyKey: r.idempotency_key as string, billingAccountId: r.billing_account_id as string,
  amountMinor: BigInt(r.amount_minor as string), currency: String(r.currency).trim(), source: r.source as TopUp['source'], status: r.status as TopUpStatus,
  paymentMethodRef: (r.payment_method_ref as string | null) ?? null, paymentRef: (r.payment_ref as string | null) ?? null,
  refundRef: (r.refund_ref as string | null) ?? null, journalEntryId: r.journal_entry_id == null ? null : String(r.journal_entry_id),
  errorCode: (r.error_code as string | null) ?? null, errorMessage: (r.error_message as string | null) ?? null,
  createdAt: r.created_at as Date, updatedAt: r.updated_at as Date,
});

/** Records the top-up once per key; the same key with other parameters is refused. */
export async function openTopUp(
  db: Knex, t: { idempotencyKey: string; billingAccountId: string; amountMinor: bigint; source: TopUp['source']; paymentMethodRef?: string | null },
): Promise<TopUp> {
  const account = await db('billing_accounts').where({ id: t.billingAccountId }).first('currency');
  if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  await db('top_ups')
    .insert({
      idempotency_key: t.idempotencyKey, billing_account_id: t.billingAccountId, amount_minor: t.amountMinor.toString(), currency: String(account.currency).trim(),
      source: t.source, status: 'pending', payment_method_ref: t.paymentMethodRef ?? null,
    })
    .onConflict('idempotency_key').ignore();
  const row = toTopUp(await db('top_ups').where({ idempotency_key: t.idempotencyKey }).first());
  if (row.billingAccountId !== t.billingAccountId || row.amountMinor !== t.amountMinor) {
    throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was used for another top-up', ['input', 'idempotencyKey']);
  }
  return row;
}

export async function updateTopUp(
  db: Knex, key: string,
  patch: Partial<{ status: TopUpStatus; paymentRef: string; refundRef: string; journalEntryId: string | null; errorCode: string | null; errorMessage: string | null }>,
): Promise<TopUp> {
  const [row] = await db('top_ups').where({ idempotency_key: key })
    .update({
      ...(patch.status ? { status: patch.status } : {}),
      ...(patch.paymentRef ? { payment_ref: patch.paymentRef } : {}),
      ...(patch.refundRef ? { refund_ref: patch.refundRef } : {}),
      ...(patch.journalEntryId !== undefined ? { journal_entry_id: patch.journalEntryId } : {}),
      ...(patch.errorCode !== undefined ? { error_code: patch.errorCode } : {}),
      ...(patch.errorMessage !== undefined ? { error_message: patch.errorMessage } : {}),
      updated_at: db.fn.now(),
    })
    .returning('*');
  return toTopUp(row);
}

export async function findTopUp(db: Knex, key: string): Promise<TopUp | undefined> {
  const row = await db('top_ups').where({ idempotency_key: key }).first();
  return row ? toTopUp(row) : undefined;
}

export async function recordPayment(
  db: Knex, p: { gateway: string; paymentRef: string; billingAccountId: string; purpose: 'top_up' | 'invoice'; purposeRef: string; amountMinor: bigint; currency: string; status: string },
): Promise<void> {
  await db('payments')
    .insert({
      gateway: p.gateway, payment_ref: p.paymentRef, billing_account_id: p.billingAccountId, purpose: p.purpose, purpose_ref: p.purposeRef,
      amount_minor: p.amountMinor.toString(), currency: p.currency, status: p.status,
    })
    .onConflict(['gateway', 'payment_ref']).merge(['status', 'updated_at']);
}
