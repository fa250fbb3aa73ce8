/**
 * Test support: Stripe's mock API server (stripe-mock) on a free loopback port.
 *
 * The binary comes from `scripts/ensure-stripe-mock.sh` (built once with `go install` into
 * ~/.cache/mvno-bss/stripe-mock-<version>/), or from $STRIPE_MOCK_BIN when set. It is started
 * with `-http-addr 127.0.0.1:0 -https-addr 127.0.0.1:0`: the kernel picks free ports (no
 * probe-then-bind race between parallel test files) and nothing listens beyond loopback —
 * given only an HTTP address, stripe-mock would also open HTTPS on [::]:12112. The chosen HTTP
 * port is read from its "Listening for HTTP at address: …" line.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';

const SCRIPT = path.resolve(__dirname, '../../../scripts/ensure-stripe-mock.sh');

/** Path of the stripe-mock binary, building it on first use (can take a minute or two). */
export async function ensureStripeMockBinary(): Promise<string> {
  if (process.env.STRIPE_MOCK_BIN) return process.env.STRIPE_MOCK_BIN;
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`scripts/ensure-stripe-mock.sh failed (exit ${err.code}): ${stderr.trim()}`));
        return;
      }
      const lines = stdout.trim().split('\n');
      resolve(lines[lines.length - 1]);
    });
  });
}

export interface RunningStripeMock {
  host: string;
  port: number;
  binary: string;
  stop(): Promise<void>;
}

export async function startStripeMock(options: { binary?: string; startTimeoutMs?: number } = {}): Promise<RunningStripeMock> {
  const binary = options.binary ?? (await ensureStripeMockBinary());
  const child = spawn(binary, ['-http-addr', '127.0.0.1:0', '-https-addr', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`stripe-mock did not report its port within ${options.startTimeoutMs ?? 30000} ms:\n${output}`)),
        options.startTimeoutMs ?? 30000,
      );
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const match = /Listening for HTTP at address: 127\.0\.0\.1:(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`stripe-mock exited early (code ${code}, signal ${signal}):\n${output}`));
      });
    });
    // Keep draining its output so a full pipe never blocks it.
    child.stdout!.resume();
    child.stderr!.resume();
    return { host: '127.0.0.1', port, binary, stop: () => stopChild(child, exited) };
  } catch (err) {
    await stopChild(child, exited);
    throw err;
  }
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
