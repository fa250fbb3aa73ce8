/**
 * Reads of balances for the API: a billing account's wallet and every bucket a line or an account
 * can draw from (its own, its account's shared pools and its family parent's pools).
 */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';
import { toBucketView, type BucketView } from './buckets.repository';

export interface WalletBalance {
  billingAccountId: string;
  ledgerAccountId: string;
  currency: string;
  balanceMicros: bigint;
  reservedMicros: bigint;
  creditLimitMicros: bigint;
  /** What can still be spent: balance − reserved + credit limit. */
  availableMicros: bigint;
}

export interface Balances {
  billingAccountId: string;
  subscriberId: string | null;
  wallet: WalletBalance | null;
  /** In consumption order (priority, then soonest expiry); expired buckets only when asked. */
  buckets: BucketView[];
}

export async function getBalances(
  db: Knex, who: { billingAccountId: string } | { subscriberId: string }, options: { includeExpired?: boolean; at?: Date } = {},
): Promise<Balances> {
  let billingAccountId: string;
  let subscriberId: string | null = null;
  let subscriptionId: string | null = null;
  if ('subscriberId' in who) {
    const row = await db('subscribers as s')
      .leftJoin('subscriptions as x', function join() { this.on('x.subscriber_id', 's.id').andOnVal('x.state', 'active'); })
      .where('s.id', who.subscriberId).first('s.billing_account_id', 'x.id as subscription_id');
    if (!row) throw new DomainError('NOT_FOUND', 'no subscriber has this id', ['subscriberId']);
    billingAccountId = row.billing_account_id;
    subscriberId = who.subscriberId;
    subscriptionId = row.subscription_id ?? null;
  } else {
    billingAccountId = who.billingAccountId;
  }
  const account = await db('billing_accounts').where({ id: billingAccountId }).first('id', 'parent_account_id');
  if (!account) throw new DomainError('NOT_FOUND', 'no billing account has this id', ['billingAccountId']);
  const w = await db('wallets').where({ billing_account_id: billingAccountId }).first();
  const wallet: WalletBalance | null = w ? {
    billingAccountId, ledgerAccountId: String(w.ledger_account_id), currency: String(w.currency).trim(),
    balanceMicros: BigInt(w.balance_micros), reservedMicros: BigInt(w.reserved_micros), creditLimitMicros: BigInt(w.credit_limit_micros),
    availableMicros: BigInt(w.balance_micros) - BigInt(w.reserved_micros) + BigInt(w.credit_limit_micros),
  } : null;
  const pools = [billingAccountId, account.parent_account_id].filter(Boolean);
  const at = options.at ?? new Date();
  const q = db('buckets').where((b) => {
    b.where((p) => p.whereNull('subscription_id').whereIn('billing_account_id', pools));
    if (subscriptionId) b.orWhere('subscription_id', subscriptionId);
    else if (!subscriberId) b.orWhere((p) => p.whereNotNull('subscription_id').where('billing_account_id', billingAccountId));
  });
  if (!options.includeExpired) q.where('valid_until', '>', at);
  const rows = await q.orderBy([{ column: 'priority' }, { column: 'valid_until' }, { column: 'ledger_account_id' }]);
  return { billingAccountId, subscriberId, wallet, buckets: rows.map(toBucketView) };
}
