import type { Knex } from 'knex';
import { keysetPage, type Page, type PageArgs } from '../../platform/pagination';
import { DomainError, PG_UNIQUE_VIOLATION, pgConstraint, pgErrorCode } from '../shared/domain-error';
import { openWallet } from '../ledger/ledger.repository';
import type { BillingAccount, Customer, CustomerCreateInput } from './customer';

interface CustomerRow { id: string; kind: Customer['kind']; name: string; email: string | null; external_ref: string | null; created_at: Date }
interface AccountRow {
  id: string; customer_id: string; parent_account_id: string | null; payment_type: BillingAccount['paymentType'];
  currency: string; credit_limit_minor: string; billing_day: number; status: BillingAccount['status']; created_at: Date;
}

const toCustomer = (r: CustomerRow): Customer => ({
  id: r.id, kind: r.kind, name: r.name, email: r.email, externalRef: r.external_ref, createdAt: r.created_at,
});
const toAccount = (r: AccountRow): BillingAccount => ({
  id: r.id, customerId: r.customer_id, parentAccountId: r.parent_account_id, paymentType: r.payment_type,
  currency: r.currency.trim(), creditLimitMinor: BigInt(r.credit_limit_minor), billingDay: r.billing_day,
  status: r.status, createdAt: r.created_at,
});

/** A customer with its first billing account and that account's wallet, all or nothing. */
export async function createCustomer(db: Knex, input: CustomerCreateInput): Promise<{ customer: Customer; account: BillingAccount }> {
  try {
    return await db.transaction(async (trx) => {
      if (input.account.parentAccountId) {
        const parent = await trx('billing_accounts').where({ id: input.account.parentAccountId }).first();
        if (!parent) throw new DomainError('NOT_FOUND', 'no billing account has this id', ['input', 'account', 'parentAccountId']);
        if (parent.currency.trim() !== input.account.currency) {
          throw new DomainError('CURRENCY_MISMATCH', `must use the parent account's currency (${parent.currency.trim()})`, ['input', 'account', 'currency']);
        }
      }
      const [customerRow] = await trx('customers')
        .insert({ kind: input.kind, name: input.name, email: input.email ?? null, external_ref: input.externalRef ?? null })
        .returning('*');
      const [accountRow] = await trx('billing_accounts')
        .insert({
          customer_id: customerRow.id,
          parent_account_id: input.account.parentAccountId ?? null,
          payment_type: input.account.paymentType,
          currency: input.account.currency,
          credit_limit_minor: input.account.creditLimitMinor.toString(),
          billing_day: input.account.billingDay,
        })
        .returning('*');
      await openWallet(trx, { billingAccountId: accountRow.id, currency: input.account.currency, creditLimitMinor: input.account.creditLimitMinor });
      return { customer: toCustomer(customerRow), account: toAccount(accountRow) };
    });
  } catch (err) {
    if (pgErrorCode(err) === PG_UNIQUE_VIOLATION && pgConstraint(err)?.includes('external_ref')) {
      throw new DomainError('TAKEN', 'another customer has this external reference', ['input', 'externalRef']);
    }
    throw err;
  }
}

export async function findCustomer(db: Knex, id: string): Promise<Customer | undefined> {
  const row = await db('customers').where({ id }).first();
  return row ? toCustomer(row) : undefined;
}

export async function listCustomers(db: Knex, args: PageArgs): Promise<Page<Customer>> {
  const page = await keysetPage<CustomerRow>(db, db('customers').select('customers.*'), args, 'customers');
  return { ...page, items: page.items.map(toCustomer) };
}

export async function findBillingAccount(db: Knex, id: string): Promise<BillingAccount | undefined> {
  const row = await db('billing_accounts').where({ id }).first();
  return row ? toAccount(row) : undefined;
}

export async function listBillingAccounts(db: Knex, args: PageArgs, filter: { customerId?: string } = {}): Promise<Page<BillingAccount>> {
  const q = db('billing_accounts').select('billing_accounts.*');
  if (filter.customerId) q.where('billing_accounts.customer_id', filter.customerId);
  const page = await keysetPage<AccountRow>(db, q, args, 'billing_accounts');
  return { ...page, items: page.items.map(toAccount) };
}

export async function listAccountsByIds(db: Knex, ids: readonly string[]): Promise<BillingAccount[]> {
  const rows: AccountRow[] = await db('billing_accounts').whereIn('id', ids as string[]);
  return rows.map(toAccount);
}
