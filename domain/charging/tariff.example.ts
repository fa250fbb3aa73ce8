/**
 * Example prepaid tariff (EUR, home network in Germany, UTC+01:00) — the shape a plan stores
 * in jsonb. Used by the rating tests and usable as demo catalog data.
 */
import type { Tariff } from './tariff.types';

const CENT = 10_000; // micros
const c = (cents: number) => String(Math.round(cents * CENT)); // authoring helper; the JSON holds strings
const MB = '1000000';
const MINUTE = '60';

export const PREPAID_EXAMPLE_TARIFF = {
  schemaVersion: 1,
  currency: 'EUR',
  utcOffsetMinutes: 60,
  timeBands: [
    { id: 'off-peak', days: [1, 2, 3, 4, 5], from: '20:00', to: '08:00' },
    { id: 'weekend', days: [6, 7], from: '00:00', to: '24:00' },
  ],
  rates: [
    // home data 0.5 cent/MB, rounded up to 100 kB
    { service: 'data', zone: 'home', priceMicros: c(0.5), perUnits: MB, increments: { initial: '100000', subsequent: '100000' } },
    // national voice 10 cents/min, 60/1, cheaper off-peak and at weekends
    {
      service: 'voice', zone: 'home', destinationPrefix: '49', priceMicros: c(10), perUnits: MINUTE,
      increments: { initial: '60', subsequent: '1' }, bandPrices: { 'off-peak': c(5), weekend: c(4) },
    },
    // international voice from home, by longest prefix; unlisted destinations are not rated
    { service: 'voice', zone: 'home', destinationPrefix: '44', priceMicros: c(20), perUnits: MINUTE, increments: { initial: '60', subsequent: '60' } },
    { service: 'voice', zone: 'home', destinationPrefix: '447', priceMicros: c(30), perUnits: MINUTE, increments: { initial: '60', subsequent: '60' } },
    { service: 'voice', zone: 'home', destinationPrefix: '4479', priceMicros: c(35), perUnits: MINUTE, increments: { initial: '60', subsequent: '60' } },
    { service: 'voice', zone: 'home', destinationPrefix: '1', priceMicros: c(15), perUnits: MINUTE, increments: { initial: '60', subsequent: '60' } },
    // SMS 5 cents to any destination
    { service: 'sms', zone: 'home', priceMicros: c(5), perUnits: '1' },
    // roaming in the EU: data 1 cent/MB rounded to 1 kB, voice and SMS as at home (catch-all)
    { service: 'data', zone: 'roam-eu', priceMicros: c(1), perUnits: MB, increments: { initial: '1000', subsequent: '1000' } },
    { service: 'voice', zone: 'roam-eu', priceMicros: c(10), perUnits: MINUTE, increments: { initial: '60', subsequent: '1' } },
    { service: 'sms', zone: 'roam-eu', priceMicros: c(5), perUnits: '1' },
  ],
  promotions: [
    // summer: EU roaming data free
    { id: 'summer-roam-eu-data', service: 'data', zone: 'roam-eu', priceMicros: '0', validFrom: '2025-06-01T00:00:00Z', validTo: '2025-09-01T00:00:00Z' },
  ],
} satisfies Tariff;
