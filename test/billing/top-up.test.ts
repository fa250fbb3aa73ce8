/** Top-ups through `top-up:<key>` on the sandbox gateway (success, decline, transient failures,
 * refund when the credit cannot be made) and vouchers redeemed concurrently. The ledger verifies
 * after every scenario. */
import crypto from 'node:crypto';
import { useBillingTestStack } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { SandboxPaymentGateway } from '../../domain/payments';
import { openTopUp, savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { createVoucherBatch, redeemVoucher } from '../../domain/payments/vouchers';
import { DomainError } from '../../domain/shared/domain-error';
import type { TopUpWorkflowResult } from '../../workflows/top-up.workflow';

jest.setTimeout(120_000);

describe('top-ups and vouchers', () => {
  const gateway = new SandboxPaymentGateway();
  const stack = useBillingTestStack(gateway);

  const balanceMinor = async (accountId: string) => BigInt((await stack.t.db('wallets').where({ billing_account_id: accountId }).first()).balance_micros) / 10_000n;
  async function withCard(accountId: string, token: string) {
    const customer = await gateway.createCustomer({ billingAccountId: accountId });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: token, setAsDefault: true });
    await savePaymentMethod(stack.t.db, { billingAccountId: accountId, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
  }
  async function topUp(accountId: string, amountMinor: bigint, key = crypto.randomUUID()) {
    await openTopUp(stack.t.db, { idempotencyKey: key, billingAccountId: accountId, amountMinor, source: 'card' });
    const h = await stack.w.client.workflow.start('topUpWorkflow', { workflowId: `top-up:${key}`, taskQueue: stack.w.taskQueue, args: [{ key }] });
    return { key, result: (await h.result()) as TopUpWorkflowResult };
  }

  it('captures, credits the wallet once and notifies', async () => {
    const account = await seedAccount(stack.t.db);
    await withCard(account, 'pm_card_visa');
    const { key, result } = await topUp(account, 2_500n);
    expect(result.status).toBe('credited');
    expect(await balanceMinor(account)).toBe(2_500n);
    // The same key again: the same top-up, not a second credit.
    await expect(openTopUp(stack.t.db, { idempotencyKey: key, billingAccountId: account, amountMinor: 2_500n, source: 'card' })).resolves.toMatchObject({ status: 'credited' });
    expect(await balanceMinor(account)).toBe(2_500n);
    expect(await stack.t.db('notification_events').where({ event_key: `top-up:${key}:completed` })).toHaveLength(1);
  });

  it('a declined card is a clear outcome and moves no money', async () => {
    const account = await seedAccount(stack.t.db);
    await withCard(account, 'pm_card_chargeDeclined');
    const { key, result } = await topUp(account, 1_000n);
    expect(result).toMatchObject({ status: 'declined', code: 'PAYMENT_DECLINED', message: 'Your card was declined.' });
    expect(await balanceMinor(account)).toBe(0n);
    expect(await stack.t.db('top_ups').where({ idempotency_key: key }).first()).toMatchObject({ status: 'declined', error_code: 'card_declined' });
    expect(await stack.t.db('notification_events').where({ event_key: `top-up:${key}:failed` })).toHaveLength(1);
  });

  it('retries a gateway that fails transiently, with the same idempotency key', async () => {
    const account = await seedAccount(stack.t.db);
    await withCard(account, 'pm_card_transientFailure');
    const { result } = await topUp(account, 700n);
    expect(result.status).toBe('credited');
    expect(await balanceMinor(account)).toBe(700n);
  });

  it('refunds the payment when the wallet cannot be credited', async () => {
    const [customer] = await stack.t.db('customers').insert({ kind: 'individual', name: 'No wallet' }).returning('id');
    const [account] = await stack.t.db('billing_accounts').insert({ customer_id: customer.id, payment_type: 'prepaid', currency: 'EUR' }).returning('id');
    await withCard(account.id, 'pm_card_visa');
    const { key, result } = await topUp(account.id, 1_200n);
    expect(result.status).toBe('refunded');
    const row = await stack.t.db('top_ups').where({ idempotency_key: key }).first();
    expect(row.status).toBe('refunded');
    const payment = await gateway.getPayment(row.payment_ref);
    expect(payment).toMatchObject({ amountCapturedMinor: 1_200n, amountRefundedMinor: 1_200n });
  });

  it('a voucher redeemed twice at once is credited once', async () => {
    const a = await seedAccount(stack.t.db);
    const b = await seedAccount(stack.t.db);
    const batch = await createVoucherBatch(stack.t.db, { count: 3, amountMinor: 1_500n, currency: 'EUR', expiresAt: new Date(Date.now() + 86_400_000), actor: 'test' });
    expect(new Set(batch.pins.map((p) => p.pin)).size).toBe(3);
    const stored = await stack.t.db('vouchers').where({ batch_id: batch.id });
    expect(stored.some((v) => v.pin_hash.toString().includes(batch.pins[0].pin))).toBe(false);
    const pin = batch.pins[0].pin;
    const attempts = await Promise.allSettled([
      redeemVoucher(stack.t.db, stack.engine, { pin, billingAccountId: a, actor: 'test' }),
      redeemVoucher(stack.t.db, stack.engine, { pin, billingAccountId: b, actor: 'test' }),
      redeemVoucher(stack.t.db, stack.engine, { pin, billingAccountId: a, actor: 'test' }),
    ]);
    const ok = attempts.filter((x) => x.status === 'fulfilled');
    const refused = attempts.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    expect(refused.every((r) => r.reason instanceof DomainError && r.reason.code === 'VOUCHER_ALREADY_REDEEMED')).toBe(true);
    expect((await balanceMinor(a)) + (await balanceMinor(b))).toBe(1_500n);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    const entries = await stack.t.db('journal_entries').where('source_ref', `voucher:${batch.pins[0].serial}`);
    expect(entries).toHaveLength(1);
    await expect(redeemVoucher(stack.t.db, stack.engine, { pin: '0000000000000000', billingAccountId: a, actor: 'test' })).rejects.toMatchObject({ code: 'VOUCHER_INVALID' });
  });
});
