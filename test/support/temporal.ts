import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import type { Knex } from 'knex';
import { createWorker } from '../../worker';
import { createLogger } from '../../platform/logger';
import { testServices } from './services';
import type { Es2PlusOperatorPort } from '../../domain/sims/es2plus.client';

let runtimeInstalled = false;

/** A real worker (prebuilt workflow bundle) on its own task queue, and a client, for one test file. */
export async function startTestWorker(db: Knex, options: { taskQueue?: string; es2plus?: Es2PlusOperatorPort } = {}) {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const services = testServices();
  const taskQueue = options.taskQueue ?? `test-${crypto.randomBytes(4).toString('hex')}`;
  const nativeConnection = await NativeConnection.connect({ address: services.temporalAddress });
  const worker: Worker = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    db,
    logger: createLogger({ level: 'silent' }),
    es2plus: options.es2plus,
    workflowBundle: { codePath: services.workflowBundlePath },
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: services.temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  return {
    client,
    taskQueue,
    worker,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** The path of Temporal's Java test server (time skipping), provisioned by
 * scripts/ensure-temporal-test-server.sh (CI runs it in .ci/run). A missing server fails the suite
 * that needs it; it is never a skip. */
export function timeSkippingServerPath(): string {
  let found: string | undefined;
  try {
    found = execFileSync(path.resolve(__dirname, '..', '..', 'scripts', 'ensure-temporal-test-server.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 300_000 }).trim().split('\n').pop();
  } catch {
    found = undefined;
  }
  if (!found) throw new Error('time-skipping tests need Temporal\'s Java test server: run scripts/ensure-temporal-test-server.sh (java 17+ and mvn)');
  return found;
}
