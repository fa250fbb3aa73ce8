import { completeFiles, isInboxCandidate, rejectionReasonText, retryDelayMs, uniqueName } from './wholesale-inbox';

describe('the reconciliation inbox rules', () => {
  it('takes *.csv and *.csv.gz, never files being written under another name or hidden', () => {
    expect(['jan.csv', 'JAN.CSV.GZ', 'feb.csv.gz'].every(isInboxCandidate)).toBe(true);
    expect(['jan.csv.part', 'jan.csv.gz.part', '.jan.csv', 'jan.csv.tmp', 'notes.txt', 'jan.reason.txt', 'csv'].some(isInboxCandidate)).toBe(false);
  });

  it('calls a file complete only when it is unchanged across two polls', () => {
    const obs = (entries: [string, number, number][]) => new Map(entries.map(([n, size, mtimeMs]) => [n, { size, mtimeMs }]));
    const first = obs([['a.csv', 10, 1], ['b.csv', 10, 1], ['c.csv', 0, 1]]);
    expect(completeFiles(new Map(), first)).toEqual([]);
    const second = obs([['a.csv', 10, 1], ['b.csv', 20, 2], ['c.csv', 0, 1], ['d.csv', 5, 3]]);
    // a: same size and mtime; b: grew; c: empty but unchanged (refused as empty when imported); d: new
    expect(completeFiles(first, second)).toEqual(['a.csv', 'c.csv']);
    expect(completeFiles(second, obs([['b.csv', 20, 2], ['d.csv', 5, 4]]))).toEqual(['b.csv']); // d touched again
  });

  it('picks a free name keeping the extension', () => {
    expect(uniqueName('jan.csv.gz', new Set())).toBe('jan.csv.gz');
    expect(uniqueName('jan.csv.gz', new Set(['jan.csv.gz', 'jan~2.csv.gz']))).toBe('jan~3.csv.gz');
    expect(uniqueName('Jan.CSV', new Set(['Jan.CSV']))).toBe('Jan~2.CSV');
    expect(uniqueName('odd', new Set(['odd']))).toBe('odd~2');
  });

  it('explains a refusal and backs off retries', () => {
    const text = rejectionReasonText({ fileName: 'jan.csv', partnerCode: 'mno-a', code: 'DUPLICATE_FILE', message: 'already imported', at: new Date('2025-02-01T00:00:00Z') });
    expect(text).toBe('jan.csv (partner mno-a) was refused at 2025-02-01T00:00:00.000Z\nDUPLICATE_FILE: already imported\n');
    expect([1, 2, 3].map((f) => retryDelayMs(f, 1000))).toEqual([2000, 4000, 8000]);
    expect(retryDelayMs(50, 5000)).toBe(15 * 60_000);
  });
});
