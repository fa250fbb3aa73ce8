import pino, { type Logger } from 'pino';

/** Subscriber identifiers are personal data: logs keep only the last four digits. */
export function maskIdentifier(value: unknown): unknown {
  if (typeof value !== 'string' || value.length <= 4) return value;
  return `${'*'.repeat(value.length - 4)}${value.slice(-4)}`;
}

const MASKED_KEYS = ['msisdn', 'imsi', 'iccid', 'eid', 'MSISDN', 'IMSI', 'ICCID', 'EID'];
const SECRET_KEYS = ['apiKey', 'authorization', 'password', 'pin', 'puk', 'ki', 'opc', 'keyReference'];

export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const paths = MASKED_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  const secrets = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
    name: options.name ?? 'mvno-bss',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: {
      paths: [...paths, ...secrets, 'req.headers.authorization', 'req.headers["x-api-key"]'],
      censor: (value: unknown, path: string[]) =>
        MASKED_KEYS.includes(path[path.length - 1]) ? maskIdentifier(value) : '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? process.stdout,
  );
}

export type { Logger };
