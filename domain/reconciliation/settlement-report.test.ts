import { summarise, settlementCsv, settlementHtml } from './settlement-report';
import { chunkOfKey } from './wholesale-import';
import { previousPeriod } from '../../workflows/reconciliation.messages';
import { DEFAULT_WHOLESALE_TOLERANCES, SAMPLE_WHOLESALE_RATE_CARD } from './wholesale-file.generator';
import type { ReconciliationRun } from './reconciliation-runs';

const run = { id: '7', period: '2025-01', version: 2, status: 'ready', approvedBy: null, approvedAt: null } as unknown as ReconciliationRun;
const partner = { code: 'mno-a', name: 'MNO <A>', currency: 'EUR' } as never;
const terms = { version: 1, tolerances: DEFAULT_WHOLESALE_TOLERANCES, rateCard: SAMPLE_WHOLESALE_RATE_CARD } as never;
const line = (service: string, zone: string, category: string, mno: number, ours: number, card: number, claimed: number, retail: number) => ({
  service, zone, category, mno_records: String(mno), our_records: String(ours), mno_volume: '100', our_volume: '100',
  rate_card: String(card), mno_claimed: String(claimed), retail: String(retail),
});

describe('settlement report', () => {
  const s = summarise({
    run, partner, terms, imports: [],
    lines: [
      line('data', 'home', 'matched', 10, 10, 1_000_000, 1_000_000, 3_000_000),
      line('data', 'home', 'missing_ours', 2, 0, 200_000, 200_000, 0),
      line('voice', 'roam-eu', 'missing_mno', 0, 3, 30_000, 0, 90_000),
      line('voice', 'roam-eu', 'rate_mismatch', 1, 1, 10_000, 12_500, 30_000),
    ],
  });

  it('totals by service and zone and by category, with margin and agreed/disputed claims', () => {
    expect(s.counts).toEqual({ matched: 10, missing_ours: 2, missing_mno: 3, rate_mismatch: 1 });
    expect(s.totals.mnoClaimedMicros).toBe('1212500');
    expect(s.totals.retailRevenueMicros).toBe('3120000');
    expect(s.totals.marginMicros).toBe(String(3_120_000 - 1_212_500));
    expect(s.agreedMicros).toBe('1000000');
    expect(s.disputedMicros).toBe('212500');
    expect(s.byServiceZone.find((x) => x.service === 'voice')!.claimVsCardMicros).toBe(String(12_500 - 40_000));
  });

  it('writes CSV with exact decimals and escaped HTML', () => {
    const csv = settlementCsv(s);
    expect(csv.split('\n')[0]).toBe('section,service,zone,category,mno_records,our_records,mno_volume,our_volume,rate_card_cost,mno_claimed,retail_revenue,margin,claim_vs_card,currency');
    expect(csv).toContain('total,,,,13,14,400,400,1.240000,1.212500,3.120000,1.907500,-0.027500,EUR');
    const html = settlementHtml(s, run);
    expect(html).toContain('MNO &lt;A&gt;');
    expect(html).not.toContain('MNO <A>');
  });
});

describe('chunks and periods', () => {
  it('chunks by the last four digits; anything else goes to chunk 0', () => {
    expect(chunkOfKey('262010000001234', 16)).toBe(1234 % 16);
    expect(chunkOfKey('12', 16)).toBe(12);
    expect(chunkOfKey('12a4', 16)).toBe(0);
    expect(chunkOfKey('', 16)).toBe(0);
  });
  it('the scheduled run takes the month before', () => {
    expect(previousPeriod(Date.UTC(2026, 0, 3, 2))).toBe('2025-12');
    expect(previousPeriod(Date.UTC(2026, 10, 3))).toBe('2026-10');
  });
});
