/**
 * Postpaid invoices: one open invoice per billing account (the top of a family or business: every
 * member line lands on it), filled by the billing run (recurring fees, discounts), and issued at the
 * end of its period with usage beyond allowance by service (from rated usage, which the charging
 * engine journals), one-off charges, credits, and tax at the configured rate. Numbers are gapless:
 * a counter row per series is incremented in the issuing transaction, so a rolled-back issue gives
 * its number back. Issued invoices are immutable (database triggers); corrections are credit notes.
 * The tax of an issued invoice is journaled in the issuing transaction (receivables → tax payable),
 * and a credit note's tax share is journaled back in the crediting one (see invoice-tax.ts).
 */
import type { Knex } from 'knex';
import { DomainError } from '../shared/domain-error';
import { microsToMinorRounded, minorToMicros } from '../ledger/money';
import {
  creditNoteShareOf, creditNoteTaxEntryKey, creditNoteTaxShare, invoiceTaxEntryKey, receivablesAccountCode, taxOn, taxPayableAccountCode,
} from './invoice-tax';

export interface Invoice {
  id: string;
  billingAccountId: string;
  number: string | null;
  status: 'open' | 'issued' | 'paid' | 'void';
  currency: string;
  periodStart: string;
  periodEnd: string;
  subtotalMinor: bigint;
  taxMinor: bigint;
  totalMinor: bigint;
  creditedMinor: bigint;
  paidMinor: bigint;
  taxRatePpm: number | null;
  issuedAt: Date | null;
  dueOn: string | null;
  paidAt: Date | null;
  createdAt: Date;
}

export interface InvoiceLine {
  id: string;
  kind: 'recurring_fee' | 'usage' | 'one_off' | 'discount' | 'tax' | 'credit' | 'late_fee';
  subscriberId: string | null;
  description: string;
  service: string | null;
  quantity: bigint | null;
  amountMinor: bigint;
  sourceRef: string;
  /** A one-off or late fee the wallet could not take (credit limit): owed in receivables instead. */
  outsideWallet: boolean;
}

const day = (d: unknown) => (d instanceof Date ? d.toISOString().slice(0, 10) : String(d).slice(0, 10));

export const toInvoice = (r: Record<string, unknown>): Invoice => ({
  id: r.id as string, billingAccountId: r.billing_account_id as string, number: (r.number as string | null) ?? null, status: r.status as Invoice['status'],
  currency: String(r.currency).trim(), periodStart: day(r.period_start), periodEnd: day(r.period_end),
  subtotalMinor: BigInt(r.subtotal_minor as string), taxMinor: BigInt(r.tax_minor as string), totalMinor: BigInt(r.total_minor as string),
  creditedMinor: BigInt(r.credited_minor as string), paidMinor: BigInt(r.paid_minor as string), taxRatePpm: (r.tax_rate_ppm as number | null) ?? null,
  issuedAt: (r.issued_at as Date | null) ?? null, dueOn: r.due_on ? day(r.due_on) : null, paidAt: (r.paid_at as Date | null) ?? null, createdAt: r.created_at as Date,
});

const toLine = (r: Record<string, unknown>): InvoiceLine => ({
  id: String(r.id), kind: r.kind as InvoiceLine['kind'], subscriberId: (r.subscriber_id as string | null) ?? null, description: r.description as string,
  service: (r.service as string | null) ?? null, quantity: r.quantity == null ? null : BigInt(r.quantity as string), amountMinor: BigInt(r.amount_minor as string),
  sourceRef: r.source_ref as string, outsideWallet: Boolean(r.outside_wallet),
});

export async function findInvoice(db: Knex, id: string): Promise<Invoice | undefined> {
  const row = await db('invoices').where({ id }).first();
  return row ? toInvoice(row) : undefined;
}

export async function invoiceLines(db: Knex, invoiceId: string): Promise<InvoiceLine[]> {
  return (await db('invoice_lines').where({ invoice_id: invoiceId }).orderBy('id')).map(toLine);
}

export async function listInvoices(db: Knex, filter: { billingAccountId?: string; status?: Invoice['status'] }, limit = 50): Promise<Invoice[]> {
  const q = db('invoices').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
  if (filter.billingAccountId) q.where({ billing_account_id: filter.billingAccountId });
  if (filter.status) q.where({ status: filter.status });
  return (await q).map(toInvoice);
}

/** The account's open invoice (made when missing): where one-off charges and late fees go. */
export async function openInvoiceFor(db: Knex, billingAccountId: string, asOf: string): Promise<Invoice> {
  const account = await db('billing_accounts').where({ id: billingAccountId }).first('id', 'parent_account_id', 'currency');
  if (!account) throw new DomainError('ACCOUNT_NOT_FOUND', 'no billing account has this id', ['input', 'billingAccountId']);
  const payer = account.parent_account_id ?? account.id;
  const start = `${asOf.slice(0, 7)}-01`;
  const end = new Date(`${start}T00:00:00Z`);
  end.setUTCMonth(end.getUTCMonth() + 1);
  await db.raw(
    `INSERT INTO invoices (billing_account_id, period_start, period_end, currency) VALUES (?, ?, ?, ?)
     ON CONFLICT (billing_account_id) WHERE status = 'open' DO NOTHING`,
    [payer, start, end.toISOString().slice(0, 10), String(account.currency).trim()],
  );
  return toInvoice(await db('invoices').where({ billing_account_id: payer, status: 'open' }).first());
}

export interface InvoiceChargeInput {
  billingAccountId: string;
  asOf: string;
  kind: 'one_off' | 'credit' | 'late_fee';
  description: string;
  /** Positive; a credit is stored negative. */
  amountMinor: bigint;
  /** The charge's id, unique per paying account: recording it again finds the line it made. */
  sourceRef: string;
  subscriberId?: string;
}

/** The line on the paying account's open invoice, SQL only: callers that bill a customer use
 * `addInvoiceCharge` (invoice-wallet.service.ts), which moves the wallet too. Idempotent on the
 * source ref across the payer's invoices: a retry after the invoice was issued finds the line there
 * instead of putting it on the next invoice. */
export async function addInvoiceLine(db: Knex, input: InvoiceChargeInput & { outsideWallet?: boolean }): Promise<InvoiceLine> {
  const invoice = await openInvoiceFor(db, input.billingAccountId, input.asOf);
  const existing = await invoiceLineBySource(db, invoice.billingAccountId, input.sourceRef);
  if (existing) return existing;
  const amount = input.kind === 'credit' ? -(input.amountMinor < 0n ? -input.amountMinor : input.amountMinor) : input.amountMinor;
  await db('invoice_lines')
    .insert({
      invoice_id: invoice.id, kind: input.kind, subscriber_id: input.subscriberId ?? null, description: input.description, amount_minor: amount.toString(),
      source_ref: input.sourceRef, outside_wallet: input.outsideWallet ?? false,
    })
    .onConflict(['invoice_id', 'source_ref']).ignore();
  return toLine(await db('invoice_lines').where({ invoice_id: invoice.id, source_ref: input.sourceRef }).first());
}

/** A one-off, credit or late-fee line of a paying account by its source ref, on any of its invoices. */
export async function invoiceLineBySource(db: Knex, payerAccountId: string, sourceRef: string): Promise<InvoiceLine | undefined> {
  const row = await db('invoice_lines as l').join('invoices as i', 'i.id', 'l.invoice_id')
    .where({ 'i.billing_account_id': payerAccountId, 'l.source_ref': sourceRef }).whereIn('l.kind', ['one_off', 'credit', 'late_fee']).first('l.*');
  return row ? toLine(row) : undefined;
}

/** What of an invoice's total the wallet does not carry: its tax and the charges owed in receivables
 * (at most the total: credits beyond the wallet's part leave it in credit). */
export async function outsideWalletMinor(db: Knex, invoice: Pick<Invoice, 'id' | 'taxMinor' | 'totalMinor'>): Promise<bigint> {
  const r = await db('invoice_lines').where({ invoice_id: invoice.id, outside_wallet: true }).sum({ s: 'amount_minor' }).first();
  const outside = invoice.taxMinor + BigInt((r?.s as string | null) ?? '0');
  return outside > invoice.totalMinor ? (invoice.totalMinor > 0n ? invoice.totalMinor : 0n) : outside;
}

/** A charge the wallet refused (credit limit) booked as owed outside it: receivables → revenue, one
 * entry under the key the wallet debit would have used, so a later attempt of that debit is a
 * duplicate and the charge is booked once either way. */
export async function bookChargeInReceivables(
  db: Knex, e: { key: string; sourceRef: string; currency: string; amountMinor: bigint; actor: string; details: Record<string, unknown> },
): Promise<void> {
  await db.transaction((trx) => postPair(trx, {
    key: e.key, entryType: 'invoice', sourceRef: e.sourceRef, actor: e.actor, currency: e.currency, amountMinor: e.amountMinor,
    debit: { code: receivablesAccountCode(e.currency), kind: 'receivables' }, credit: { code: `revenue:${e.currency}`, kind: 'revenue' }, details: e.details,
  }));
}

/** Whether the journal entry under this key booked the charge in receivables (not the wallet). */
export async function bookedInReceivables(db: Knex, key: string): Promise<boolean> {
  return Boolean(await db('journal_entries as e').join('postings as p', 'p.journal_entry_id', 'e.id').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id')
    .where({ 'e.idempotency_key': key, 'a.kind': 'receivables' }).first('e.id'));
}

/** Usage beyond allowance by service, rated for the lines of an account and its member accounts
 * (family, business) that started in [from, to). */
export async function usageBeyondAllowance(db: Knex, accountId: string, from: string, to: string): Promise<{ service: string; units: string; micros: string }[]> {
  const usage = await db.raw(
    `SELECT ru.service, sum(ru.used_units)::text AS units, sum(ru.amount_micros)::text AS micros
       FROM rated_usage ru
      WHERE ru.billing_account_id IN (SELECT id FROM billing_accounts WHERE id = ? OR parent_account_id = ?)
        AND ru.started_at >= ?::date AND ru.started_at < ?::date AND ru.amount_micros > 0
      GROUP BY ru.service ORDER BY ru.service`,
    [accountId, accountId, from, to],
  );
  return usage.rows;
}

/** Issues an open invoice: usage lines, tax, gapless number, totals, due date. Idempotent: an issued
 * invoice is returned as it is. */
export async function issueInvoice(db: Knex, invoiceId: string, options: { asOf: string; paymentTermDays?: number }): Promise<Invoice> {
  return db.transaction(async (trx) => {
    const inv = await trx('invoices').where({ id: invoiceId }).forUpdate().first();
    if (!inv) throw new DomainError('INVOICE_NOT_FOUND', 'no invoice has this id', ['input', 'invoiceId']);
    if (inv.status !== 'open') return toInvoice(inv);
    const invoice = toInvoice(inv);
    // An invoice issued early for this account and period (a final bill: final-bills.repository.ts)
    // billed the usage up to its end; this one starts there, so no usage is billed twice.
    const earlier = await trx('invoices').where({ billing_account_id: invoice.billingAccountId }).whereIn('status', ['issued', 'paid']).whereNot({ id: invoiceId })
      .andWhere('period_end', '>', invoice.periodStart).andWhere('period_end', '<=', invoice.periodEnd).max({ end: 'period_end' }).first();
    const periodStart = earlier?.end ? day(earlier.end) : invoice.periodStart;
    const usage = await usageBeyondAllowance(trx, invoice.billingAccountId, periodStart, invoice.periodEnd);
    for (const u of usage) {
      const minor = microsToMinorRounded(BigInt(u.micros), invoice.currency);
      if (minor === 0n) continue;
      await trx('invoice_lines').insert({
        invoice_id: invoiceId, kind: 'usage', description: `${u.service} usage beyond allowance`, service: u.service, quantity: u.units,
        amount_minor: minor.toString(), source_ref: `usage:${u.service}`,
      }).onConflict(['invoice_id', 'source_ref']).ignore();
    }
    const sum = await trx('invoice_lines').where({ invoice_id: invoiceId }).whereNot({ kind: 'tax' }).sum({ s: 'amount_minor' }).first();
    const subtotal = BigInt((sum?.s as string | null) ?? '0');
    const rate = await trx('tax_rates').where({ is_default: true }).first('rate_ppm', 'name');
    const ratePpm = BigInt(rate?.rate_ppm ?? 0);
    const tax = taxOn(subtotal, ratePpm);
    if (tax !== 0n) {
      await trx('invoice_lines').insert({ invoice_id: invoiceId, kind: 'tax', description: rate?.name ?? 'Tax', amount_minor: tax.toString(), source_ref: 'tax' })
        .onConflict(['invoice_id', 'source_ref']).ignore();
    }
    const [seq] = await trx('invoice_number_sequences').where({ series: 'INV' }).increment('next_value', 1).returning('next_value');
    const number = `INV-${String(Number(seq.next_value) - 1).padStart(8, '0')}`;
    const due = new Date(`${options.asOf}T00:00:00Z`);
    due.setUTCDate(due.getUTCDate() + (options.paymentTermDays ?? 14));
    const total = subtotal + tax;
    const [row] = await trx('invoices').where({ id: invoiceId }).update({
      status: total <= 0n ? 'paid' : 'issued', number, period_start: periodStart, subtotal_minor: subtotal.toString(), tax_minor: tax.toString(), total_minor: total.toString(),
      tax_rate_ppm: Number(ratePpm), issued_at: trx.fn.now(), issued_on: options.asOf, due_on: due.toISOString().slice(0, 10), paid_at: total <= 0n ? trx.fn.now() : null,
    }).returning('*');
    await postTax(trx, {
      key: invoiceTaxEntryKey(invoiceId), entryType: 'invoice', sourceRef: `invoice:${invoiceId}`, currency: invoice.currency, taxMinor: tax,
      details: { invoice: number, taxRatePpm: Number(ratePpm), taxMinor: tax.toString() },
    });
    return toInvoice(row);
  });
}

/** One journal entry moving tax between the customer's receivable and the tax liability (positive:
 * tax owed on an issued invoice; negative: taken back by a credit note), in the caller's transaction. */
async function postTax(
  trx: Knex.Transaction,
  e: { key: string; entryType: 'invoice' | 'credit_note'; sourceRef: string; currency: string; taxMinor: bigint; details: Record<string, unknown> },
): Promise<void> {
  await postPair(trx, {
    key: e.key, entryType: e.entryType, sourceRef: e.sourceRef, actor: 'billing:tax', currency: e.currency, amountMinor: e.taxMinor,
    debit: { code: receivablesAccountCode(e.currency), kind: 'receivables' }, credit: { code: taxPayableAccountCode(e.currency), kind: 'taxes' }, details: e.details,
  });
}

/** One journal entry between two system accounts (a positive amount debits `debit` and credits
 * `credit`; a negative one the reverse), both postings in one statement (the double-entry trigger
 * checks each INSERT). Idempotent on its key. Neither account is a wallet or a bucket, so this never
 * races the charging engine. */
async function postPair(
  trx: Knex.Transaction,
  e: {
    key: string; entryType: 'invoice' | 'credit_note'; sourceRef: string; actor: string; currency: string; amountMinor: bigint;
    debit: { code: string; kind: string }; credit: { code: string; kind: string }; details: Record<string, unknown>;
  },
): Promise<void> {
  if (e.amountMinor === 0n) return;
  await trx.raw(
    `INSERT INTO ledger_accounts (code, kind, unit) VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT (code) DO NOTHING`,
    [e.debit.code, e.debit.kind, e.currency, e.credit.code, e.credit.kind, e.currency],
  );
  const [entry] = await trx('journal_entries')
    .insert({ entry_type: e.entryType, source_ref: e.sourceRef, idempotency_key: e.key, actor: e.actor, details: JSON.stringify(e.details), occurred_at: trx.fn.now() })
    .onConflict('idempotency_key').ignore()
    .returning('id');
  if (!entry) return;
  const micros = minorToMicros(e.amountMinor, e.currency);
  await trx.raw(
    `INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
     SELECT ?, a.id, a.unit, CASE WHEN a.code = ? THEN ?::bigint ELSE -?::bigint END FROM ledger_accounts a WHERE a.code IN (?, ?)`,
    [entry.id, e.credit.code, micros.toString(), micros.toString(), e.debit.code, e.credit.code],
  );
}

/** Open invoices whose period has ended on or before the date (a batch). */
export async function invoicesDue(db: Knex, asOf: string, limit = 500, afterId = '00000000-0000-0000-0000-000000000000'): Promise<string[]> {
  return db('invoices').where({ status: 'open' }).andWhere('period_end', '<=', asOf).andWhere('id', '>', afterId).orderBy('id').limit(limit).pluck('id');
}

/** Invoices issued for a date (`issued_on`; a batch, keyset by id): the billing run starts their
 * `invoice:<id>` from here, not from what its issuing step returned, so an issue that committed
 * before a crash (the step retried, found nothing left to issue) still gets its workflow. */
export async function invoicesIssuedOn(db: Knex, asOf: string, limit = 500, afterId = '00000000-0000-0000-0000-000000000000'): Promise<string[]> {
  return db('invoices').where({ issued_on: asOf }).andWhere('id', '>', afterId).orderBy('id').limit(limit).pluck('id');
}

export interface CreditNote {
  id: string;
  number: string;
  invoiceId: string;
  amountMinor: bigint;
  reason: string;
  /** What goes back to the wallet (the pre-tax part); null for notes made before it did. */
  walletMinor: bigint | null;
  createdBy: string;
  createdAt: Date;
}

const toCreditNote = (r: Record<string, unknown>): CreditNote => ({
  id: r.id as string, number: r.number as string, invoiceId: r.invoice_id as string, amountMinor: BigInt(r.amount_minor as string),
  reason: r.reason as string, walletMinor: r.wallet_minor == null ? null : BigInt(r.wallet_minor as string), createdBy: r.created_by as string, createdAt: r.created_at as Date,
});

/** A correction of an issued invoice: a credit note with its own gapless number; the invoice itself
 * stays as issued, only what is still due changes. The note's pre-tax part (`walletMinor`) is fixed
 * here; crediting it to the wallet goes through the charging engine after this transaction
 * (invoice-wallet.service.ts `issueCreditNote`, the entry point for callers). */
export async function createCreditNote(
  db: Knex, input: { invoiceId: string; amountMinor: bigint; reason: string; idempotencyKey: string; actor: string },
): Promise<CreditNote> {
  if (input.amountMinor <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amount']);
  if (!input.reason.trim()) throw new DomainError('REASON_REQUIRED', 'a credit note needs a reason', ['input', 'reason']);
  return db.transaction(async (trx) => {
    const existing = await trx('credit_notes').where({ idempotency_key: input.idempotencyKey }).first();
    if (existing) return toCreditNote(existing);
    const inv = await trx('invoices').where({ id: input.invoiceId }).forUpdate().first();
    if (!inv) throw new DomainError('INVOICE_NOT_FOUND', 'no invoice has this id', ['input', 'invoiceId']);
    if (inv.status === 'open') throw new DomainError('INVOICE_NOT_ISSUED', 'an open invoice is corrected by changing its lines, not by a credit note', ['input', 'invoiceId']);
    const creditable = BigInt(inv.total_minor) - BigInt(inv.credited_minor);
    if (input.amountMinor > creditable) throw new DomainError('AMOUNT_TOO_LARGE', `at most ${creditable} can still be credited on this invoice`, ['input', 'amount']);
    const running = { totalMinor: BigInt(inv.total_minor), creditedBeforeMinor: BigInt(inv.credited_minor), amountMinor: input.amountMinor };
    const share = creditNoteTaxShare({ ...running, taxMinor: BigInt(inv.tax_minor) });
    // What the wallet does not carry (tax, charges owed in receivables) is credited outside it; the rest
    // goes back to the wallet (invoice-wallet.service.ts).
    const outside = creditNoteShareOf({ ...running, partMinor: await outsideWalletMinor(trx, toInvoice(inv)) });
    const [seq] = await trx('invoice_number_sequences').where({ series: 'CN' }).increment('next_value', 1).returning('next_value');
    const [row] = await trx('credit_notes').insert({
      number: `CN-${String(Number(seq.next_value) - 1).padStart(8, '0')}`, invoice_id: input.invoiceId, amount_minor: input.amountMinor.toString(),
      reason: input.reason.trim(), idempotency_key: input.idempotencyKey, created_by: input.actor, wallet_minor: (input.amountMinor - outside).toString(),
    }).returning('*');
    // The receivables' share (charges the wallet refused): revenue → receivables, back.
    await postPair(trx, {
      key: `credit-note-receivable:${row.id}`, entryType: 'credit_note', sourceRef: `credit-note:${row.id}`, actor: input.actor, currency: String(inv.currency).trim(),
      amountMinor: -(outside - share), debit: { code: receivablesAccountCode(String(inv.currency).trim()), kind: 'receivables' },
      credit: { code: `revenue:${String(inv.currency).trim()}`, kind: 'revenue' }, details: { invoice: inv.number, creditNote: row.number },
    });
    // Only an invoice whose tax was journaled at issue has a tax share to take back.
    if (await trx('journal_entries').where({ idempotency_key: invoiceTaxEntryKey(input.invoiceId) }).first('id')) {
      await postTax(trx, {
        key: creditNoteTaxEntryKey(row.id), entryType: 'credit_note', sourceRef: `credit-note:${row.id}`, currency: String(inv.currency).trim(), taxMinor: -share,
        details: { invoice: inv.number, creditNote: row.number, taxMinor: (-share).toString() },
      });
    }
    const credited = BigInt(inv.credited_minor) + input.amountMinor;
    const settled = credited + BigInt(inv.paid_minor) >= BigInt(inv.total_minor);
    await trx('invoices').where({ id: input.invoiceId }).update({
      credited_minor: credited.toString(), ...(settled && inv.status === 'issued' ? { status: 'paid', paid_at: trx.fn.now() } : {}),
    });
    return toCreditNote(row);
  });
}

export async function creditNotesOf(db: Knex, invoiceId: string): Promise<CreditNote[]> {
  return (await db('credit_notes').where({ invoice_id: invoiceId }).orderBy('created_at')).map(toCreditNote);
}

export const outstandingMinor = (i: Invoice) => {
  const o = i.totalMinor - i.creditedMinor - i.paidMinor;
  return o > 0n ? o : 0n;
};

/** Records a payment on an issued invoice; the invoice is paid once nothing is outstanding. */
export async function recordInvoicePayment(db: Knex, invoiceId: string, amountMinor: bigint): Promise<Invoice> {
  return db.transaction(async (trx) => {
    const inv = toInvoice(await trx('invoices').where({ id: invoiceId }).forUpdate().first());
    const paid = inv.paidMinor + amountMinor;
    const settled = paid + inv.creditedMinor >= inv.totalMinor;
    const [row] = await trx('invoices').where({ id: invoiceId }).update({
      paid_minor: paid.toString(), ...(settled && inv.status === 'issued' ? { status: 'paid', paid_at: trx.fn.now() } : {}),
    }).returning('*');
    return toInvoice(row);
  });
}
