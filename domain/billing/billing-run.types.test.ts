import crypto from 'node:crypto';
import { ALL_SUBSCRIPTIONS, equalWidthLanes, lanesSplitAt } from './billing-run.types';

describe('equalWidthLanes', () => {
  test('one lane is every subscription id', () => {
    expect(equalWidthLanes(1)).toEqual([ALL_SUBSCRIPTIONS]);
  });

  test.each([2, 3, 7, 16])('%i lanes cover the uuid space without gaps or overlaps', (n) => {
    const lanes = equalWidthLanes(n);
    expect(lanes).toHaveLength(n);
    expect(lanes[0].fromId).toBe(ALL_SUBSCRIPTIONS.fromId);
    expect(lanes[n - 1].toId).toBe(ALL_SUBSCRIPTIONS.toId);
    const first32 = (id: string) => parseInt(id.slice(0, 8), 16);
    for (let i = 0; i < n; i++) {
      expect(lanes[i].fromId < lanes[i].toId).toBe(true);
      if (i > 0) expect(first32(lanes[i].fromId)).toBe(first32(lanes[i - 1].toId) + 1);
    }
  });

  test('two lanes split at 80000000', () => {
    expect(equalWidthLanes(2)).toEqual([
      { fromId: '00000000-0000-0000-0000-000000000000', toId: '7fffffff-ffff-ffff-ffff-ffffffffffff' },
      { fromId: '80000000-0000-0000-0000-000000000000', toId: 'ffffffff-ffff-ffff-ffff-ffffffffffff' },
    ]);
  });

  test.each([0, -1, 1.5, 65])('%p lanes is refused', (n) => {
    expect(() => equalWidthLanes(n)).toThrow(RangeError);
  });
});

describe('lanesSplitAt', () => {
  test('each cut starts a lane; the lane before ends at the id just below it', () => {
    expect(lanesSplitAt(['019af0c2-0000-7000-8000-000000000000', '019af0c3-1234-7abc-9def-0000000000a0'])).toEqual([
      { fromId: ALL_SUBSCRIPTIONS.fromId, toId: '019af0c2-0000-7000-7fff-ffffffffffff' },
      { fromId: '019af0c2-0000-7000-8000-000000000000', toId: '019af0c3-1234-7abc-9def-00000000009f' },
      { fromId: '019af0c3-1234-7abc-9def-0000000000a0', toId: ALL_SUBSCRIPTIONS.toId },
    ]);
  });

  test('the id below borrows across every digit and group', () => {
    expect(lanesSplitAt(['80000000-0000-0000-0000-000000000000'])).toEqual(equalWidthLanes(2));
  });

  test('cuts in any order, repeated or in capitals make the same lanes; the lowest id and non-ids cut nothing', () => {
    const a = '019af0c2-0000-7000-8000-000000000000';
    const b = 'c0000000-0000-4000-8000-000000000000';
    expect(lanesSplitAt([b, a.toUpperCase(), a, ALL_SUBSCRIPTIONS.fromId, 'not-an-id'])).toEqual(lanesSplitAt([a, b]));
    expect(lanesSplitAt([])).toEqual([ALL_SUBSCRIPTIONS]);
  });

  test.each([1, 2, 5, 33])('%i random cuts cover the uuid space without gaps or overlaps', (n) => {
    const cuts = Array.from({ length: n }, () => crypto.randomUUID());
    const lanes = lanesSplitAt(cuts);
    expect(lanes).toHaveLength(n + 1);
    expect(lanes[0].fromId).toBe(ALL_SUBSCRIPTIONS.fromId);
    expect(lanes[n].toId).toBe(ALL_SUBSCRIPTIONS.toId);
    const value = (id: string) => BigInt(`0x${id.replace(/-/g, '')}`);
    for (let i = 0; i < lanes.length; i++) {
      expect(value(lanes[i].fromId) <= value(lanes[i].toId)).toBe(true);
      if (i > 0) expect(value(lanes[i].fromId)).toBe(value(lanes[i - 1].toId) + 1n);
    }
  });
});
