/** Shared helpers of the billing tests: a worker whose lifecycle port is a fake that records what
 * billing asked for and writes the subscriber state as the lifecycle workflow would. */
import crypto from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import type { Knex } from 'knex';
import { createWorker } from '../../worker';
import { createLogger } from '../../platform/logger';
import { Pool } from 'pg';
import { createTestDatabase, testServices } from '../support/services';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import type { PaymentGateway } from '../../domain/payments/payment-gateway';
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

/** A database, a charging engine and a billing worker for one test file, with ledger conservation
 * checked after every test (the invariant every billing scenario must keep). */
export function useBillingTestStack(paymentGateway: PaymentGateway) {
  const stack = {} as {
    t: Awaited<ReturnType<typeof createTestDatabase>>;
    w: Awaited<ReturnType<typeof startBillingWorker>>;
    pool: Pool;
    engine: ChargingEngine;
  };
  beforeAll(async () => {
    stack.t = await createTestDatabase();
    stack.pool = new Pool({ connectionString: stack.t.url, max: 4 });
    stack.engine = createChargingEngine({ pool: stack.pool });
    stack.w = await startBillingWorker(stack.t.db, { chargingEngine: stack.engine, paymentGateway });
  });
  afterAll(async () => {
    await stack.w?.stop();
    await stack.engine?.close();
    await stack.pool?.end();
    await stack.t?.drop();
  });
  afterEach(async () => {
    expect((await verifyBalances(stack.t.db)).problems).toEqual([]);
  });
  return stack;
}
