import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';

export type BucketService = 'data' | 'voice' | 'sms' | 'money';

const UNIT: Record<Exclude<BucketService, 'money'>, string> = { data: 'bytes', voice: 'seconds', sms: 'messages' };

export interface GrantBucketCommand {
  billingAccountId: string;
  /** The subscription whose allowance this is; null/omitted = a shared pool of the account. */
  subscriptionId?: string | null;
  service: BucketService;
  /** Bytes, seconds, messages, or micros of the account's currency for a money bucket. */
  units: bigint;
  validFrom: Date;
  validUntil: Date;
  priority?: number;
  rollover?: boolean;
  /** What granted it: 'plan:<code>:<period>', 'offer:<code>', 'adjustment'… */
  source: string;
  /** One grant per key: a retried grant returns the bucket the first one made. */
  idempotencyKey: string;
  actor: string;
  reason?: string;
}

export interface BucketView {
  id: string;
  billingAccountId: string;
  subscriptionId: string | null;
  service: BucketService;
  unit: string;
  initialUnits: bigint;
  balanceUnits: bigint;
  reservedUnits: bigint;
  availableUnits: bigint;
  priority: number;
  validFrom: Date;
  validUntil: Date;
  rollover: boolean;
  source: string;
  shared: boolean;
}

interface BucketRow {
  ledger_account_id: string; billing_account_id: string; subscription_id: string | null; service: BucketService; unit: string;
  initial_units: string; balance_units: string; reserved_units: string; priority: number; valid_from: Date; valid_until: Date;
  rollover: boolean; source: string;
}

export const toBucketView = (r: BucketRow): BucketView => ({
  id: String(r.ledger_account_id), billingAccountId: r.billing_account_id, subscriptionId: r.subscription_id, service: r.service, unit: r.unit,
  initialUnits: BigInt(r.initial_units), balanceUnits: BigInt(r.balance_units), reservedUnits: BigInt(r.reserved_units),
  availableUnits: BigInt(r.balance_units) - BigInt(r.reserved_units), priority: r.priority, validFrom: r.valid_from, validUntil: r.valid_until,
  rollover: r.rollover, source: r.source, shared: r.subscription_id === null,
});

/**
 * Grants an allowance bucket (when a subscription starts or renews, for a bonus, …): a new ledger
 * account, its bucket row and the journal entry that funds it (allowance_grant → bucket, or for a
 * money bucket discounts → bucket), in one transaction. Idempotent on `idempotencyKey`.
 * A new bucket does not race the charging hot path: no batch holds a lock on a row that does not
 * exist yet, and the next batch sees it.
 */
export async function grantBucket(db: Knex, cmd: GrantBucketCommand): Promise<BucketView> {
  if (cmd.units <= 0n) throw new DomainError('INVALID_UNITS', 'a bucket needs a positive number of units', ['input', 'units']);
  if (!(cmd.validUntil > cmd.validFrom)) throw new DomainError('INVALID_VALIDITY', 'validUntil must be after validFrom', ['input', 'validUntil']);
  return db.transaction(async (trx) => {
    const code = `bucket:${cmd.idempotencyKey}`;
    const existing = await trx('buckets').join('ledger_accounts', 'ledger_accounts.id', 'buckets.ledger_account_id')
      .where('ledger_accounts.code', code).first('buckets.*');
    if (existing) return toBucketView(existing);
    const account = await trx('billing_accounts').where({ id: cmd.billingAccountId }).first('id', 'currency');
    if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
    if (cmd.subscriptionId) {
      const sub = await trx('subscriptions').join('subscribers', 'subscribers.id', 'subscriptions.subscriber_id')
        .where('subscriptions.id', cmd.subscriptionId).first('subscribers.billing_account_id');
      if (!sub) throw new DomainError('SUBSCRIPTION_NOT_FOUND', 'no subscription has this id', ['input', 'subscriptionId']);
      if (sub.billing_account_id !== cmd.billingAccountId) {
        throw new DomainError('ACCOUNT_MISMATCH', 'the subscription belongs to another billing account', ['input', 'subscriptionId']);
      }
    }
    const currency = String(account.currency).trim();
    const unit = cmd.service === 'money' ? currency : UNIT[cmd.service];
    const counterCode = cmd.service === 'money' ? `discounts:${currency}` : `allowance_grant:${unit}`;
    await trx('ledger_accounts').insert({ code: counterCode, kind: cmd.service === 'money' ? 'discounts' : 'allowance_grant', unit }).onConflict('code').ignore();
    const counter = await trx('ledger_accounts').where({ code: counterCode }).first('id');
    const [ledgerAccount] = await trx('ledger_accounts')
      .insert({ code, kind: 'bucket', unit, billing_account_id: cmd.billingAccountId })
      .returning('id');
    const [row] = await trx('buckets')
      .insert({
        ledger_account_id: ledgerAccount.id, billing_account_id: cmd.billingAccountId, subscription_id: cmd.subscriptionId ?? null,
        service: cmd.service, unit, initial_units: cmd.units.toString(), balance_units: cmd.units.toString(), reserved_units: 0,
        priority: cmd.priority ?? 100, valid_from: cmd.validFrom, valid_until: cmd.validUntil, rollover: cmd.rollover ?? false, source: cmd.source,
      })
      .returning('*');
    const [entry] = await trx('journal_entries')
      .insert({
        entry_type: 'allowance_grant', source_ref: cmd.source, idempotency_key: `grant:${cmd.idempotencyKey}`, actor: cmd.actor,
        reason: cmd.reason ?? null, occurred_at: cmd.validFrom,
        details: JSON.stringify({
          kind: 'allowance_grant', bucket: String(ledgerAccount.id), service: cmd.service, unit, units: cmd.units.toString(),
          shared: !cmd.subscriptionId, subscriptionId: cmd.subscriptionId ?? null, validFrom: cmd.validFrom.toISOString(), validUntil: cmd.validUntil.toISOString(),
          balances: { [String(ledgerAccount.id)]: { kind: 'bucket', before: '0', after: cmd.units.toString() } },
        }),
      })
      .returning('id');
    await trx('postings').insert([
      { journal_entry_id: entry.id, ledger_account_id: ledgerAccount.id, unit, amount: cmd.units.toString() },
      { journal_entry_id: entry.id, ledger_account_id: counter.id, unit, amount: (-cmd.units).toString() },
    ]);
    return toBucketView(row);
  });
}
