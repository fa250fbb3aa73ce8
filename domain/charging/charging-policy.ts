/**
 * Charging policy: which service a rating group charges, how much quota a grant gives, how long it
 * is valid, and the thresholds that raise balance events. Pure configuration, overridable per
 * engine.
 *
 * Rating groups (documented mapping, the operator's network is configured to match):
 *   10 = data (bytes), 20 = voice (seconds), 30 = SMS (messages).
 */
import type { Service } from './tariff.types';

export interface ChargingPolicy {
  ratingGroups: Readonly<Record<number, Service>>;
  /** Quota granted when the request asks for quota without an amount. */
  defaultGrant: Readonly<Record<Service, bigint>>;
  /** Most quota one grant gives, whatever is asked. */
  maxGrant: Readonly<Record<Service, bigint>>;
  /** Seconds a grant stays valid; after it (plus `sweepGraceSec`) the sweeper returns its units. */
  validityTimeSec: number;
  sweepGraceSec: number;
  /** Percent of a bucket used at which an event is written (when the usage crosses it). */
  bucketThresholdsPercent: readonly number[];
  /** A wallet whose balance falls below this (micros) raises a `wallet_low` event. */
  lowWalletThresholdMicros: bigint;
}

export const DEFAULT_RATING_GROUPS: Readonly<Record<number, Service>> = Object.freeze({ 10: 'data', 20: 'voice', 30: 'sms' });

export const DEFAULT_POLICY: ChargingPolicy = Object.freeze({
  ratingGroups: DEFAULT_RATING_GROUPS,
  defaultGrant: Object.freeze({ data: 10_000_000n, voice: 300n, sms: 1n }),
  maxGrant: Object.freeze({ data: 1_000_000_000n, voice: 3_600n, sms: 10n }),
  validityTimeSec: 3_600,
  sweepGraceSec: 30,
  bucketThresholdsPercent: Object.freeze([50, 80, 100]),
  lowWalletThresholdMicros: 2_000_000n,
});

export function policyWith(overrides: Partial<ChargingPolicy> = {}): ChargingPolicy {
  return { ...DEFAULT_POLICY, ...overrides };
}

/** The unit each service is counted in, as the ledger names it. */
export const SERVICE_UNIT: Readonly<Record<Service, 'bytes' | 'seconds' | 'messages'>> = Object.freeze({
  data: 'bytes',
  voice: 'seconds',
  sms: 'messages',
});
