/** The one place the Temporal worker is wired: database, adapters, activities, workflows.
 * `npx tsx worker.ts` runs a worker against DATABASE_URL and TEMPORAL_ADDRESS (docker-compose);
 * `npm start` calls createWorker in-process. */
import path from 'node:path';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { startNotificationLoop } from './activities/notification.background';
import { startReconciliationInboxWatcher } from './activities/reconciliation-inbox.background';
import { createActivities, type ActivityDependencies } from './activities';
import { loadConfig } from './platform/config';
import { createDatabase } from './platform/database';
import { createLogger } from './platform/logger';
import { ensureReconciliationScheduleAt } from './activities/reconciliation.schedule';
import { es2PlusClientFromConfig } from './domain/sims/es2plus.config';
import { closeSharedEngine } from './domain/payments/shared-engine';

export const WORKFLOWS_PATH = path.resolve(__dirname, 'workflows', 'index.ts');

export async function bundleWorkflows(): Promise<{ code: string }> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined,
  warn: (m: string) => console.warn(m), error: (m: string) => console.error(m),
};

export interface WorkerWiring extends ActivityDependencies {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** A prebuilt bundle (tests, production images); otherwise workflows are bundled at start. */
  workflowBundle?: { code: string } | { codePath: string };
  extra?: Partial<WorkerOptions>;
}

export async function createWorker(w: WorkerWiring): Promise<Worker> {
  const { connection, namespace, taskQueue, workflowBundle, extra, ...deps } = w;
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(deps),
    ...extra,
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: 'worker' });
  if (!config.databaseUrl || !config.temporal.address) throw new Error('worker: DATABASE_URL and TEMPORAL_ADDRESS are required');
  const db = createDatabase(config.databaseUrl, { applicationName: 'mvno-bss-worker' });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    db,
    logger,
    es2plus: es2PlusClientFromConfig(config.smdp),
    workflowBundle: process.env.WORKFLOW_BUNDLE_PATH ? { codePath: process.env.WORKFLOW_BUNDLE_PATH } : undefined,
  });
  logger.info({ schedule: await ensureReconciliationScheduleAt(config.temporal.address, config.temporal.namespace, config.temporal.taskQueue) }, 'monthly reconciliation schedule');
  logger.info({ taskQueue: config.temporal.taskQueue }, 'worker started');
  // Notifications (outbox → alerts, auto top-ups, webhooks, SMS) run beside the worker.
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const notifications = startNotificationLoop({
    db, logger, temporal: new Client({ connection: clientConnection, namespace: config.temporal.namespace }), taskQueue: config.temporal.taskQueue,
  });
  // MNO files dropped into <inbox>/<partner>/ are imported as they arrive (RECONCILIATION_INBOX_POLL_MS=0: only at the monthly run).
  const inbox = config.reconciliation.inboxPollMs > 0
    ? startReconciliationInboxWatcher({ db, logger, inboxDir: config.reconciliation.inboxDir, intervalMs: config.reconciliation.inboxPollMs })
    : undefined;
  await worker.run();
  await inbox?.stop();
  await notifications.stop();
  await closeSharedEngine(db);
  await clientConnection.close();
  await connection.close();
  await db.destroy();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
