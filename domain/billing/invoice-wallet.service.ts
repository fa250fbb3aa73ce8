/**
 * What invoices move in the customer's wallet. A postpaid wallet carries what the account owes
 * before tax (negative within its credit limit), so whatever changes what the invoice says is owed
 * before tax moves the wallet too, through the charging engine (the hot path's locks; each movement
 * one journal entry, idempotent on a key derived from what caused it):
 *  - a credit note credits its pre-tax part back (revenue → wallet), key `credit-note:<id>`.
 * The invoice's own SQL is in invoices.repository.ts; the engine cannot join its transactions, so
 * each step is idempotent and a retry completes what a crash left half done.
 */
import type { Knex } from 'knex';
import type { ChargingEngine } from '../charging/charging-engine';
import { creditWallet } from '../ledger/wallet-operations';
import { minorToMicros } from '../ledger/money';
import { createCreditNote, findInvoice, type CreditNote } from './invoices.repository';

export interface InvoiceWalletDeps {
  db: Knex;
  engine: ChargingEngine;
}

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
