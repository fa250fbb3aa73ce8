import { renderInvoicePdf, pdfText } from './invoice-pdf';
import { renderInvoiceHtml, type InvoiceDocument } from './invoice-render';
import { pdfTextOf } from './testing/pdf-text';

const doc: InvoiceDocument = {
  invoice: {
    id: '7d1f3c9e-0000-4000-8000-000000000001', billingAccountId: 'a0000000-0000-4000-8000-000000000002', number: 'INV-00000042', status: 'issued',
    currency: 'EUR', periodStart: '2026-03-01', periodEnd: '2026-04-01', subtotalMinor: 2_550n, taxMinor: 485n, totalMinor: 3_035n,
    creditedMinor: 300n, paidMinor: 1_000n, taxRatePpm: 190_000, issuedAt: new Date('2026-04-01T02:00:00Z'), dueOn: '2026-04-15', paidAt: null,
    createdAt: new Date('2026-03-01T00:00:00Z'),
  },
  lines: [
    { id: '1', kind: 'recurring_fee', subscriberId: null, description: 'Postpaid M for 4915100000001, 2026-03-01 to 2026-04-01', service: null, quantity: null, amountMinor: 2_000n, sourceRef: 'a', outsideWallet: false },
    { id: '2', kind: 'discount', subscriberId: null, description: 'Promotion on Postpaid M', service: null, quantity: null, amountMinor: -500n, sourceRef: 'b', outsideWallet: false },
    { id: '3', kind: 'usage', subscriberId: null, description: 'data usage beyond allowance', service: 'data', quantity: 10n, amountMinor: 1_250n, sourceRef: 'c', outsideWallet: false },
    { id: '4', kind: 'credit', subscriberId: null, description: 'Goodwill', service: null, quantity: null, amountMinor: -200n, sourceRef: 'd', outsideWallet: false },
    { id: '5', kind: 'tax', subscriberId: null, description: 'VAT 19 %', service: null, quantity: null, amountMinor: 485n, sourceRef: 'tax', outsideWallet: false },
  ],
  creditNotes: [{ id: 'c', number: 'CN-00000007', invoiceId: 'x', amountMinor: 300n, reason: 'Outage', walletMinor: 252n, createdBy: 't', createdAt: new Date() }],
  customerName: 'Zoë Łukasiewicz',
};

describe('invoice PDF', () => {
  it('shows what the HTML shows: parties, period, items by kind, discounts, tax at its rate, credits, totals, due date', async () => {
    const pdf = await renderInvoicePdf(doc, { compress: false });
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const text = pdfTextOf(pdf);
    for (const s of [
      'INV-00000042', 'Zoë Lukasiewicz', `Account ${doc.invoice.billingAccountId}`, 'Period 2026-03-01', 'Due 2026-04-15', 'Issued 2026-04-01',
      'Recurring fees', 'Postpaid M for 4915100000001', '20.00 EUR', 'Discounts', '-5.00 EUR', 'Usage beyond allowance', '12.50 EUR',
      'Credits', 'Goodwill', 'Subtotal', '25.50 EUR', 'Tax (19.00 %)', '4.85 EUR', 'Total', '30.35 EUR',
      'Credit note CN-00000007: Outage', '-3.00 EUR', 'Paid', '-10.00 EUR', 'Amount due', '17.35 EUR',
    ]) expect(text).toContain(s);
    // The tax line is the tax row, not an item.
    expect(text).not.toContain('VAT 19 %');
    const html = renderInvoiceHtml(doc);
    for (const s of ['Recurring fees', 'Tax (19.00 %)', '4.85 EUR', '17.35 EUR', 'CN-00000007']) expect(html).toContain(s);
  });

  it('deflates by default and renders the same bytes for the same invoice', async () => {
    const a = await renderInvoicePdf(doc);
    expect(a.toString('latin1')).toContain('/FlateDecode');
    expect(pdfTextOf(a)).toContain('INV-00000042');
    expect((await renderInvoicePdf(doc)).equals(a)).toBe(true);
  });

  it('keeps text to what the standard fonts can show', () => {
    expect(pdfText('−5.00 EUR')).toBe('-5.00 EUR');
    expect(pdfText('Zoë Łukasz 東京\n€')).toBe('Zoë Lukasz ?? €');
  });
});
