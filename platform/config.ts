import path from 'node:path';
import { z } from 'zod';

/** Everything the processes read from the environment, validated once, with embedded defaults. */
const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  DATABASE_URL: z.string().url().optional(),
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('mvno-bss'),
  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(5433),
  TEMPORAL_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  DATA_DIR: z.string().default('.data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  GRAPHQL_MAX_DEPTH: z.coerce.number().int().positive().default(10),
  GRAPHQL_MAX_COST: z.coerce.number().int().positive().default(5000),
  REQUEST_BODY_LIMIT: z.string().default('100kb'),
  SMDP_URL: z.string().url().optional(),
  SMDP_REQUESTER_ID: z.string().default('mvno-bss'),
  SMDP_ADDRESS: z.string().optional(),
  SMDP_CLIENT_CERT: z.string().optional(),
  SMDP_CLIENT_KEY: z.string().optional(),
  SMDP_CLIENT_CA: z.string().optional(),
  SMDP_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  SMDP_ALLOWED_REQUESTERS: z.string().optional(),
  SMDP_SIMULATOR: z.enum(['on', 'off']).default('on'),
  SMDP_SIMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(8701),
  SMDP_AUTO_DEVICE_MS: z.coerce.number().int().min(0).default(200),
  RECONCILIATION_INBOX_DIR: z.string().optional(),
  RECONCILIATION_INBOX_POLL_MS: z.coerce.number().int().min(0).default(5000),
});

export type Config = {
  env: 'development' | 'production' | 'test';
  production: boolean;
  databaseUrl?: string;
  temporal: { address?: string; namespace: string; taskQueue: string };
  api: { host: string; port: number; bodyLimit: string; maxDepth: number; maxCost: number };
  embedded: { postgresPort: number; temporalPort: number; temporalUiPort: number; dataDir: string };
  logLevel: string;
  /** SM-DP+ (ES2+). Without `url`, `npm start` runs the local simulator (unless `simulator` is off). */
  smdp: {
    url?: string; requesterId: string; smdpAddress?: string; tls?: { certPath: string; keyPath: string; caPath?: string }; timeoutMs: number;
    allowedRequesters?: string[]; simulator: boolean; simulatorPort: number; autoDeviceMs: number;
  };
  /** Watched folder of MNO files (`<inboxDir>/<partner code>/`), polled every `inboxPollMs` by the worker (0: not watched). */
  reconciliation: { inboxDir: string; inboxPollMs: number };
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`Invalid environment: ${problems}`);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    production: e.NODE_ENV === 'production',
    databaseUrl: e.DATABASE_URL,
    temporal: { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE, taskQueue: e.TEMPORAL_TASK_QUEUE },
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      bodyLimit: e.REQUEST_BODY_LIMIT,
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxCost: e.GRAPHQL_MAX_COST,
    },
    embedded: {
      postgresPort: e.EMBEDDED_POSTGRES_PORT,
      temporalPort: e.TEMPORAL_PORT,
      temporalUiPort: e.TEMPORAL_UI_PORT,
      dataDir: path.resolve(e.DATA_DIR),
    },
    logLevel: e.LOG_LEVEL,
    smdp: {
      url: e.SMDP_URL,
      requesterId: e.SMDP_REQUESTER_ID,
      smdpAddress: e.SMDP_ADDRESS,
      tls: e.SMDP_CLIENT_CERT && e.SMDP_CLIENT_KEY ? { certPath: e.SMDP_CLIENT_CERT, keyPath: e.SMDP_CLIENT_KEY, caPath: e.SMDP_CLIENT_CA } : undefined,
      timeoutMs: e.SMDP_TIMEOUT_MS,
      allowedRequesters: e.SMDP_ALLOWED_REQUESTERS ? e.SMDP_ALLOWED_REQUESTERS.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      simulator: e.SMDP_SIMULATOR === 'on',
      simulatorPort: e.SMDP_SIMULATOR_PORT,
      autoDeviceMs: e.SMDP_AUTO_DEVICE_MS,
    },
    reconciliation: {
      inboxDir: path.resolve(e.RECONCILIATION_INBOX_DIR ?? path.join(e.DATA_DIR, 'reconciliation-inbox')),
      inboxPollMs: e.RECONCILIATION_INBOX_POLL_MS,
    },
  };
}

/** Env vars each process reads; docker-compose.test checks the compose file wires them. */
export const REQUIRED_SERVER_ENV = ['DATABASE_URL', 'TEMPORAL_ADDRESS'] as const;
