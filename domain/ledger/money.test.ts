import { microsToMinorFloor, microsToMinorRounded, minorToMicros } from './money';

describe('money units', () => {
  test.each([
    [123n, 'EUR', 1_230_000n],
    [5n, 'JPY', 5_000_000n],
    [1n, 'BHD', 1_000n],
  ])('%d minor %s = %d micros', (minor, currency, micros) => expect(minorToMicros(minor, currency)).toBe(micros));

  test.each([
    [1_234_999n, 123n],
    [1_235_000n, 124n],
    [-1_235_000n, -124n],
    [-1_234_999n, -123n],
    [0n, 0n],
  ])('rounds %d micros half away from zero to %d cents', (micros, minor) => expect(microsToMinorRounded(micros, 'EUR')).toBe(minor));

  test.each([
    [1_239_999n, 123n],
    [-1n, -1n],
    [-10_000n, -1n],
  ])('floors %d micros to %d cents', (micros, minor) => expect(microsToMinorFloor(micros, 'EUR')).toBe(minor));
});
