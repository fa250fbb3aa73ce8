/** A customer-readable HTML invoice, pure (no I/O): printable on A4 from a browser ("Save as PDF"). */
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

export function renderInvoiceHtml(doc: InvoiceDocument): string {
  const { invoice: inv } = doc;
  const m = (v: bigint) => esc(formatMoney(v, inv.currency));
  const body = doc.lines.filter((l) => l.kind !== 'tax');
  const rows = body.map((l) => `<tr><td>${esc(l.description)}</td><td class="k">${esc(l.kind.replace('_', ' '))}</td><td class="n">${m(l.amountMinor)}</td></tr>`).join('\n');
  const credits = doc.creditNotes.map((c) => `<tr><td>Credit note ${esc(c.number)}: ${esc(c.reason)}</td><td class="k">credit note</td><td class="n">${m(-c.amountMinor)}</td></tr>`).join('\n');
  const due = inv.totalMinor - inv.creditedMinor - inv.paidMinor;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice ${esc(inv.number ?? 'draft')}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:46rem;color:#222}
h1{font-size:1.4rem;margin:0}table{width:100%;border-collapse:collapse;margin-top:1.5rem}
td,th{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:left}.n{text-align:right;white-space:nowrap}.k{color:#666;font-size:.85em}
tfoot td{font-weight:600;border-bottom:none}.meta{display:flex;justify-content:space-between;margin-top:1rem}
@media print{body{margin:0}}
</style></head><body>
<header><h1>${esc(doc.operatorName ?? 'mvno-bss')} — Invoice ${esc(inv.number ?? '(draft, not issued)')}</h1></header>
<div class="meta"><div><strong>${esc(doc.customerName)}</strong><br>Account ${esc(inv.billingAccountId)}</div>
<div>Period ${esc(inv.periodStart)} – ${esc(inv.periodEnd)}<br>Issued ${esc(inv.issuedAt ? inv.issuedAt.toISOString().slice(0, 10) : '—')}<br>Due ${esc(inv.dueOn ?? '—')}</div></div>
<table><thead><tr><th>Description</th><th>Kind</th><th class="n">Amount</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot>
<tr><td colspan="2">Subtotal</td><td class="n">${m(inv.subtotalMinor)}</td></tr>
<tr><td colspan="2">Tax (${((inv.taxRatePpm ?? 0) / 10_000).toFixed(2)} %)</td><td class="n">${m(inv.taxMinor)}</td></tr>
<tr><td colspan="2">Total</td><td class="n">${m(inv.totalMinor)}</td></tr>
${credits}
${inv.paidMinor > 0n ? `<tr><td colspan="2">Paid</td><td class="n">${m(-inv.paidMinor)}</td></tr>` : ''}
<tr><td colspan="2">Amount due</td><td class="n">${m(due > 0n ? due : 0n)}</td></tr>
</tfoot></table>
<p class="k">Status: ${esc(inv.status)}. Issued invoices are never changed; corrections are credit notes.</p>
</body></html>`;
}
