/** Final bills: the billing run consumes the `final_bill_requests` that terminating a live line
 * writes. The account's last line → its open invoice is closed at the run's date and issued as the
 * final invoice (collected by `invoice:<id>`); another live line → the line stays on the open
 * invoice; prepaid → nothing to invoice; no open invoice but unbilled usage → a final invoice for
 * it. Each request is consumed once; a later invoice of the same month bills no usage twice. */
import crypto from 'node:crypto';
import { useBillingTestStack } from './support';
import { seedAccount, seedLine, seedPlan } from '../../domain/charging/testing/fixtures';
import { SandboxPaymentGateway } from '../../domain/payments';
import { savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { addInvoiceLine, findInvoice, invoiceLines, issueInvoice, openInvoiceFor } from '../../domain/billing/invoices.repository';
import { consumeFinalBillRequests } from '../../domain/billing/final-bills.repository';
import type { InvoiceWorkflowState } from '../../workflows/invoice.messages';

jest.setTimeout(120_000);

// Fixed dates in the past: the lines' own subscriptions renew a month from now, so the run charges
// nothing else, and no invoice of these accounts is due on RUN_DATE except the final ones.
const TERMINATED_AT = new Date('2026-03-10T12:00:00Z');
const RUN_DATE = '2026-03-11';

describe('final bills', () => {
  const gateway = new SandboxPaymentGateway();
  const stack = useBillingTestStack(gateway);
  let planId: string;
  beforeAll(async () => {
    planId = await seedPlan(stack.t.db);
  });

  async function postpaid(opts: { card?: boolean; paymentType?: 'postpaid' | 'prepaid' } = {}) {
    const id = await seedAccount(stack.t.db, { paymentType: opts.paymentType ?? 'postpaid', creditLimitMinor: 100_000n });
    if (opts.card) {
      const customer = await gateway.createCustomer({ billingAccountId: id });
      const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa' });
      await savePaymentMethod(stack.t.db, { billingAccountId: id, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    }
    return id;
  }
  const line = (accountId: string) => seedLine(stack.t.db, { planId, accountId });
  /** What terminating a live line writes (subscribers.repository.ts `recordTransition`), at a fixed time. */
  async function terminate(l: { subscriberId: string; subscriptionId: string; accountId: string }, at = TERMINATED_AT) {
    await stack.t.db('subscribers').where({ id: l.subscriberId }).update({ state: 'terminated', terminated_at: at });
    const id = `subscriber:${l.subscriberId}:9`;
    await stack.t.db('final_bill_requests').insert({ id, subscriber_id: l.subscriberId, billing_account_id: l.accountId, subscription_id: l.subscriptionId, terminated_at: at, actor: 'test' });
    return id;
  }
  async function usage(l: { subscriberId: string; accountId: string }, at: Date, micros: bigint) {
    await stack.t.db('rated_usage').insert({
      charging_data_ref: crypto.randomUUID(), invocation_sequence_number: 1, rating_group: 10, subscriber_id: l.subscriberId, billing_account_id: l.accountId,
      service: 'data', zone: 'home', started_at: at, ended_at: at, used_units: 1_000_000, bucket_units: 0, priced_units: 1_000_000,
      amount_micros: micros.toString(), currency: 'EUR',
    });
  }
  async function run(cycleDate: string) {
    const h = await stack.w.client.workflow.start('billingRunWorkflow', {
      workflowId: `billing-run:${cycleDate}:${crypto.randomUUID()}`, taskQueue: stack.w.taskQueue, args: [{ cycleDate, batchSize: 50, dunningDayMs: 50 }],
    });
    return h.result();
  }
  const request = (id: string) => stack.t.db('final_bill_requests').where({ id }).first();

  it('the account’s last line: the open invoice is issued now as the final invoice, once', async () => {
    const account = await postpaid({ card: true });
    const l = await line(account);
    await addInvoiceLine(stack.t.db, { billingAccountId: account, asOf: '2026-03-05', kind: 'one_off', description: 'SIM card', amountMinor: 1_000n, sourceRef: 'sim' });
    const open = await openInvoiceFor(stack.t.db, account, '2026-03-05');
    await usage(l, new Date('2026-03-09T08:00:00Z'), 1_500_000n);
    const requestId = await terminate(l);

    // Terminated on the 10th: the run of the 10th leaves it for the next run (its last day is not over).
    await run('2026-03-10');
    expect((await request(requestId)).consumed_at).toBeNull();

    await run(RUN_DATE);
    const r = await request(requestId);
    expect(r.consumed_at).not.toBeNull();
    expect(r.invoice_ref).toBe(open.id);
    const state = (await stack.w.client.workflow.getHandle(`invoice:${open.id}`).result()) as InvoiceWorkflowState;
    expect(state.outcome).toBe('paid');
    const inv = (await findInvoice(stack.t.db, open.id))!;
    // 10.00 + 1.50 usage = 11.50, 19 % tax 2.19, total 13.69; the period ends at the run's date.
    expect(inv).toMatchObject({ status: 'paid', periodStart: '2026-03-01', periodEnd: RUN_DATE, subtotalMinor: 1_150n, taxMinor: 219n, totalMinor: 1_369n });
    expect(inv.number).toMatch(/^INV-/);
    expect((await invoiceLines(stack.t.db, inv.id)).map((x) => [x.kind, x.amountMinor])).toEqual([['one_off', 1_000n], ['usage', 150n], ['tax', 219n]]);

    // A rerun consumes nothing and issues nothing new.
    const consumedAt = r.consumed_at;
    await run(RUN_DATE);
    expect((await request(requestId)).consumed_at).toEqual(consumedAt);
    expect(await stack.t.db('invoices').where({ billing_account_id: account }).count({ n: '*' }).first()).toEqual({ n: '1' });

    // A later invoice of the same month (a fee after all, say) starts where the final one ended.
    await addInvoiceLine(stack.t.db, { billingAccountId: account, asOf: '2026-03-20', kind: 'one_off', description: 'Number port-out fee', amountMinor: 500n, sourceRef: 'port-out' });
    const later = await issueInvoice(stack.t.db, (await openInvoiceFor(stack.t.db, account, '2026-03-20')).id, { asOf: '2026-04-01' });
    expect(later).toMatchObject({ periodStart: RUN_DATE, periodEnd: '2026-04-01', subtotalMinor: 500n });
  });

  it('another live line on the account: the ended line stays on the open invoice', async () => {
    const account = await postpaid();
    const ending = await line(account);
    await line(account);
    await addInvoiceLine(stack.t.db, { billingAccountId: account, asOf: '2026-03-05', kind: 'one_off', description: 'SIM card', amountMinor: 1_000n, sourceRef: 'sim' });
    const open = await openInvoiceFor(stack.t.db, account, '2026-03-05');
    const requestId = await terminate(ending);
    await run(RUN_DATE);
    expect(await request(requestId)).toMatchObject({ invoice_ref: open.id, consumed_at: expect.any(Date) });
    expect(await findInvoice(stack.t.db, open.id)).toMatchObject({ status: 'open', periodEnd: '2026-04-01' });
  });

  it('a family member’s line, a prepaid line, and an account with only unbilled usage', async () => {
    // The parent pays; its member's last line ending closes the parent's open invoice.
    const parent = await postpaid();
    const member = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 0n, parentAccountId: parent });
    const memberLine = await line(member);
    await addInvoiceLine(stack.t.db, { billingAccountId: member, asOf: '2026-03-02', kind: 'one_off', description: 'SIM card', amountMinor: 1_000n, sourceRef: 'sim' });
    const familyInvoice = await openInvoiceFor(stack.t.db, parent, '2026-03-02');
    const familyRequest = await terminate(memberLine);

    const prepaid = await postpaid({ paymentType: 'prepaid' });
    const prepaidRequest = await terminate(await line(prepaid));

    // No open invoice (no fee this month yet) but usage before the end: a final invoice for it.
    const usageOnly = await postpaid();
    const u = await line(usageOnly);
    await usage(u, new Date('2026-03-03T10:00:00Z'), 2_000_000n);
    const usageRequest = await terminate(u);

    const batch = await consumeFinalBillRequests(stack.t.db, { cycleDate: RUN_DATE, limit: 100 });
    expect(batch).toMatchObject({ closed: 1, opened: 1 });
    expect(await request(familyRequest)).toMatchObject({ invoice_ref: familyInvoice.id });
    expect(await findInvoice(stack.t.db, familyInvoice.id)).toMatchObject({ status: 'open', periodEnd: RUN_DATE });
    expect(await request(prepaidRequest)).toMatchObject({ invoice_ref: null, consumed_at: expect.any(Date) });
    expect(await stack.t.db('invoices').where({ billing_account_id: prepaid })).toEqual([]);
    const made = await stack.t.db('invoices').where({ billing_account_id: usageOnly }).first();
    expect(await request(usageRequest)).toMatchObject({ invoice_ref: made.id });
    const issued = await issueInvoice(stack.t.db, made.id, { asOf: RUN_DATE });
    expect(issued).toMatchObject({ periodStart: '2026-03-01', periodEnd: RUN_DATE, subtotalMinor: 200n, taxMinor: 38n });
    // Consumed once: another pass finds nothing.
    expect(await consumeFinalBillRequests(stack.t.db, { cycleDate: RUN_DATE, limit: 100 })).toEqual({ scanned: 0, closed: 0, opened: 0 });
  });
});
