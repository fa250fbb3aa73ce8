/**
 * Signatures of outbound notification webhooks, pure: HMAC-SHA256 with the endpoint's secret over
 * `<timestamp>.<body>`, sent as `Mvno-Signature: t=<unix seconds>,v1=<hex>`. Receivers recompute it
 * on the raw body, compare in constant time and refuse timestamps outside their tolerance (replays).
 */
import crypto from 'node:crypto';

export const NOTIFICATION_SIGNATURE_HEADER = 'Mvno-Signature';

export function notificationSignature(body: string, secret: string, timestamp: number): string {
  const mac = crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

export function verifyNotificationSignature(
  body: string, header: string | undefined, secret: string, options: { toleranceSeconds?: number; now?: number } = {},
): 'ok' | 'invalid' | 'stale' {
  if (!header) return 'invalid';
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || !/^[0-9a-f]{64}$/.test(parts.v1)) return 'invalid';
  const expected = Buffer.from(notificationSignature(body, secret, t).split('v1=')[1], 'hex');
  if (!crypto.timingSafeEqual(expected, Buffer.from(parts.v1, 'hex'))) return 'invalid';
  const now = options.now ?? Math.floor(Date.now() / 1000);
  return Math.abs(now - t) > (options.toleranceSeconds ?? 300) ? 'stale' : 'ok';
}

/** Seconds to wait before attempt `attempt + 1` (attempt counts from 1): 30 s doubling, at most 6 h. */
export function retryDelaySeconds(attempt: number): number {
  return Math.min(30 * 2 ** Math.max(0, attempt - 1), 6 * 3600);
}
