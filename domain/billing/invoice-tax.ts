/**
 * Tax on invoices, pure: the amount at a rate, the share a credit note takes back, and the ledger
 * accounts the tax moves between. Amounts are integer minor units, rounded half away from zero
 * (domain/ledger/money.ts has the one rounding rule at the point of billing).
 *
 * In the ledger, issuing an invoice moves its tax from `receivables:<currency>` (the customer owes
 * it outside the wallet, which carries only the pre-tax balance) to `tax_payable:<currency>` (owed to
 * the tax authority); a credit note moves its share back.
 */
import { roundHalfAwayFromZero } from './proration';

export const taxPayableAccountCode = (currency: string) => `tax_payable:${currency}`;
/** The same system account the charging engine credits wallets from when an invoice is collected. */
export const receivablesAccountCode = (currency: string) => `receivables:${currency}`;

export const invoiceTaxEntryKey = (invoiceId: string) => `invoice-tax:${invoiceId}`;
export const creditNoteTaxEntryKey = (creditNoteId: string) => `credit-note-tax:${creditNoteId}`;

/** Tax on a subtotal at a rate in parts per million; nothing on a subtotal at or below zero. */
export function taxOn(subtotalMinor: bigint, ratePpm: bigint): bigint {
  return subtotalMinor > 0n ? roundHalfAwayFromZero(subtotalMinor * ratePpm, 1_000_000n) : 0n;
}

/** The tax inside a credit note of `amountMinor` on an invoice (credit notes are gross: they reduce
 * the total, tax included). Computed on the running total credited, so several credit notes never
 * take back more or less tax than one for their sum would, and crediting the whole total takes back
 * exactly the invoice's tax. */
export function creditNoteTaxShare(input: { totalMinor: bigint; taxMinor: bigint; creditedBeforeMinor: bigint; amountMinor: bigint }): bigint {
  return creditNoteShareOf({ ...input, partMinor: input.taxMinor });
}

/** The same share, of any part of the total: the tax, or everything the wallet does not carry (the
 * tax and the charges owed in receivables, invoice-wallet.service.ts). */
export function creditNoteShareOf(input: { totalMinor: bigint; partMinor: bigint; creditedBeforeMinor: bigint; amountMinor: bigint }): bigint {
  const { totalMinor, partMinor, creditedBeforeMinor, amountMinor } = input;
  if (totalMinor <= 0n || partMinor === 0n) return 0n;
  const cumulative = (credited: bigint) => roundHalfAwayFromZero((credited > totalMinor ? totalMinor : credited) * partMinor, totalMinor);
  return cumulative(creditedBeforeMinor + amountMinor) - cumulative(creditedBeforeMinor);
}
