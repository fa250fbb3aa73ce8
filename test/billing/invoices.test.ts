/** Postpaid invoices and dunning (`invoice:<id>`) on a shortened timetable (a "day" is 150 ms; the
 * Java time-skipping server is not set up here): issue with usage, tax and gapless numbers,
 * immutability, credit notes, HTML; collection from the saved card; reminders, late fee, suspension
 * and termination when it keeps failing; dunning stops as soon as the invoice is paid. */
import crypto from 'node:crypto';
import { useBillingTestStack } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { SandboxPaymentGateway } from '../../domain/payments';
import { savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { creditNotesOf, findInvoice, invoiceLines, issueInvoice, openInvoiceFor } from '../../domain/billing/invoices.repository';
import { addInvoiceCharge, invoiceChargeKey, issueCreditNote } from '../../domain/billing/invoice-wallet.service';
import { debitWallet } from '../../domain/ledger/wallet-operations';
import { creditNoteTaxShare } from '../../domain/billing/invoice-tax';
import { renderInvoiceHtml } from '../../domain/billing/invoice-render';
import { invoicePaidSignal, type DunningTimetable, type InvoiceWorkflowState } from '../../workflows/invoice.messages';

jest.setTimeout(120_000);

const TIMETABLE: DunningTimetable = { reminderDays: [1, 2], lateFeeMinor: 500, lateFeeAfterDays: 2, suspendAfterDays: 3, terminateAfterDays: 4 };

describe('postpaid invoices and dunning', () => {
  const gateway = new SandboxPaymentGateway();
  const stack = useBillingTestStack(gateway);

  const charge = (input: Omit<Parameters<typeof addInvoiceCharge>[1], 'actor'>) => addInvoiceCharge({ db: stack.t.db, engine: stack.engine }, { ...input, actor: 'test' });
  async function account(card: string) {
    const id = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 100_000n });
    const customer = await gateway.createCustomer({ billingAccountId: id });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: card });
    await savePaymentMethod(stack.t.db, { billingAccountId: id, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    const subscriberId = crypto.randomUUID();
    await stack.t.db('subscribers').insert({ id: subscriberId, billing_account_id: id, msisdn: `49171${crypto.randomInt(1e6, 9e6)}`, state: 'active', activated_at: new Date() });
    await charge({ billingAccountId: id, asOf: '2026-03-10', kind: 'one_off', description: 'SIM card', amountMinor: 1000n, sourceRef: 'sim-fee' });
    await charge({ billingAccountId: id, asOf: '2026-03-10', kind: 'credit', description: 'Goodwill', amountMinor: 200n, sourceRef: 'goodwill' });
    return { id, subscriberId, invoice: await openInvoiceFor(stack.t.db, id, '2026-03-10') };
  }
  /** Sum of the postings on a system account, optionally of one journal entry (by its key). */
  async function posted(code: string, entryKey?: string): Promise<bigint> {
    const q = stack.t.db('postings as p').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id').join('journal_entries as e', 'e.id', 'p.journal_entry_id')
      .where('a.code', code);
    if (entryKey) q.where('e.idempotency_key', entryKey);
    return BigInt((await q.sum({ s: 'p.amount' }).first())?.s ?? 0);
  }
  const walletMicros = async (accountId: string) => BigInt((await stack.t.db('wallets').where({ billing_account_id: accountId }).first()).balance_micros);
  const creditNote = (input: { invoiceId: string; amountMinor: bigint; reason: string; idempotencyKey: string; actor: string }) =>
    issueCreditNote({ db: stack.t.db, engine: stack.engine }, input);
  async function dun(invoiceId: string) {
    return stack.w.client.workflow.start('invoiceWorkflow', {
      workflowId: `invoice:${invoiceId}`, taskQueue: stack.w.taskQueue, args: [{ invoiceId, asOf: '2026-04-01', timetable: TIMETABLE, dayMs: 150 }],
    });
  }

  it('issues, collects from the saved card, and is immutable afterwards', async () => {
    const a = await account('pm_card_visa');
    const state = (await (await dun(a.invoice.id)).result()) as InvoiceWorkflowState;
    expect(state.outcome).toBe('paid');
    const inv = (await findInvoice(stack.t.db, a.invoice.id))!;
    // 10.00 − 2.00 = 8.00, tax 19 % = 1.52, total 9.52.
    expect(inv).toMatchObject({ status: 'paid', subtotalMinor: 800n, taxMinor: 152n, totalMinor: 952n, paidMinor: 952n });
    expect(inv.number).toMatch(/^INV-\d{8}$/);
    // The wallet got the pre-tax part of the payment (receivables → wallet), 8.00. It had been debited
    // the 10.00 one-off and credited the 2.00 goodwill when they went on the invoice (−8.00), so the
    // paid invoice leaves it at 0: the account owes nothing. (Before one-offs and credits moved the
    // wallet, this was +8.00: a paid invoice left the account 8.00 in credit.)
    expect(await walletMicros(a.id)).toBe(0n);
    // The tax went to the tax liability when the invoice was issued (receivables → tax payable), once.
    expect(await posted('tax_payable:EUR', `invoice-tax:${inv.id}`)).toBe(1_520_000n);
    expect(await posted('receivables:EUR', `invoice-tax:${inv.id}`)).toBe(-1_520_000n);
    await issueInvoice(stack.t.db, inv.id, { asOf: '2026-04-02' });
    expect(await stack.t.db('journal_entries').where({ source_ref: `invoice:${inv.id}`, entry_type: 'invoice' }).count({ n: '*' }).first()).toEqual({ n: '1' });
    await expect(stack.t.db('invoice_lines').where({ invoice_id: inv.id }).update({ amount_minor: 1 })).rejects.toThrow(/immutable/);
    await expect(stack.t.db('invoices').where({ id: inv.id }).update({ total_minor: 1 })).rejects.toThrow(/issued/);
    await expect(stack.t.db('invoice_lines').insert({ invoice_id: inv.id, kind: 'one_off', description: 'x', amount_minor: 1, source_ref: 'late' })).rejects.toThrow(/immutable/);

    const walletBefore = await walletMicros(a.id);
    const cn = await creditNote({ invoiceId: inv.id, amountMinor: 300n, reason: 'Network outage', idempotencyKey: `cn-${inv.id}`, actor: 'test' });
    expect(cn.number).toMatch(/^CN-\d{8}$/);
    expect((await creditNote({ invoiceId: inv.id, amountMinor: 300n, reason: 'Network outage', idempotencyKey: `cn-${inv.id}`, actor: 'test' })).id).toBe(cn.id);
    // 3.00 of 9.52 credited takes back its tax share, 3.00 × 1.52 / 9.52 = 0.48, once, and its pre-tax
    // part, 2.52, goes back to the wallet, once: the invoice was paid, so the account is in credit.
    expect(await posted('tax_payable:EUR', `credit-note-tax:${cn.id}`)).toBe(-480_000n);
    expect(cn.walletMinor).toBe(252n);
    expect(await walletMicros(a.id)).toBe(walletBefore + 2_520_000n);
    expect(await stack.t.db('journal_entries').where({ source_ref: `credit-note:${cn.id}` }).orderBy('idempotency_key').pluck('idempotency_key'))
      .toEqual([`credit-note-tax:${cn.id}`, `credit-note:${cn.id}`]);
    await expect(creditNote({ invoiceId: inv.id, amountMinor: 10_000n, reason: 'too much', idempotencyKey: 'x', actor: 'test' })).rejects.toMatchObject({ code: 'AMOUNT_TOO_LARGE' });
    const html = renderInvoiceHtml({ invoice: (await findInvoice(stack.t.db, inv.id))!, lines: await invoiceLines(stack.t.db, inv.id), creditNotes: await creditNotesOf(stack.t.db, inv.id), customerName: 'Test <customer>' });
    expect(html).toContain(inv.number!);
    expect(html).toContain('9.52 EUR');
    expect(html).toContain('SIM card');
    expect(html).toContain(cn.number);
    expect(html).toContain('Test &lt;customer&gt;');
  });

  it('a credit note credits its pre-tax part back to the wallet: the wallet and the invoice agree', async () => {
    const id = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 100_000n });
    // The month's fee, debited as the billing run does and put on the open invoice.
    await debitWallet(stack.engine, { billingAccountId: id, amountMicros: 10_000_000n, idempotencyKey: `test-fee:${id}`, actor: 'test' });
    const open = await openInvoiceFor(stack.t.db, id, '2026-05-10');
    await stack.t.db('invoice_lines').insert({ invoice_id: open.id, kind: 'recurring_fee', description: 'Plan', amount_minor: 1_000, source_ref: `test-fee:${id}` });
    const inv = await issueInvoice(stack.t.db, open.id, { asOf: '2026-06-01' });
    expect(inv).toMatchObject({ subtotalMinor: 1_000n, taxMinor: 190n, totalMinor: 1_190n });
    expect(await walletMicros(id)).toBe(-10_000_000n);

    // 3.33 of 11.90: tax share round(3.33 × 1.90 / 11.90) = 0.53, pre-tax 2.80 back to the wallet.
    const first = await creditNote({ invoiceId: inv.id, amountMinor: 333n, reason: 'Outage', idempotencyKey: `cn-a-${inv.id}`, actor: 'test' });
    expect(first.walletMinor).toBe(280n);
    expect(await walletMicros(id)).toBe(-7_200_000n);
    // A retry (same key) credits nothing more.
    await creditNote({ invoiceId: inv.id, amountMinor: 333n, reason: 'Outage', idempotencyKey: `cn-a-${inv.id}`, actor: 'test' });
    expect(await walletMicros(id)).toBe(-7_200_000n);
    const entry = await stack.t.db('journal_entries').where({ idempotency_key: `credit-note:${first.id}` }).first();
    expect(entry).toMatchObject({ entry_type: 'credit_note', source_ref: `credit-note:${first.id}` });
    expect((await stack.t.db('postings as p').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id').where('p.journal_entry_id', entry.id)
      .select('a.kind', 'p.amount').orderBy('a.kind')).map((r) => [r.kind, String(r.amount)])).toEqual([['revenue', '-2800000'], ['wallet', '2800000']]);

    // The rest, 8.57: tax 1.90 − 0.53 = 1.37, pre-tax 7.20. The invoice is settled and the wallet owes nothing.
    const rest = await creditNote({ invoiceId: inv.id, amountMinor: 857n, reason: 'Cancelled', idempotencyKey: `cn-b-${inv.id}`, actor: 'test' });
    expect(rest.walletMinor).toBe(720n);
    expect(await walletMicros(id)).toBe(0n);
    expect(await findInvoice(stack.t.db, inv.id)).toMatchObject({ status: 'paid', creditedMinor: 1_190n });
  });

  it('one-offs and late fees debit the wallet, credits credit it; past the credit limit a charge is owed in receivables', async () => {
    const id = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 2_000n });
    const customer = await gateway.createCustomer({ billingAccountId: id });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa' });
    await savePaymentMethod(stack.t.db, { billingAccountId: id, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    const device = { billingAccountId: id, asOf: '2026-05-03', kind: 'one_off' as const, description: 'Device', amountMinor: 1_500n, sourceRef: 'device' };
    const roaming = { billingAccountId: id, asOf: '2026-05-04', kind: 'one_off' as const, description: 'Roaming pack', amountMinor: 1_000n, sourceRef: 'roaming' };
    expect(await charge(device)).toMatchObject({ kind: 'one_off', amountMinor: 1_500n, outsideWallet: false });
    expect(await walletMicros(id)).toBe(-15_000_000n);
    // −25.00 would pass the −20.00 limit: billed all the same, owed in receivables (receivables → revenue).
    expect(await charge(roaming)).toMatchObject({ amountMinor: 1_000n, outsideWallet: true });
    expect(await walletMicros(id)).toBe(-15_000_000n);
    expect(await posted('receivables:EUR', invoiceChargeKey(id, 'roaming'))).toBe(-10_000_000n);
    expect(await posted('revenue:EUR', invoiceChargeKey(id, 'roaming'))).toBe(10_000_000n);
    await charge({ billingAccountId: id, asOf: '2026-05-05', kind: 'credit', description: 'Goodwill', amountMinor: 300n, sourceRef: 'goodwill' });
    expect(await walletMicros(id)).toBe(-12_000_000n);
    // Retries (a crash after the wallet moved, say) find the line and the entry: nothing moves twice,
    // and the refused charge stays in receivables even though the wallet could take it now.
    await charge(device);
    await charge(roaming);
    await charge({ billingAccountId: id, asOf: '2026-05-05', kind: 'credit', description: 'Goodwill', amountMinor: 300n, sourceRef: 'goodwill' });
    expect(await walletMicros(id)).toBe(-12_000_000n);
    const open = await openInvoiceFor(stack.t.db, id, '2026-05-05');
    expect((await invoiceLines(stack.t.db, open.id)).map((l) => [l.sourceRef, l.amountMinor, l.outsideWallet]))
      .toEqual([['device', 1_500n, false], ['roaming', 1_000n, true], ['goodwill', -300n, false]]);

    // 22.00 + 19 % = 26.18, collected: the wallet takes 26.18 less the tax (4.18) and the receivable
    // (10.00), 12.00, and owes nothing.
    const state = (await (await dun(open.id)).result()) as InvoiceWorkflowState;
    expect(state.outcome).toBe('paid');
    expect(await findInvoice(stack.t.db, open.id)).toMatchObject({ subtotalMinor: 2_200n, taxMinor: 418n, totalMinor: 2_618n, paidMinor: 2_618n });
    expect(await walletMicros(id)).toBe(0n);
  });

  it('a credit note on an invoice with a charge owed in receivables credits the wallet only with the wallet’s part', async () => {
    const id = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 500n });
    await charge({ billingAccountId: id, asOf: '2026-05-03', kind: 'one_off', description: 'Accessory', amountMinor: 400n, sourceRef: 'accessory' });
    expect(await charge({ billingAccountId: id, asOf: '2026-05-03', kind: 'one_off', description: 'Device', amountMinor: 600n, sourceRef: 'device' }))
      .toMatchObject({ outsideWallet: true });
    const inv = await issueInvoice(stack.t.db, (await openInvoiceFor(stack.t.db, id, '2026-05-03')).id, { asOf: '2026-06-01' });
    // 11.90 = 4.00 in the wallet + 6.00 in receivables + 1.90 tax.
    expect(inv).toMatchObject({ subtotalMinor: 1_000n, taxMinor: 190n, totalMinor: 1_190n });
    expect(await walletMicros(id)).toBe(-4_000_000n);
    // Half: 0.95 tax, 3.00 receivable, 2.00 wallet.
    const half = await creditNote({ invoiceId: inv.id, amountMinor: 595n, reason: 'Returned', idempotencyKey: `cn-1-${inv.id}`, actor: 'test' });
    expect(half.walletMinor).toBe(200n);
    expect(await walletMicros(id)).toBe(-2_000_000n);
    expect(await posted('receivables:EUR', `credit-note-receivable:${half.id}`)).toBe(3_000_000n);
    expect(await posted('revenue:EUR', `credit-note-receivable:${half.id}`)).toBe(-3_000_000n);
    expect(await posted('tax_payable:EUR', `credit-note-tax:${half.id}`)).toBe(-950_000n);
    const rest = await creditNote({ invoiceId: inv.id, amountMinor: 595n, reason: 'Returned', idempotencyKey: `cn-2-${inv.id}`, actor: 'test' });
    expect(rest.walletMinor).toBe(200n);
    expect(await walletMicros(id)).toBe(0n);
    // The receivables of this account's charges are back to zero: the device, the tax, both notes.
    let receivables = await posted('receivables:EUR', invoiceChargeKey(id, 'device')) + await posted('receivables:EUR', `invoice-tax:${inv.id}`);
    for (const n of [half, rest]) receivables += await posted('receivables:EUR', `credit-note-receivable:${n.id}`) + await posted('receivables:EUR', `credit-note-tax:${n.id}`);
    expect(receivables).toBe(0n);
    expect(await findInvoice(stack.t.db, inv.id)).toMatchObject({ status: 'paid', creditedMinor: 1_190n });
  });

  it('dunning: reminders, late fee, suspension and termination when the card keeps failing', async () => {
    const a = await account('pm_card_chargeDeclined');
    const state = (await (await dun(a.invoice.id)).result()) as InvoiceWorkflowState;
    expect(state.outcome).toBe('terminated');
    expect(state.steps.map((s) => s.step)).toEqual(['issued', 'reminder', 'reminder', 'late_fee', 'suspended', 'terminated']);
    expect(stack.w.lifecycle.calls.filter((c) => c.subscriberId === a.subscriberId).map((c) => c.action)).toEqual(['suspend', 'terminate']);
    const next = await stack.t.db('invoices').where({ billing_account_id: a.id, status: 'open' }).first();
    expect(await stack.t.db('invoice_lines').where({ invoice_id: next.id, kind: 'late_fee' }).pluck('amount_minor')).toEqual(['500']);
    // Nothing was collected: the wallet owes the one-off less the goodwill, and the late fee, debited once.
    expect(await walletMicros(a.id)).toBe(-13_000_000n);
    expect(await stack.t.db('journal_entries').where({ idempotency_key: invoiceChargeKey(a.id, `late-fee:${a.invoice.id}`) }).pluck('source_ref'))
      .toEqual([invoiceChargeKey(a.id, `late-fee:${a.invoice.id}`)]);
    expect(await stack.t.db('notification_events').where({ billing_account_id: a.id }).pluck('event_type')).toEqual(
      expect.arrayContaining(['invoice_issued', 'payment_failed', 'suspension_warning']),
    );
  });

  it('stops dunning as soon as the invoice is paid', async () => {
    const a = await account('pm_card_chargeDeclined');
    const h = await dun(a.invoice.id);
    await new Promise((r) => setTimeout(r, 200));
    await h.signal(invoicePaidSignal);
    const state = (await h.result()) as InvoiceWorkflowState;
    expect(state.outcome).toBe('paid');
    expect(state.steps.map((s) => s.step)).not.toContain('suspended');
    expect(stack.w.lifecycle.calls.filter((c) => c.subscriberId === a.subscriberId)).toEqual([]);
  });

  it('the tax liability in the ledger reconciles with the issued invoices and credit notes', async () => {
    let expected = 0n;
    for (const inv of await stack.t.db('invoices').whereNot({ status: 'open' }).andWhere('currency', 'EUR')) {
      expected += BigInt(inv.tax_minor) * 10_000n;
      let credited = 0n;
      for (const cn of await stack.t.db('credit_notes').where({ invoice_id: inv.id }).orderBy('created_at')) {
        expected -= creditNoteTaxShare({ totalMinor: BigInt(inv.total_minor), taxMinor: BigInt(inv.tax_minor), creditedBeforeMinor: credited, amountMinor: BigInt(cn.amount_minor) }) * 10_000n;
        credited += BigInt(cn.amount_minor);
      }
    }
    expect(expected).toBeGreaterThan(0n);
    expect(await posted('tax_payable:EUR')).toBe(expected);
  });

  it('numbers invoices without gaps', async () => {
    const numbers = (await stack.t.db('invoices').whereNotNull('number').orderBy('number').pluck('number')).map((n: string) => Number(n.slice(4)));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0] + i));
  });
});
