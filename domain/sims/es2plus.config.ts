import fs from 'node:fs';
import { Es2PlusClient } from './es2plus.client';

/** The production ES2+ client from configuration (SMDP_URL, SMDP_REQUESTER_ID, SMDP_TLS_*). */
export function es2PlusClientFromConfig(smdp: {
  url?: string; requesterId: string; smdpAddress?: string; timeoutMs: number; tls?: { certPath: string; keyPath: string; caPath?: string };
}, urlOverride?: string): Es2PlusClient | undefined {
  const baseUrl = urlOverride ?? smdp.url;
  if (!baseUrl) return undefined;
  return new Es2PlusClient({
    baseUrl,
    functionRequesterIdentifier: smdp.requesterId,
    timeoutMs: smdp.timeoutMs,
    ...(smdp.smdpAddress ? { smdpAddress: smdp.smdpAddress } : {}),
    ...(smdp.tls
      ? { tls: { cert: fs.readFileSync(smdp.tls.certPath, 'utf8'), key: fs.readFileSync(smdp.tls.keyPath, 'utf8'), ...(smdp.tls.caPath ? { ca: fs.readFileSync(smdp.tls.caPath, 'utf8') } : {}) } }
      : {}),
  });
}
