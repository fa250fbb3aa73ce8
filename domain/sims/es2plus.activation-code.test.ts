import {
  activationCodeQrDataUrl,
  activationCodeQrPng,
  buildActivationCode,
  InvalidActivationCodeError,
  parseActivationCode,
} from './es2plus.client';

describe('ES2+ activation codes', () => {
  it('builds LPA:1$<smdp-address>$<matching-id>', () => {
    expect(buildActivationCode('smdp.example.com', '04386-AGYFT-A74Y8-3F815')).toBe('LPA:1$smdp.example.com$04386-AGYFT-A74Y8-3F815');
  });

  it('adds the optional SM-DP+ OID and Confirmation Code Required Flag', () => {
    expect(buildActivationCode('smdp.example.com', 'ABC', { smdpOid: '1.3.6.1.4.1.31746' })).toBe('LPA:1$smdp.example.com$ABC$1.3.6.1.4.1.31746');
    expect(buildActivationCode('smdp.example.com', 'ABC', { confirmationCodeRequired: true })).toBe('LPA:1$smdp.example.com$ABC$$1');
  });

  it('refuses fields that would break the format', () => {
    expect(() => buildActivationCode('smdp$evil', 'ABC')).toThrow(InvalidActivationCodeError);
    expect(() => buildActivationCode('smdp.example.com', 'A B')).toThrow(InvalidActivationCodeError);
    expect(() => buildActivationCode('', 'ABC')).toThrow(InvalidActivationCodeError);
    expect(() => buildActivationCode('smdp.example.com', '')).toThrow(InvalidActivationCodeError);
  });

  it('parses what it builds, with or without the LPA: prefix', () => {
    const code = buildActivationCode('smdp.example.com', 'K2-4FT-77', { confirmationCodeRequired: true });
    expect(parseActivationCode(code)).toEqual({ format: '1', smdpAddress: 'smdp.example.com', matchingId: 'K2-4FT-77', confirmationCodeRequired: true });
    expect(parseActivationCode('1$smdp.example.com$X1')).toMatchObject({ smdpAddress: 'smdp.example.com', matchingId: 'X1', confirmationCodeRequired: false });
    expect(() => parseActivationCode('LPA:2$smdp.example.com$X1')).toThrow(/AC_Format/);
    expect(() => parseActivationCode('LPA:1$smdp.example.com')).toThrow(InvalidActivationCodeError);
  });

  it('renders the code as a PNG QR code and as a data URL', async () => {
    const code = buildActivationCode('smdp.example.com', '04386-AGYFT-A74Y8-3F815');
    const png = await activationCodeQrPng(code);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.length).toBeGreaterThan(200);
    const url = await activationCodeQrDataUrl(code);
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    expect(Buffer.from(url.slice('data:image/png;base64,'.length), 'base64').subarray(1, 4).toString('ascii')).toBe('PNG');
  });
});
