import crypto from 'node:crypto';
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
