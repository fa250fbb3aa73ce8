/**
 * What a customer reads on an invoice, pure (no I/O): `invoiceView` computes it once — line items
 * grouped by kind, subtotal, tax at its rate, total, credit notes, payments, the amount due — and
 * the renderers only lay it out: `renderInvoiceHtml` here (printable on A4 from a browser) and
 * `renderInvoicePdf` in invoice-pdf.ts.
 */
import type { CreditNote, Invoice, InvoiceLine } from './invoices.repository';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function formatMoney(minor: bigint, currency: string): string {
  const sign = minor < 0n ? '−' : '';
  const abs = minor < 0n ? -minor : minor;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${whole}.${(abs % 100n).toString().padStart(2, '0')} ${currency}`;
}

export interface InvoiceDocument {
  invoice: Invoice;
  lines: InvoiceLine[];
  creditNotes: CreditNote[];
  customerName: string;
  operatorName?: string;
}

type ItemKind = Exclude<InvoiceLine['kind'], 'tax'>;

/** Sections of an invoice in reading order: what is charged, then what is taken off. */
const SECTIONS: { kind: ItemKind; heading: string }[] = [
  { kind: 'recurring_fee', heading: 'Recurring fees' },
  { kind: 'usage', heading: 'Usage beyond allowance' },
  { kind: 'one_off', heading: 'One-off charges' },
  { kind: 'late_fee', heading: 'Late payment fees' },
  { kind: 'discount', heading: 'Discounts' },
  { kind: 'credit', heading: 'Credits' },
];

export interface InvoiceViewRow {
  label: string;
  amount: string;
}

export interface InvoiceView {
  operatorName: string;
  /** 'Invoice INV-…', or a draft's title. */
  title: string;
  number: string | null;
  customerName: string;
  billingAccountId: string;
  periodStart: string;
  periodEnd: string;
  issuedOn: string | null;
  dueOn: string | null;
  status: string;
  sections: { kind: ItemKind; heading: string; items: InvoiceViewRow[]; total: string }[];
  subtotal: string;
  /** 'Tax (19.00 %)' with its amount. */
  tax: InvoiceViewRow;
  total: string;
  /** Credit notes, each as a negative amount. */
  creditNotes: InvoiceViewRow[];
  paid: string | null;
  amountDue: string;
  note: string;
}

export function invoiceView(doc: InvoiceDocument): InvoiceView {
  const { invoice: inv } = doc;
  const m = (v: bigint) => formatMoney(v, inv.currency);
  const sections = SECTIONS.flatMap(({ kind, heading }) => {
    const lines = doc.lines.filter((l) => l.kind === kind);
    if (lines.length === 0) return [];
    return [{ kind, heading, items: lines.map((l) => ({ label: l.description, amount: m(l.amountMinor) })), total: m(lines.reduce((s, l) => s + l.amountMinor, 0n)) }];
  });
  const due = inv.totalMinor - inv.creditedMinor - inv.paidMinor;
  return {
    operatorName: doc.operatorName ?? 'mvno-bss',
    title: `Invoice ${inv.number ?? '(draft, not issued)'}`,
    number: inv.number,
    customerName: doc.customerName,
    billingAccountId: inv.billingAccountId,
    periodStart: inv.periodStart,
    periodEnd: inv.periodEnd,
    issuedOn: inv.issuedAt ? inv.issuedAt.toISOString().slice(0, 10) : null,
    dueOn: inv.dueOn,
    status: inv.status,
    sections,
    subtotal: m(inv.subtotalMinor),
    tax: { label: `Tax (${((inv.taxRatePpm ?? 0) / 10_000).toFixed(2)} %)`, amount: m(inv.taxMinor) },
    total: m(inv.totalMinor),
    creditNotes: doc.creditNotes.map((c) => ({ label: `Credit note ${c.number}: ${c.reason}`, amount: m(-c.amountMinor) })),
    paid: inv.paidMinor > 0n ? m(-inv.paidMinor) : null,
    amountDue: m(due > 0n ? due : 0n),
    note: `Status: ${inv.status}. Issued invoices are never changed; corrections are credit notes.`,
  };
}

export function renderInvoiceHtml(doc: InvoiceDocument): string {
  const v = invoiceView(doc);
  const row = (r: InvoiceViewRow, cls = '') => `<tr${cls ? ` class="${cls}"` : ''}><td>${esc(r.label)}</td><td class="n">${esc(r.amount)}</td></tr>`;
  const sections = v.sections.map((s) => [
    `<tr class="h"><th>${esc(s.heading)}</th><th class="n">${esc(s.total)}</th></tr>`,
    ...s.items.map((i) => row(i)),
  ].join('\n')).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(v.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:46rem;color:#222}
h1{font-size:1.4rem;margin:0}table{width:100%;border-collapse:collapse;margin-top:1.5rem}
td,th{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:left}.n{text-align:right;white-space:nowrap}.k{color:#666;font-size:.85em}
tr.h th{padding-top:1rem;color:#555;font-size:.9em}tfoot td{font-weight:600;border-bottom:none}.meta{display:flex;justify-content:space-between;margin-top:1rem}
@media print{body{margin:0}}
</style></head><body>
<header><h1>${esc(v.operatorName)} — ${esc(v.title)}</h1></header>
<div class="meta"><div><strong>${esc(v.customerName)}</strong><br>Account ${esc(v.billingAccountId)}</div>
<div>Period ${esc(v.periodStart)} – ${esc(v.periodEnd)}<br>Issued ${esc(v.issuedOn ?? '—')}<br>Due ${esc(v.dueOn ?? '—')}</div></div>
<table><thead><tr><th>Description</th><th class="n">Amount</th></tr></thead>
<tbody>
${sections}
</tbody>
<tfoot>
${row({ label: 'Subtotal', amount: v.subtotal })}
${row(v.tax)}
${row({ label: 'Total', amount: v.total })}
${v.creditNotes.map((c) => row(c)).join('\n')}
${v.paid ? row({ label: 'Paid', amount: v.paid }) : ''}
${row({ label: 'Amount due', amount: v.amountDue })}
</tfoot></table>
<p class="k">${esc(v.note)}</p>
</body></html>`;
}
