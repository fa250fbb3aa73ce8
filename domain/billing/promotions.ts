/**
 * Promotions from the catalog's `offers` table applied to one billing cycle, pure. The billing run
 * does the same arithmetic in SQL over thousands of rows at once (billing-run.repository.ts); this
 * is the reference the SQL is tested against, and what previews (GraphQL, quotes) use.
 *
 * Cycles count from the subscription's start: cycle 1 is the first period, the first renewal is
 * cycle 2. An offer with `cycles = N` applies to cycles 1…N (no `cycles`: every cycle).
 *  - discount_percent  terms { percent: 0–100 }            fee × percent / 100, rounded half up
 *  - discount_fixed    terms { amountMinor: n }             min(fee, n)
 *  - bonus_allowance   terms { service, units }             an extra bucket each cycle
 *  - free_trial        terms { convert?: boolean = true }   fee waived for N cycles; at cycle N+1
 *                                                           it converts (normal fee) or lapses
 *                                                           (the subscription ends, nothing charged)
 */
import { roundHalfAwayFromZero } from './proration';

export type OfferKind = 'discount_percent' | 'discount_fixed' | 'bonus_allowance' | 'free_trial';

export interface OfferTerms {
  kind: OfferKind;
  cycles: number | null;
  terms: { percent?: number; amountMinor?: string | number; service?: 'data' | 'voice' | 'sms' | 'money'; units?: string | number; convert?: boolean };
}

export interface CyclePrice {
  feeMinor: bigint;
  discountMinor: bigint;
  amountMinor: bigint;
  /** The subscription ends instead of renewing (a free trial that does not convert). */
  lapse: boolean;
  bonus: { service: 'data' | 'voice' | 'sms' | 'money'; units: bigint } | null;
}

export function applies(offer: OfferTerms, cycle: number): boolean {
  return offer.cycles === null || cycle <= offer.cycles;
}

export function priceCycle(feeMinor: bigint, cycle: number, offer: OfferTerms | null): CyclePrice {
  if (cycle < 1) throw new RangeError('cycles count from 1');
  const base: CyclePrice = { feeMinor, discountMinor: 0n, amountMinor: feeMinor, lapse: false, bonus: null };
  if (!offer) return base;
  const on = applies(offer, cycle);
  switch (offer.kind) {
    case 'discount_percent': {
      if (!on) return base;
      const ppm = BigInt(Math.round(Math.min(100, Math.max(0, Number(offer.terms.percent ?? 0))) * 10_000));
      const discount = roundHalfAwayFromZero(feeMinor * ppm, 1_000_000n);
      return { ...base, discountMinor: discount, amountMinor: feeMinor - discount };
    }
    case 'discount_fixed': {
      if (!on) return base;
      const fixed = BigInt(offer.terms.amountMinor ?? 0);
      const discount = fixed > feeMinor ? feeMinor : fixed < 0n ? 0n : fixed;
      return { ...base, discountMinor: discount, amountMinor: feeMinor - discount };
    }
    case 'bonus_allowance':
      if (!on || !offer.terms.service || offer.terms.units === undefined) return base;
      return { ...base, bonus: { service: offer.terms.service, units: BigInt(offer.terms.units) } };
    case 'free_trial':
      if (on) return { ...base, discountMinor: feeMinor, amountMinor: 0n };
      if (offer.cycles !== null && cycle === offer.cycles + 1 && offer.terms.convert === false) {
        return { ...base, discountMinor: feeMinor, amountMinor: 0n, lapse: true };
      }
      return base;
  }
}
