import crypto from 'node:crypto';

/** Keys are 256 bits of randomness with a readable prefix; only their SHA-256 is stored. */
export const API_KEY_PREFIX = 'mvno_';

export function generateApiKey(): string {
  return API_KEY_PREFIX + crypto.randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return crypto.createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Accepts `Authorization: Bearer <key>` or `X-Api-Key: <key>`. */
export function apiKeyFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers['authorization'];
  const value = Array.isArray(auth) ? auth[0] : auth;
  if (value && /^Bearer\s+/i.test(value)) return value.replace(/^Bearer\s+/i, '').trim() || undefined;
  const header = headers['x-api-key'];
  const key = Array.isArray(header) ? header[0] : header;
  return key?.trim() || undefined;
}
