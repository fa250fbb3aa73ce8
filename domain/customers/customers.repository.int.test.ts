import { createTestDatabase } from '../../test/support/services';
import { DomainError } from '../shared/domain-error';
import { findWallet } from '../ledger/ledger.repository';
import { createCustomer, listCustomers } from './customers.repository';
import { customerCreateInputSchema } from './customer';

describe('customers repository (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => { t = await createTestDatabase(); });
  afterAll(async () => { await t.drop(); });

  const input = (over: Record<string, unknown> = {}) =>
    customerCreateInputSchema.parse({ name: 'Ada', account: { paymentType: 'postpaid', currency: 'EUR', creditLimitMinor: 5000n }, ...over });

  test('creates a customer, its billing account and its wallet together', async () => {
    const { customer, account } = await createCustomer(t.db, input({ externalRef: 'crm-1' }));
    expect(customer.name).toBe('Ada');
    expect(account.paymentType).toBe('postpaid');
    const wallet = await findWallet(t.db, account.id);
    expect(wallet).toMatchObject({ currency: 'EUR', balanceMicros: 0n, creditLimitMicros: 50_000_000n });
  });

  test('a refused customer leaves no rows behind', async () => {
    const before = await t.db('customers').count<{ count: string }[]>('* as count');
    await expect(createCustomer(t.db, input({ externalRef: 'crm-1' }))).rejects.toMatchObject({ code: 'TAKEN', field: ['input', 'externalRef'] });
    await expect(
      createCustomer(t.db, input({ account: { paymentType: 'prepaid', currency: 'EUR', parentAccountId: '00000000-0000-4000-8000-000000000000' } })),
    ).rejects.toBeInstanceOf(DomainError);
    const after = await t.db('customers').count<{ count: string }[]>('* as count');
    expect(after[0].count).toBe(before[0].count);
  });

  test('the database refuses a prepaid account with a credit limit', async () => {
    const [c] = await t.db('customers').insert({ kind: 'individual', name: 'x' }).returning('id');
    await expect(
      t.db('billing_accounts').insert({ customer_id: c.id, payment_type: 'prepaid', currency: 'EUR', credit_limit_minor: 1 }),
    ).rejects.toThrow(/billing_accounts_prepaid_no_credit_check/);
  });

  test('pages with keyset cursors in both directions', async () => {
    for (let i = 0; i < 5; i++) await createCustomer(t.db, input({ name: `c${i}` }));
    const first = await listCustomers(t.db, { first: 3 });
    expect(first.items).toHaveLength(3);
    expect(first.hasNextPage).toBe(true);
    const last = first.items[2];
    const next = await listCustomers(t.db, { first: 10, after: first.cursors[2] });
    expect(next.items.map((c) => c.id)).not.toContain(last.id);
    expect(first.items.length + next.items.length).toBe((await t.db('customers')).length);
    const back = await listCustomers(t.db, { last: 2, before: next.cursors[0] });
    expect(back.items.map((c) => c.id)).toEqual(first.items.slice(1).map((c) => c.id));
    expect(back.hasPreviousPage).toBe(true);
  });
});
