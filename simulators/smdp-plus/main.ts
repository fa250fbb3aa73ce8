/**
 * Runs the SM-DP+ simulator as its own process:
 *
 *   npx tsx simulators/smdp-plus/main.ts
 *
 * Environment (all optional):
 *   SMDP_PORT                  port (default 8701)           SMDP_HOST   host (default 127.0.0.1)
 *   SMDP_NOTIFICATION_URL      Operator HandleDownloadProgressInfo endpoint (full URL)
 *   SMDP_ADDRESS               SM-DP+ address in Activation Codes (default smdp-plus.simulator.local)
 *   SMDP_AUTO_DEVICE           1/true, or a delay in ms: play the device after each release
 *   SMDP_AUTO_DEVICE_EID       EID the automatic device uses when the order has none
 *   SMDP_DEVICE_STEP_DELAY_MS  pause between download, install and enable (default 10)
 *   SMDP_FAULTS                fault configuration as JSON (see faults.ts / README.md)
 *   SMDP_PROFILE_TYPES         comma-separated Profile Types (default: any)
 *   SMDP_ADOPT_UNKNOWN_ICCIDS  1: downloadOrder with an unknown ICCID creates the Profile
 *   SMDP_ALLOWED_REQUESTERS    comma-separated functionRequesterIdentifiers (default: any)
 *   SMDP_TLS_CERT / SMDP_TLS_KEY / SMDP_TLS_CA   PEM files: serve HTTPS (mutual TLS with CA)
 *   SMDP_LOG                   "silent" to log nothing (default: JSON lines on stdout)
 */
import { readFileSync } from 'node:fs';
import { createSmdpPlusSimulator, type AutoDeviceOptions, type SmdpPlusSimulatorOptions } from './simulator';
import { SmdpFaultsSchema } from './faults';

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function flag(name: string): boolean {
  return /^(1|true|yes|on)$/i.test(env(name) ?? '');
}

function list(name: string): string[] | undefined {
  return env(name)
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function autoDevice(): boolean | AutoDeviceOptions {
  const raw = env('SMDP_AUTO_DEVICE');
  const eid = env('SMDP_AUTO_DEVICE_EID');
  if (raw === undefined || /^(0|false|no|off)$/i.test(raw)) return false;
  const delayMs = /^[0-9]+$/.test(raw) && raw !== '1' ? Number(raw) : undefined;
  return { ...(delayMs !== undefined ? { delayMs } : {}), ...(eid ? { eid } : {}) };
}

async function main(): Promise<void> {
  const silent = env('SMDP_LOG') === 'silent';
  const options: SmdpPlusSimulatorOptions = {
    port: Number(env('SMDP_PORT') ?? 8701),
    host: env('SMDP_HOST') ?? '127.0.0.1',
    autoDevice: autoDevice(),
    log: silent ? () => undefined : (e) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), service: 'smdp-plus-simulator', ...e })}\n`),
  };
  const notificationUrl = env('SMDP_NOTIFICATION_URL');
  if (notificationUrl) options.notificationUrl = notificationUrl;
  const smdpAddress = env('SMDP_ADDRESS');
  if (smdpAddress) options.smdpAddress = smdpAddress;
  const stepDelay = env('SMDP_DEVICE_STEP_DELAY_MS');
  if (stepDelay) options.deviceStepDelayMs = Number(stepDelay);
  const faults = env('SMDP_FAULTS');
  if (faults) options.faults = SmdpFaultsSchema.parse(JSON.parse(faults));
  const profileTypes = list('SMDP_PROFILE_TYPES');
  if (profileTypes) options.profileTypes = profileTypes;
  const allowed = list('SMDP_ALLOWED_REQUESTERS');
  if (allowed) options.allowedRequesters = allowed;
  if (flag('SMDP_ADOPT_UNKNOWN_ICCIDS')) options.adoptUnknownIccids = true;
  const cert = env('SMDP_TLS_CERT');
  const key = env('SMDP_TLS_KEY');
  if (cert && key) {
    const ca = env('SMDP_TLS_CA');
    options.tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), ...(ca ? { ca: readFileSync(ca, 'utf8') } : {}) };
  }

  const sim = await createSmdpPlusSimulator(options);
  if (silent) process.stdout.write(`SM-DP+ simulator listening on ${sim.url}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    options.log?.({ msg: 'stopping', signal });
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`SM-DP+ simulator failed to start: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
