import { iccidHasValidCheckDigit, luhnCheckDigit, validateSimRow, withLuhn } from './inventory';

describe('SIM inventory rules', () => {
  test('Luhn check digit', () => {
    expect(luhnCheckDigit('7992739871')).toBe(3);
    expect(iccidHasValidCheckDigit(withLuhn('8949000000000000001'))).toBe(true);
    expect(iccidHasValidCheckDigit('89490000000000000010')).toBe(luhnCheckDigit('8949000000000000001') === 0);
  });

  test('a good row passes; a bad one lists every reason, and a key is never taken as a reference', () => {
    const iccid = withLuhn('8949000000000000001');
    expect(validateSimRow({ iccid, imsi: '262010000000001', pin1: '1234', puk1: '12345678', key_reference: 'hsm:slot-1/42' })).toEqual({
      ok: true, row: { iccid, imsi: '262010000000001', pin1: '1234', puk1: '12345678', keyReference: 'hsm:slot-1/42' },
    });
    const bad = validateSimRow({ iccid: '12', imsi: 'x', pin1: '1', puk1: '2', key_reference: '000102030405060708090A0B0C0D0E0F' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reasons.map((r) => r.code)).toEqual(['ICCID_INVALID', 'IMSI_INVALID', 'PIN_INVALID', 'PUK_INVALID', 'KEY_REFERENCE_LOOKS_LIKE_KEY']);
  });
});
