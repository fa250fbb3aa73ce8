import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

/** The Temporal CLI carries the dev server and the UI. Later tags carry a `replace` directive that
 * `go install` refuses, so the version is pinned. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';

const projectRoot = path.resolve(__dirname, '..');
export const projectToolsDir = path.join(projectRoot, '.tools');
export function cachedCliDir(): string {
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'mvno-bss', `temporal-cli-${TEMPORAL_CLI_VERSION}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Where an existing binary is: $TEMPORAL_CLI, `temporal` on PATH, the project's .tools/, the build cache. */
export function findTemporalCli(): string | undefined {
  const candidates = [
    process.env.TEMPORAL_CLI,
    onPath('temporal'),
    path.join(projectToolsDir, 'temporal'),
    path.join(cachedCliDir(), 'temporal'),
  ];
  return candidates.find((c): c is string => !!c && isExecutable(c));
}

export class TemporalCliMissingError extends Error {}

/** Builds the pinned CLI with `go install` into the cache (shared by every clone) and links it into
 * .tools/. Nothing is downloaded but Go modules; progress goes to stderr. */
export async function buildTemporalCli(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  const go = onPath('go');
  if (!go) {
    throw new TemporalCliMissingError(
      `Temporal CLI: not found on PATH, in ${projectToolsDir} or ${cachedCliDir()}, and Go is not installed to build it. ` +
        `Install Go (https://go.dev/doc/install) and run \`npm run tools:temporal\`, or install the Temporal CLI ${TEMPORAL_CLI_VERSION} ` +
        `and put \`temporal\` on PATH (or set TEMPORAL_CLI=/path/to/temporal).`,
    );
  }
  const target = cachedCliDir();
  fs.mkdirSync(target, { recursive: true });
  log(`Temporal CLI: building ${MODULE}@${TEMPORAL_CLI_VERSION} with go install into ${target} (first time only, a few minutes)…`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', '-v', `${MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: target, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let built = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        built++;
        if (built % 25 === 0 || line.startsWith('go:')) log(`Temporal CLI build: ${built} packages… ${line}`);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new TemporalCliMissingError(`Temporal CLI: go install exited with ${code}`)),
    );
  });
  const binary = path.join(target, 'temporal');
  linkIntoTools(binary);
  log(`Temporal CLI: built ${binary}`);
  return binary;
}

function linkIntoTools(binary: string): void {
  fs.mkdirSync(projectToolsDir, { recursive: true });
  const link = path.join(projectToolsDir, 'temporal');
  fs.rmSync(link, { force: true });
  fs.symlinkSync(binary, link);
}

export async function ensureTemporalCli(log?: (line: string) => void): Promise<string> {
  const found = findTemporalCli();
  if (found) return found;
  return buildTemporalCli(log);
}

export function temporalCliVersion(binary: string): string {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return (out.stdout || out.stderr || '').trim();
}
