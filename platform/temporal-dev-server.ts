import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { assertPortFree } from './ports';
import { SEARCH_ATTRIBUTES } from './temporal-search-attributes';

export interface TemporalDevServerOptions {
  cliPath: string;
  port: number;
  /** Omit for an in-memory server (tests). */
  uiPort?: number;
  /** Persisted state; omit for in-memory. */
  dbFile?: string;
  pidFile?: string;
  namespace?: string;
  /** Dynamic config values (`--dynamic-config-value KEY=<json>`), on top of the defaults below. */
  dynamicConfig?: Record<string, unknown>;
  onLog?: (line: string) => void;
}

/** Dynamic config for a one-node dev server, where every persistence call goes through one SQLite
 * connection:
 * - task queues get one partition: with the default four, a task is forwarded between partitions or
 *   waits on one no poller is on, and goes to the backlog (a write) instead of to a waiting poller;
 * - the search-attribute cache is used: the CLI turns it off (a read of the cluster metadata on
 *   every use of a search attribute, about 18 per eSIM activation) so that attributes added at run
 *   time show at once; ours are registered with `--search-attribute` before the server starts. */
export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, unknown> = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
  'system.forceSearchAttributesCacheRefreshOnRead': false,
};

export interface TemporalDevServerHandle {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

function killStale(pidFile: string | undefined): void {
  if (!pidFile || !fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  try {
    if (pid > 0) process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  fs.rmSync(pidFile, { force: true });
}

async function waitUntilReady(address: string, namespace: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`not ready within ${timeoutMs} ms: ${lastError instanceof Error ? lastError.message : lastError}`);
}

export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServerHandle> {
  const namespace = options.namespace ?? 'default';
  killStale(options.pidFile);
  await assertPortFree(options.port, 'Temporal dev server');
  if (options.uiPort) await assertPortFree(options.uiPort, 'Temporal UI');
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(options.port),
    '--namespace', namespace,
    '--log-level', 'warn',
    // Without these a file-backed dev server is several times slower.
    '--sqlite-pragma', 'journal_mode=WAL',
    '--sqlite-pragma', 'synchronous=NORMAL',
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...Object.entries({ ...DEV_SERVER_DYNAMIC_CONFIG, ...options.dynamicConfig }).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]),
  ];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const recent: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      recent.push(line);
      if (recent.length > 20) recent.shift();
      options.onLog?.(line);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  if (options.pidFile && child.pid) fs.writeFileSync(options.pidFile, String(child.pid));
  const address = `127.0.0.1:${options.port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
    if (options.pidFile) fs.rmSync(options.pidFile, { force: true });
  };
  try {
    await waitUntilReady(address, namespace, child, 60000);
  } catch (err) {
    await stop();
    throw new Error(
      `Temporal dev server failed to start on ${address}: ${err instanceof Error ? err.message : err}\n${recent.join('\n')}`,
    );
  }
  return { address, uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined, stop };
}
