/** Test data for charging: plans, lines (customer, billing account, wallet, SIM, subscriber,
 * subscription), buckets and wallet balances, written straight to the tables. */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { openWallet } from '../../ledger/ledger.repository';
import { grantBucket, type BucketService, type BucketView } from '../../ledger/buckets.repository';
import { PREPAID_EXAMPLE_TARIFF } from '../tariff.example';
import type { Tariff } from '../tariff.types';

let counter = 0;
const unique = () => `${process.pid % 1000}${(counter++).toString().padStart(5, '0')}${crypto.randomInt(100, 999)}`;

export async function seedPlan(db: Knex, opts: { paymentType?: 'prepaid' | 'postpaid' | 'hybrid'; tariff?: Tariff; category?: string } = {}): Promise<string> {
  const [row] = await db('plans')
    .insert({
      code: `plan-${unique()}`, name: 'Test plan', payment_type: opts.paymentType ?? 'prepaid', category: opts.category ?? 'standard',
      currency: 'EUR', recurring_fee_minor: 0, billing_period_unit: 'month', billing_period_count: 1,
      tariff: JSON.stringify(opts.tariff ?? PREPAID_EXAMPLE_TARIFF),
    })
    .returning('id');
  return row.id;
}

export interface Line {
  accountId: string;
  subscriberId: string;
  subscriptionId: string;
  msisdn: string;
  imsi: string;
  walletId: string;
}

export async function seedAccount(
  db: Knex, opts: { paymentType?: 'prepaid' | 'postpaid' | 'hybrid'; creditLimitMinor?: bigint; parentAccountId?: string } = {},
): Promise<string> {
  const [customer] = await db('customers').insert({ kind: 'individual', name: 'Test customer' }).returning('id');
  const paymentType = opts.paymentType ?? 'prepaid';
  const creditLimitMinor = paymentType === 'prepaid' ? 0n : (opts.creditLimitMinor ?? 0n);
  const [account] = await db('billing_accounts')
    .insert({ customer_id: customer.id, payment_type: paymentType, currency: 'EUR', credit_limit_minor: creditLimitMinor.toString(), parent_account_id: opts.parentAccountId ?? null })
    .returning('id');
  await openWallet(db, { billingAccountId: account.id, currency: 'EUR', creditLimitMinor });
  return account.id;
}

export async function seedLine(
  db: Knex,
  opts: { planId: string; accountId?: string; paymentType?: 'prepaid' | 'postpaid' | 'hybrid'; creditLimitMinor?: bigint; parentAccountId?: string; state?: 'pending' | 'active' | 'suspended' | 'terminated' },
): Promise<Line> {
  const accountId = opts.accountId ?? (await seedAccount(db, opts));
  const id = unique();
  const msisdn = `4915${id.padStart(9, '0').slice(-9)}`;
  const imsi = `26201${id.padStart(10, '0').slice(-10)}`;
  const iccid = `8949${id.padStart(16, '0').slice(-16)}`;
  const [sim] = await db('sims').insert({ iccid, imsi, form: 'physical', state: 'active' }).returning('id');
  const subscriberId = crypto.randomUUID();
  const state = opts.state ?? 'active';
  await db('subscribers').insert({
    id: subscriberId, billing_account_id: accountId, msisdn, sim_id: sim.id, state,
    suspend_reason: state === 'suspended' ? 'non_payment' : null, terminated_at: state === 'terminated' ? new Date() : null,
    activated_at: state === 'pending' ? null : new Date(),
  });
  const start = new Date(Date.now() - 86_400_000);
  const end = new Date(Date.now() + 29 * 86_400_000);
  const [subscription] = await db('subscriptions')
    .insert({
      subscriber_id: subscriberId, plan_id: opts.planId, state: 'active', period_anchor: start, current_period_start: start,
      current_period_end: end, next_charge_on: end.toISOString().slice(0, 10), started_at: start,
    })
    .returning('id');
  const wallet = await db('wallets').where({ billing_account_id: accountId }).first('ledger_account_id');
  return { accountId, subscriberId, subscriptionId: subscription.id, msisdn, imsi, walletId: String(wallet.ledger_account_id) };
}

export async function seedBucket(
  db: Knex,
  opts: { accountId: string; subscriptionId?: string | null; service: BucketService; units: bigint; priority?: number; validFrom?: Date; validUntil?: Date },
): Promise<BucketView> {
  return grantBucket(db, {
    billingAccountId: opts.accountId, subscriptionId: opts.subscriptionId ?? null, service: opts.service, units: opts.units,
    validFrom: opts.validFrom ?? new Date(Date.now() - 3_600_000), validUntil: opts.validUntil ?? new Date(Date.now() + 30 * 86_400_000),
    priority: opts.priority ?? 100, source: 'test', idempotencyKey: `test:${crypto.randomUUID()}`, actor: 'test',
  });
}

/** Puts money in a wallet with a journal entry (gateway_cash → wallet), bypassing the engine. */
export async function fundWallet(db: Knex, accountId: string, micros: bigint): Promise<void> {
  await db.transaction(async (trx) => {
    const wallet = await trx('wallets').where({ billing_account_id: accountId }).forUpdate().first();
    const cur = String(wallet.currency).trim();
    await trx('ledger_accounts').insert({ code: `gateway_cash:${cur}`, kind: 'gateway_cash', unit: cur }).onConflict('code').ignore();
    const cash = await trx('ledger_accounts').where({ code: `gateway_cash:${cur}` }).first('id');
    const [entry] = await trx('journal_entries')
      .insert({ entry_type: 'top_up', source_ref: 'test', idempotency_key: `test-topup:${crypto.randomUUID()}`, actor: 'test', occurred_at: new Date(), details: '{}' })
      .returning('id');
    await trx('postings').insert([
      { journal_entry_id: entry.id, ledger_account_id: wallet.ledger_account_id, unit: cur, amount: micros.toString() },
      { journal_entry_id: entry.id, ledger_account_id: cash.id, unit: cur, amount: (-micros).toString() },
    ]);
    await trx('wallets').where({ ledger_account_id: wallet.ledger_account_id }).increment('balance_micros', micros.toString() as unknown as number);
  });
}
