import { notificationSignature, retryDelaySeconds, verifyNotificationSignature } from './webhook-signing';
import { renderNotification } from './templates';

describe('notification webhook signatures', () => {
  const body = JSON.stringify({ id: '1', type: 'top_up_completed' });
  const now = 1_800_000_000;
  it('verifies its own signature and refuses tampering, other secrets and stale timestamps', () => {
    const sig = notificationSignature(body, 'whsec_a', now);
    expect(sig).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(verifyNotificationSignature(body, sig, 'whsec_a', { now })).toBe('ok');
    expect(verifyNotificationSignature(body.replace('1', '2'), sig, 'whsec_a', { now })).toBe('invalid');
    expect(verifyNotificationSignature(body, sig, 'whsec_b', { now })).toBe('invalid');
    expect(verifyNotificationSignature(body, sig, 'whsec_a', { now: now + 301 })).toBe('stale');
    expect(verifyNotificationSignature(body, undefined, 'whsec_a', { now })).toBe('invalid');
    expect(verifyNotificationSignature(body, 't=1,v1=zz', 'whsec_a', { now })).toBe('invalid');
  });
  it('backs off exponentially, capped', () => {
    expect([1, 2, 3, 4].map(retryDelaySeconds)).toEqual([30, 60, 120, 240]);
    expect(retryDelaySeconds(30)).toBe(6 * 3600);
  });
  it('renders templates with exact money', () => {
    expect(renderNotification('top_up_completed', { amountMinor: '2050', currency: 'EUR' }).body).toContain('20.50 EUR');
    expect(renderNotification('usage_alert', { thresholdPercent: 100, service: 'data' }).body).toContain('charged from your balance');
  });
});
