/** Shared helpers of the billing tests: a worker whose lifecycle port is a fake that records what
 * billing asked for and writes the subscriber state as the lifecycle workflow would. */
import crypto from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import type { Knex } from 'knex';
import { createWorker } from '../../worker';
import { createLogger } from '../../platform/logger';
import { testServices } from '../support/services';
import type { LifecyclePort } from '../../activities/billing.activities';

export class FakeLifecycle implements LifecyclePort {
  readonly calls: { action: 'suspend' | 'resume' | 'terminate'; subscriberId: string }[] = [];
  constructor(private readonly db: Knex) {}
  async suspendForNonPayment(subscriberId: string) {
    this.calls.push({ action: 'suspend', subscriberId });
    await this.db('subscribers').where({ id: subscriberId, state: 'active' }).update({ state: 'suspended', suspend_reason: 'non_payment' });
    return 'done' as const;
  }
  async terminateForNonPayment(subscriberId: string) {
    this.calls.push({ action: 'terminate', subscriberId });
    await this.db('subscribers').where({ id: subscriberId }).whereNot({ state: 'terminated' }).update({ state: 'terminated', suspend_reason: null, terminated_at: new Date() });
    return 'done' as const;
  }
  async resumeAfterPayment(subscriberId: string) {
    this.calls.push({ action: 'resume', subscriberId });
    await this.db('subscribers').where({ id: subscriberId, state: 'suspended' }).update({ state: 'active', suspend_reason: null });
    return 'done' as const;
  }
}

let runtimeInstalled = false;

export async function startBillingWorker(db: Knex, extra: Record<string, unknown> = {}) {
  if (!runtimeInstalled) {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    } catch {
      // installed by another helper in this process
    }
    runtimeInstalled = true;
  }
  const services = testServices();
  const taskQueue = `billing-${crypto.randomBytes(4).toString('hex')}`;
  const nativeConnection = await NativeConnection.connect({ address: services.temporalAddress });
  const lifecycle = new FakeLifecycle(db);
  const worker = await createWorker({
    connection: nativeConnection, namespace: 'default', taskQueue, db, logger: createLogger({ level: 'silent' }),
    workflowBundle: { codePath: services.workflowBundlePath }, lifecycle, ...extra,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: services.temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  return {
    client, taskQueue, lifecycle, worker,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}
