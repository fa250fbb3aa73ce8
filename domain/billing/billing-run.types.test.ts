import { ALL_SUBSCRIPTIONS, dueLanes } from './billing-run.types';

describe('dueLanes', () => {
  test('one lane is every subscription id', () => {
    expect(dueLanes(1)).toEqual([ALL_SUBSCRIPTIONS]);
  });

  test.each([2, 3, 7, 16])('%i lanes cover the uuid space without gaps or overlaps', (n) => {
    const lanes = dueLanes(n);
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
    expect(dueLanes(2)).toEqual([
      { fromId: '00000000-0000-0000-0000-000000000000', toId: '7fffffff-ffff-ffff-ffff-ffffffffffff' },
      { fromId: '80000000-0000-0000-0000-000000000000', toId: 'ffffffff-ffff-ffff-ffff-ffffffffffff' },
    ]);
  });

  test.each([0, -1, 1.5, 65])('%p lanes is refused', (n) => {
    expect(() => dueLanes(n)).toThrow(RangeError);
  });
});
