import crypto from 'node:crypto';
import { createTestDatabase } from '../../test/support/services';
import { seedLine, seedPlan, type Line } from '../charging/testing/fixtures';

/** The billing run's inserts are checked per statement (migration 20261122080100), not by foreign
 * keys: the database still refuses rows that name something that does not exist. */
describe('billing references checked per statement (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let planId: string;
  let line: Line;

  beforeAll(async () => {
    t = await createTestDatabase();
    planId = await seedPlan(t.db);
    line = await seedLine(t.db, { planId });
  });
  afterAll(async () => {
    await t?.drop();
  });

  let period = 0;
  const charge = (over: Record<string, unknown> = {}) => {
    const start = new Date(Date.UTC(2030, period++, 1));
    return {
      subscription_id: line.subscriptionId, subscriber_id: line.subscriberId, billing_account_id: line.accountId, payer_account_id: line.accountId,
      plan_id: planId, payment_type: 'prepaid', cycle: 1, cycle_date: start.toISOString().slice(0, 10), period_start: start,
      period_end: new Date(start.getTime() + 86_400_000), currency: 'EUR', fee_minor: 100, ...over,
    };
  };

  test('a recurring charge naming a missing row is refused with a clear error; the whole statement fails', async () => {
    const missing = crypto.randomUUID();
    await expect(t.db('recurring_charges').insert([charge(), charge({ subscription_id: missing })]))
      .rejects.toThrow(`recurring charge refers to subscription ${missing} (subscription_id), which does not exist in subscriptions`);
    await expect(t.db('recurring_charges').insert(charge({ payer_account_id: missing }))).rejects.toThrow(/payer account .* does not exist in billing_accounts/);
    // Both account columns are checked in one pass; the error still names the column.
    await expect(t.db('recurring_charges').insert(charge({ billing_account_id: missing })))
      .rejects.toThrow(`recurring charge refers to billing account ${missing} (billing_account_id), which does not exist in billing_accounts`);
    await expect(t.db('recurring_charges').insert(charge({ payer_account_id: missing })))
      .rejects.toThrow(`recurring charge refers to payer account ${missing} (payer_account_id), which does not exist in billing_accounts`);
    await expect(t.db('recurring_charges').insert(charge({ plan_id: missing }))).rejects.toThrow(/plan .* does not exist in plans/);
    await expect(t.db('recurring_charges').insert(charge({ offer_id: missing }))).rejects.toThrow(/offer .* does not exist in offers/);
    expect(await t.db('recurring_charges').where({ subscription_id: line.subscriptionId }).count('* as n')).toEqual([{ n: '0' }]);

    const [ok] = await t.db('recurring_charges').insert(charge()).returning('id');
    await expect(t.db('recurring_charges').where({ id: ok.id }).update({ plan_id: missing })).rejects.toThrow(/plan .* does not exist/);
    // A plan only a charge refers to (the line's subscription is on another one).
    const oldPlan = await seedPlan(t.db);
    await t.db('recurring_charges').insert(charge({ plan_id: oldPlan }));
    await expect(t.db('plans').where({ id: oldPlan }).delete()).rejects.toThrow(`plan ${oldPlan} is still referenced from recurring_charges.plan_id`);
    await t.db('plans').where({ id: await seedPlan(t.db) }).delete();
    await expect(t.db('subscriptions').where({ id: line.subscriptionId }).update({ id: missing })).rejects.toThrow(/never changes/);
  });

  test('an allowance bucket naming a missing subscription or account is refused', async () => {
    const missing = crypto.randomUUID();
    const [account] = await t.db('ledger_accounts').insert({ code: `bucket:test:${missing}`, kind: 'bucket', unit: 'bytes', billing_account_id: line.accountId }).returning('id');
    const bucket = {
      ledger_account_id: account.id, billing_account_id: line.accountId, subscription_id: missing, service: 'data', unit: 'bytes',
      initial_units: 10, balance_units: 10, reserved_units: 0, priority: 10, valid_from: new Date(), valid_until: new Date(Date.now() + 86_400_000),
      rollover: false, source: 'plan',
    };
    await expect(t.db('buckets').insert(bucket)).rejects.toThrow(`bucket refers to subscription ${missing} (subscription_id), which does not exist in subscriptions`);
    await expect(t.db('buckets').insert({ ...bucket, subscription_id: line.subscriptionId, ledger_account_id: 0 })).rejects.toThrow(/ledger account 0 .* does not exist in ledger_accounts/);
    await expect(t.db('ledger_accounts').insert({ code: `bucket:test:x:${missing}`, kind: 'bucket', unit: 'bytes', billing_account_id: missing }))
      .rejects.toThrow(/ledger account refers to billing account .* does not exist in billing_accounts/);
    await t.db('buckets').insert({ ...bucket, subscription_id: line.subscriptionId });
    await expect(t.db('buckets').where({ ledger_account_id: account.id }).update({ billing_account_id: missing })).rejects.toThrow(/billing account .* does not exist/);
    await expect(t.db('subscriptions').where({ id: line.subscriptionId }).delete()).rejects.toThrow(/still referenced/);
  });

  test('an invoice line on a missing or issued invoice is refused; an invoice with lines cannot be deleted', async () => {
    const missing = crypto.randomUUID();
    const invoiceLine = (invoiceId: string, ref: string) => ({ invoice_id: invoiceId, kind: 'one_off', description: 'x', amount_minor: 100, source_ref: ref });
    const [inv] = await t.db('invoices').insert({ billing_account_id: line.accountId, period_start: '2030-01-01', period_end: '2030-02-01', currency: 'EUR' }).returning('id');
    await expect(t.db('invoice_lines').insert([invoiceLine(inv.id, 'a'), invoiceLine(missing, 'b')]))
      .rejects.toThrow(`invoice line refers to invoice ${missing} (invoice_id), which does not exist in invoices`);
    await t.db('invoice_lines').insert([invoiceLine(inv.id, 'a'), invoiceLine(inv.id, 'b')]);
    await expect(t.db('invoice_lines').where({ invoice_id: inv.id, source_ref: 'a' }).update({ invoice_id: missing })).rejects.toThrow(/does not exist in invoices/);
    await expect(t.db('invoices').where({ id: inv.id }).delete()).rejects.toThrow(`invoice ${inv.id} is still referenced from invoice_lines.invoice_id`);
    await t.db('invoices').where({ id: inv.id }).update({ status: 'issued', number: `INV-TEST-${missing}` });
    await expect(t.db('invoice_lines').insert(invoiceLine(inv.id, 'c'))).rejects.toThrow(`invoice ${inv.id} is issued: its lines are immutable`);
  });
});
