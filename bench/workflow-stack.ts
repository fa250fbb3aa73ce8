/** What a benchmark needs to run the project's workflows for real: a Temporal dev server (in memory),
 * a worker with the project's activities (`createWorker`, prebuilt bundle) and a client. */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { startTemporalDevServer } from '../platform/temporal-dev-server';
import { ensureTemporalCli } from '../platform/temporal-cli';
import { freePort } from '../platform/ports';
import { bundleWorkflows, createWorker, type WorkerWiring } from '../worker';

export interface WorkflowStack {
  client: Client;
  /** Worker, connections, then the server; safe to call more than once. */
  stop(): Promise<void>;
}

export type WorkflowStackWiring = Omit<WorkerWiring, 'connection' | 'namespace' | 'workflowBundle'>;

export async function startWorkflowStack(wiring: WorkflowStackWiring): Promise<WorkflowStack> {
  Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
  const server = await startTemporalDevServer({ cliPath: await ensureTemporalCli(), port: await freePort() });
  const stops: (() => Promise<void>)[] = [() => server.stop()];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch((err) => process.stderr.write(`workflow stack: stop: ${err}\n`));
  };
  try {
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    stops.push(() => nativeConnection.close());
    const worker = await createWorker({ ...wiring, connection: nativeConnection, namespace: 'default', workflowBundle: await bundleWorkflows() });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    const connection = await Connection.connect({ address: server.address });
    stops.push(() => connection.close());
    return { client: new Client({ connection, namespace: 'default' }), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
