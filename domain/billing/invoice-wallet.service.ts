/**
 * What invoices move in the customer's wallet. A postpaid wallet carries what the account owes
 * before tax (negative within its credit limit), so whatever changes what the invoice says is owed
 * before tax moves the wallet too, through the charging engine (the hot path's locks; each movement
 * one journal entry, idempotent on a key derived from what caused it):
 *  - a one-off charge or late fee debits it (wallet → revenue), a credit line credits it (revenue →
 *    wallet), key `invoice-charge:<paying account>:<charge id>`. A debit the wallet refuses (past the
 *    credit limit) is still billed: booked in receivables under the same key, the line marked
 *    `outsideWallet`, so collection and credit notes leave it out of what they move in the wallet;
 *  - a credit note credits its part back (revenue → wallet), key `credit-note:<id>`: its amount less
 *    its shares of the tax and of the charges owed in receivables (those go back outside the wallet,
 *    invoices.repository.ts `createCreditNote`).
 * The invoice's own SQL is in invoices.repository.ts; the engine cannot join its transactions, so
 * each step is idempotent and a retry completes what a crash left half done.
 */
import type { Knex } from 'knex';
import type { ChargingEngine } from '../charging/charging-engine';
import { DomainError } from '../shared/domain-error';
import { creditWallet, debitWallet } from '../ledger/wallet-operations';
import { minorToMicros } from '../ledger/money';
import {
  addInvoiceLine, bookChargeInReceivables, bookedInReceivables, createCreditNote, findInvoice, invoiceLineBySource, openInvoiceFor,
  type CreditNote, type InvoiceChargeInput, type InvoiceLine,
} from './invoices.repository';

export interface InvoiceWalletDeps {
  db: Knex;
  engine: ChargingEngine;
}

export const invoiceChargeKey = (payerAccountId: string, sourceRef: string) => `invoice-charge:${payerAccountId}:${sourceRef}`;
export const creditNoteWalletKey = (creditNoteId: string) => `credit-note:${creditNoteId}`;

/** A credit note (invoices.repository.ts `createCreditNote`: number, tax share back) and its pre-tax
 * part credited to the paying account's wallet. The note commits first; a failed wallet credit
 * fails the call, and a retry with the same idempotency key finds the note and credits it then, once.
 * A note on an invoice already paid leaves the wallet in credit: the account is owed that money. */
export async function issueCreditNote(
  deps: InvoiceWalletDeps, input: { invoiceId: string; amountMinor: bigint; reason: string; idempotencyKey: string; actor: string },
): Promise<CreditNote> {
  const note = await createCreditNote(deps.db, input);
  if (note.walletMinor !== null && note.walletMinor > 0n) {
    const invoice = (await findInvoice(deps.db, note.invoiceId))!;
    await creditWallet(deps.engine, {
      billingAccountId: invoice.billingAccountId, amountMicros: minorToMicros(note.walletMinor, invoice.currency), idempotencyKey: creditNoteWalletKey(note.id),
      actor: input.actor, reason: note.reason, sourceRef: `credit-note:${note.id}`, kind: 'credit_note',
      details: { invoice: invoice.number, creditNote: note.number, amountMinor: note.amountMinor.toString(), walletMinor: note.walletMinor.toString() },
    });
  }
  return note;
}

/** A one-off charge, late fee or credit on the paying account's open invoice, with its wallet
 * movement. The wallet moves first, then the line is written, so a line always has its entry; a
 * retry (same source ref) finds both and changes nothing. Past the credit limit, a charge goes to
 * receivables: the customer owes it on the invoice all the same. */
export async function addInvoiceCharge(deps: InvoiceWalletDeps, input: InvoiceChargeInput & { actor: string }): Promise<InvoiceLine> {
  if (input.amountMinor <= 0n) throw new DomainError('INVALID_AMOUNT', 'the amount must be positive', ['input', 'amount']);
  const invoice = await openInvoiceFor(deps.db, input.billingAccountId, input.asOf);
  const payer = invoice.billingAccountId;
  const key = invoiceChargeKey(payer, input.sourceRef);
  const existing = await invoiceLineBySource(deps.db, payer, input.sourceRef);
  const movement = {
    billingAccountId: payer, amountMicros: minorToMicros(input.amountMinor, invoice.currency), idempotencyKey: key, actor: input.actor,
    sourceRef: key, details: { charge: input.kind, description: input.description, invoiceId: existing ? undefined : invoice.id, sourceRef: input.sourceRef },
  };
  if (input.kind === 'credit') {
    await creditWallet(deps.engine, { ...movement, kind: 'credit_note' });
  } else {
    try {
      // Entry type `recurring_charge` (wallet → revenue), as prorated plan changes: the engine's wallet
      // operations have no one-off type; `details.charge` says which it is.
      await debitWallet(deps.engine, movement);
    } catch (err) {
      if (!(err instanceof DomainError && err.code === 'INSUFFICIENT_FUNDS')) throw err;
      await bookChargeInReceivables(deps.db, {
        key, sourceRef: key, currency: invoice.currency, amountMinor: input.amountMinor, actor: input.actor,
        details: { ...movement.details, reason: 'past the credit limit: owed outside the wallet' },
      });
    }
  }
  if (existing) return existing;
  const outsideWallet = input.kind !== 'credit' && (await bookedInReceivables(deps.db, key));
  return addInvoiceLine(deps.db, { ...input, outsideWallet });
}
