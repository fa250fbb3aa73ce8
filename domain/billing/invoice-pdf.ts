/**
 * The invoice as a PDF (A4), laid out from the same view as the HTML (`invoiceView`): nothing is
 * computed here, only placed. pdfkit is pure JavaScript and renders in memory (no I/O). Its
 * standard fonts (Helvetica) need no font file but encode WinAnsi only, so other characters are
 * shown as their base letter or '?' (`pdfText`); a customer name in another script needs a Unicode
 * TTF embedded (`registerFont`), which this project does not ship yet.
 */
import PDFDocument from 'pdfkit';
import { invoiceView, type InvoiceDocument, type InvoiceViewRow } from './invoice-render';

/** Characters beyond Latin-1 that WinAnsi has. */
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
/** Latin letters that Unicode does not decompose into a base letter and a mark. */
const BASE_LETTER: Record<string, string> = { Ł: 'L', ł: 'l', Đ: 'D', đ: 'd', Ħ: 'H', ħ: 'h', ı: 'i' };

/** Text as the standard PDF fonts can show it: the minus sign as a hyphen, whitespace as a space,
 * accented letters outside WinAnsi as their base letter, anything else as '?'. */
export function pdfText(s: string): string {
  return s.replace(/−/g, '-').replace(/\s/g, ' ').replace(/[^\x20-\x7e\xa0-\xff]/gu, (c) => {
    if (WIN_ANSI_EXTRA.has(c)) return c;
    if (BASE_LETTER[c]) return BASE_LETTER[c];
    const base = c.normalize('NFD')[0];
    return base && base !== c && /[\x20-\x7e\xa0-\xff]/.test(base) ? base : '?';
  });
}

export interface PdfOptions {
  /** Deflate the content streams (default). Off, the text can be read in the bytes (tests). */
  compress?: boolean;
}

export function renderInvoicePdf(doc: InvoiceDocument, options: PdfOptions = {}): Promise<Buffer> {
  const v = invoiceView(doc);
  const pdf = new PDFDocument({
    size: 'A4', margin: 50, compress: options.compress ?? true,
    // The creation date is the invoice's own, so the same invoice renders to the same bytes.
    info: { Title: pdfText(v.title), Author: pdfText(v.operatorName), CreationDate: doc.invoice.issuedAt ?? doc.invoice.createdAt },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (c: Buffer) => chunks.push(c));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });

  const left = pdf.page.margins.left;
  const width = pdf.page.width - left - pdf.page.margins.right;
  const amountWidth = 120;
  const labelWidth = width - amountWidth - 12;
  const half = width / 2;

  pdf.font('Helvetica-Bold').fontSize(17).fillColor('#222222').text(pdfText(`${v.operatorName} — ${v.title}`), left, pdf.page.margins.top, { width });
  const metaTop = pdf.y + 14;
  pdf.font('Helvetica-Bold').fontSize(10).text(pdfText(v.customerName), left, metaTop, { width: half });
  pdf.font('Helvetica').text(pdfText(`Account ${v.billingAccountId}`), left, pdf.y, { width: half });
  const leftBottom = pdf.y;
  pdf.text(pdfText(`Period ${v.periodStart} – ${v.periodEnd}`), left + half, metaTop, { width: half, align: 'right' });
  pdf.text(pdfText(`Issued ${v.issuedOn ?? '—'}`), left + half, pdf.y, { width: half, align: 'right' });
  pdf.text(pdfText(`Due ${v.dueOn ?? '—'}`), left + half, pdf.y, { width: half, align: 'right' });
  pdf.y = Math.max(leftBottom, pdf.y) + 24;

  const rule = () => {
    pdf.moveTo(left, pdf.y + 2).lineTo(left + width, pdf.y + 2).lineWidth(0.5).strokeColor('#cccccc').stroke();
    pdf.y += 8;
  };
  const row = (r: InvoiceViewRow, style: { bold?: boolean; color?: string; gapBefore?: number } = {}) => {
    pdf.font(style.bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(10).fillColor(style.color ?? '#222222');
    const label = pdfText(r.label);
    const height = Math.max(pdf.heightOfString(label, { width: labelWidth }), pdf.currentLineHeight());
    let y = pdf.y + (style.gapBefore ?? 0);
    if (y + height > pdf.page.height - pdf.page.margins.bottom) {
      pdf.addPage();
      y = pdf.page.margins.top;
    }
    pdf.text(label, left, y, { width: labelWidth });
    pdf.text(pdfText(r.amount), left + labelWidth + 12, y, { width: amountWidth, align: 'right' });
    pdf.y = y + height + 4;
  };

  row({ label: 'Description', amount: 'Amount' }, { bold: true });
  rule();
  for (const s of v.sections) {
    row({ label: s.heading, amount: s.total }, { bold: true, color: '#555555', gapBefore: 6 });
    for (const item of s.items) row(item);
  }
  rule();
  row({ label: 'Subtotal', amount: v.subtotal }, { bold: true });
  row(v.tax, { bold: true });
  row({ label: 'Total', amount: v.total }, { bold: true });
  for (const c of v.creditNotes) row(c);
  if (v.paid) row({ label: 'Paid', amount: v.paid });
  row({ label: 'Amount due', amount: v.amountDue }, { bold: true, gapBefore: 4 });
  pdf.font('Helvetica').fontSize(8).fillColor('#666666').text(pdfText(v.note), left, pdf.y + 16, { width });
  pdf.end();
  return done;
}
