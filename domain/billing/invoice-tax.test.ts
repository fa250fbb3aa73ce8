import { creditNoteShareOf, creditNoteTaxShare, taxOn } from './invoice-tax';

describe('invoice tax', () => {
  it('taxes a positive subtotal, rounded half away from zero, and nothing else', () => {
    expect(taxOn(800n, 190_000n)).toBe(152n);
    expect(taxOn(5n, 190_000n)).toBe(1n); // 0.95 → 1
    expect(taxOn(0n, 190_000n)).toBe(0n);
    expect(taxOn(-100n, 190_000n)).toBe(0n);
  });

  it('takes back the tax share of a credit note on the running total', () => {
    const inv = { totalMinor: 952n, taxMinor: 152n };
    expect(creditNoteTaxShare({ ...inv, creditedBeforeMinor: 0n, amountMinor: 300n })).toBe(48n); // 47.9
    // Three notes of a third each take back exactly the tax, never a cent more or less.
    const parts = [317n, 317n, 318n];
    let before = 0n;
    let taken = 0n;
    for (const amountMinor of parts) {
      taken += creditNoteTaxShare({ ...inv, creditedBeforeMinor: before, amountMinor });
      before += amountMinor;
    }
    expect(taken).toBe(152n);
  });

  it('splits credit notes of any part on the running total: the parts add up to the part exactly', () => {
    // 11.90 = 4.00 in the wallet + 6.00 in receivables + 1.90 tax: outside the wallet 7.90.
    const inv = { totalMinor: 1_190n, partMinor: 790n };
    expect(creditNoteShareOf({ ...inv, creditedBeforeMinor: 0n, amountMinor: 595n })).toBe(395n);
    let before = 0n;
    let taken = 0n;
    for (const amountMinor of [333n, 1n, 400n, 456n]) {
      taken += creditNoteShareOf({ ...inv, creditedBeforeMinor: before, amountMinor });
      before += amountMinor;
    }
    expect(taken).toBe(790n);
  });

  it('takes nothing back from an invoice without tax', () => {
    expect(creditNoteTaxShare({ totalMinor: 800n, taxMinor: 0n, creditedBeforeMinor: 0n, amountMinor: 800n })).toBe(0n);
    expect(creditNoteTaxShare({ totalMinor: 0n, taxMinor: 0n, creditedBeforeMinor: 0n, amountMinor: 1n })).toBe(0n);
  });
});
