import type { Knex } from 'knex';
import { minorToMicros } from './money';

/** Creates the wallet (and its ledger account) of a billing account. Idempotent. */
export async function openWallet(
  trx: Knex,
  account: { billingAccountId: string; currency: string; creditLimitMinor: bigint },
): Promise<void> {
  const code = `wallet:${account.billingAccountId}`;
  const [ledgerAccount] = await trx('ledger_accounts')
    .insert({ code, kind: 'wallet', unit: account.currency, billing_account_id: account.billingAccountId })
    .onConflict('code')
    .merge(['code'])
    .returning('id');
  await trx('wallets')
    .insert({
      ledger_account_id: ledgerAccount.id,
      billing_account_id: account.billingAccountId,
      currency: account.currency,
      credit_limit_micros: minorToMicros(account.creditLimitMinor, account.currency).toString(),
    })
    .onConflict('billing_account_id')
    .ignore();
}

export interface WalletView {
  billingAccountId: string;
  currency: string;
  balanceMicros: bigint;
  reservedMicros: bigint;
  creditLimitMicros: bigint;
}

export async function findWallet(db: Knex, billingAccountId: string): Promise<WalletView | undefined> {
  const row = await db('wallets').where({ billing_account_id: billingAccountId }).first();
  if (!row) return undefined;
  return {
    billingAccountId: row.billing_account_id,
    currency: row.currency,
    balanceMicros: BigInt(row.balance_micros),
    reservedMicros: BigInt(row.reserved_micros),
    creditLimitMicros: BigInt(row.credit_limit_micros),
  };
}
