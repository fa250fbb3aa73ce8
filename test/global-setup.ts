import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startEmbeddedPostgres, ensureDatabase } from '../platform/embedded-postgres';
import { startTemporalDevServer } from '../platform/temporal-dev-server';
import { ensureTemporalCli } from '../platform/temporal-cli';
import { freePort } from '../platform/ports';
import { bundleWorkflows } from '../worker';
import { TEST_STATE_FILE, TEMPLATE_DATABASE, type TestServices } from './support/services';

/** One real PostgreSQL and one real Temporal dev server for the whole integration run, on free
 * ports, in a temporary directory. A migrated template database lets each test file clone its own
 * database in a few milliseconds. The workflow bundle is built once and shared by every worker. */
export default async function globalSetup(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mvno-bss-test-'));
  fs.chmodSync(root, 0o755);
  const postgresPort = await freePort();
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(root, 'postgres'),
    port: postgresPort,
    // Tests trade durability for speed; benchmarks and `npm start` keep PostgreSQL's defaults.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  await ensureDatabase(postgres.url, TEMPLATE_DATABASE);
  execFileSync(process.execPath, [require.resolve('tsx/cli'), path.resolve(__dirname, '..', 'scripts', 'migrate.ts')], {
    env: { ...process.env, DATABASE_URL: postgres.databaseUrl(TEMPLATE_DATABASE) },
    stdio: 'inherit',
  });

  const cliPath = await ensureTemporalCli();
  const temporal = await startTemporalDevServer({ cliPath, port: await freePort() });

  const workflowBundlePath = path.join(root, 'workflow-bundle.js');
  fs.writeFileSync(workflowBundlePath, (await bundleWorkflows()).code);

  const services: TestServices = {
    root,
    postgresUrl: postgres.url,
    postgresPort,
    templateDatabase: TEMPLATE_DATABASE,
    temporalAddress: temporal.address,
    workflowBundlePath,
    temporalCliPath: cliPath,
  };
  fs.writeFileSync(TEST_STATE_FILE, JSON.stringify(services));
  process.env.MVNO_TEST_SERVICES = JSON.stringify(services);
  (globalThis as Record<string, unknown>).__mvnoTestStop = async () => {
    await temporal.stop();
    await postgres.stop();
  };
}
