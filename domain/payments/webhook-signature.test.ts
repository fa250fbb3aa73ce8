import Stripe from 'stripe';
import { WebhookSignatureError, WebhookStaleError } from './payment-gateway';
import { computeSignature, parseSignatureHeader, signPayload, verifySignature } from './webhook-signature';

const secret = 'whsec_test_secret';
const payload = Buffer.from(JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment_intent.succeeded' }));
const T = 1_700_000_000;
const at = (seconds: number) => () => seconds * 1000;

describe('webhook signature (Stripe scheme)', () => {
  it('signs "t.payload" with HMAC-SHA256 and verifies the round trip', () => {
    const header = signPayload(payload, secret, { timestamp: T });
    expect(header).toBe(`t=${T},v1=${computeSignature(payload, T, secret)}`);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(payload, header, secret, { now: at(T + 10) })).toEqual({ timestamp: T });
    // string and Buffer payloads sign the same bytes
    expect(computeSignature(payload.toString('utf8'), T, secret)).toBe(computeSignature(payload, T, secret));
  });

  it('accepts any one matching v1 among several, and ignores other schemes', () => {
    const good = computeSignature(payload, T, secret);
    const header = `t=${T},v0=${'a'.repeat(64)},v1=${'0'.repeat(64)},v1=not-hex,v1=${good}`;
    expect(verifySignature(payload, header, secret, { now: at(T) })).toEqual({ timestamp: T });
  });

  it('verifies with any of several secrets (rotation) and signs with several', () => {
    const header = signPayload(payload, 'whsec_old', { timestamp: T, additionalSecrets: ['whsec_new'] });
    expect(parseSignatureHeader(header).signatures).toHaveLength(2);
    expect(() => verifySignature(payload, header, ['whsec_new'], { now: at(T) })).not.toThrow();
    expect(() => verifySignature(payload, signPayload(payload, 'whsec_old', { timestamp: T }), ['whsec_new', 'whsec_old'], { now: at(T) })).not.toThrow();
  });

  it.each([
    ['missing header', undefined],
    ['empty header', ''],
    ['no timestamp', `v1=${'0'.repeat(64)}`],
    ['no v1', `t=${T},v0=abc`],
    ['non-numeric timestamp', `t=abc,v1=${'0'.repeat(64)}`],
    ['two timestamps', `t=${T},t=${T + 1},v1=${'0'.repeat(64)}`],
  ])('rejects a malformed header (%s) as WebhookSignatureError', (_name, header) => {
    expect(() => verifySignature(payload, header, secret, { now: at(T) })).toThrow(WebhookSignatureError);
  });

  it('rejects a forged signature and a tampered body', () => {
    const forged = signPayload(payload, 'whsec_attacker', { timestamp: T });
    expect(() => verifySignature(payload, forged, secret, { now: at(T) })).toThrow(WebhookSignatureError);
    const header = signPayload(payload, secret, { timestamp: T });
    const tampered = Buffer.from(payload.toString().replace('evt_1', 'evt_2'));
    expect(() => verifySignature(tampered, header, secret, { now: at(T) })).toThrow(WebhookSignatureError);
    // moving the timestamp breaks the signature too
    expect(() => verifySignature(payload, header.replace(`t=${T}`, `t=${T + 1}`), secret, { now: at(T) })).toThrow(WebhookSignatureError);
  });

  it('rejects a genuine but old delivery as WebhookStaleError, after checking the signature', () => {
    const header = signPayload(payload, secret, { timestamp: T });
    expect(() => verifySignature(payload, header, secret, { now: at(T + 300) })).not.toThrow();
    let error: unknown;
    try {
      verifySignature(payload, header, secret, { now: at(T + 301) });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WebhookStaleError);
    expect(error).toMatchObject({ timestamp: T, toleranceSeconds: 300 });
    // custom tolerance, and 0 = no age check
    expect(() => verifySignature(payload, header, secret, { now: at(T + 61), toleranceSeconds: 60 })).toThrow(WebhookStaleError);
    expect(() => verifySignature(payload, header, secret, { now: at(T + 10 ** 6), toleranceSeconds: 0 })).not.toThrow();
    // forged AND old: the signature error wins (an attacker learns nothing about timing)
    const forgedOld = signPayload(payload, 'whsec_attacker', { timestamp: T });
    expect(() => verifySignature(payload, forgedOld, secret, { now: at(T + 10_000) })).toThrow(WebhookSignatureError);
  });

  it('is byte-compatible with the official SDK in both directions', () => {
    const now = Math.floor(Date.now() / 1000);
    const sdkHeader = Stripe.webhooks.generateTestHeaderString({ payload: payload.toString('utf8'), secret, timestamp: now });
    expect(() => verifySignature(payload, sdkHeader, secret)).not.toThrow();
    const ourHeader = signPayload(payload, secret);
    expect(Stripe.webhooks.constructEvent(payload, ourHeader, secret)).toMatchObject({ id: 'evt_1' });
  });
});
