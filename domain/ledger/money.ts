/** Money in the ledger is in micro-units (1e-6 of the major unit); customers see minor units.
 * Currencies with other exponents (JPY 0, BHD 3) are supported by the exponent table. */
const EXPONENTS: Record<string, number> = { JPY: 0, KRW: 0, BHD: 3, KWD: 3, OMR: 3, TND: 3 };

export function currencyExponent(currency: string): number {
  return EXPONENTS[currency] ?? 2;
}

export function minorToMicros(minor: bigint, currency: string): bigint {
  return minor * 10n ** BigInt(6 - currencyExponent(currency));
}

/** The one rounding rule at the point of billing: half away from zero. */
export function microsToMinorRounded(micros: bigint, currency: string): bigint {
  const factor = 10n ** BigInt(6 - currencyExponent(currency));
  const sign = micros < 0n ? -1n : 1n;
  const abs = micros * sign;
  return sign * ((abs + factor / 2n) / factor);
}

/** What a customer can spend is shown rounded down: never promise more than the wallet holds. */
export function microsToMinorFloor(micros: bigint, currency: string): bigint {
  const factor = 10n ** BigInt(6 - currencyExponent(currency));
  const q = micros / factor;
  return micros < 0n && q * factor !== micros ? q - 1n : q;
}
