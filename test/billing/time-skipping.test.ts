/** Dunning on the real timetable (the `default` policy: reminders on days 3 and 10, late fee on day
 * 14, suspension on day 21, termination on day 60), on Temporal's Java test server with time
 * skipping (scripts/ensure-temporal-test-server.sh): two months pass in seconds. */
import crypto from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingServerPath } from '../support/temporal';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Pool } from 'pg';
import { createActivities } from '../../activities';
import { createLogger } from '../../platform/logger';
import { createTestDatabase, testServices } from '../support/services';
import { FakeLifecycle } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { createChargingEngine, type ChargingEngine } from '../../domain/charging/charging-engine';
import { SandboxPaymentGateway } from '../../domain/payments';
import { savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { openInvoiceFor } from '../../domain/billing/invoices.repository';
import { addInvoiceCharge } from '../../domain/billing/invoice-wallet.service';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { invoicePaidSignal, type InvoiceWorkflowState } from '../../workflows/invoice.messages';

const serverPath = timeSkippingServerPath();

jest.setTimeout(120_000);

describe('dunning with time skipping', () => {
  let env: TestWorkflowEnvironment;
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let worker: Worker;
  let running: Promise<void>;
  let pool: Pool;
  let engine: ChargingEngine;
  let lifecycle: FakeLifecycle;
  const gateway = new SandboxPaymentGateway();
  const taskQueue = `ts-billing-${crypto.randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    } catch {
      /* installed */
    }
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: serverPath } } });
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 4 });
    engine = createChargingEngine({ pool });
    lifecycle = new FakeLifecycle(t.db);
    worker = await Worker.create({
      connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: testServices().workflowBundlePath },
      activities: createActivities({ db: t.db, logger: createLogger({ level: 'silent' }), chargingEngine: engine, paymentGateway: gateway, lifecycle }),
    });
    running = worker.run();
  }, 120_000);
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
    await engine?.close();
    await pool?.end();
    await t?.drop();
  });

  async function invoiceFor(card: string) {
    const account = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 50_000n });
    const customer = await gateway.createCustomer({ billingAccountId: account });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: card });
    await savePaymentMethod(t.db, { billingAccountId: account, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    const subscriberId = crypto.randomUUID();
    await t.db('subscribers').insert({ id: subscriberId, billing_account_id: account, msisdn: `49172${crypto.randomInt(1e6, 9e6)}`, state: 'active', activated_at: new Date() });
    await addInvoiceCharge({ db: t.db, engine }, { billingAccountId: account, asOf: '2026-07-01', kind: 'one_off', description: 'Device instalment', amountMinor: 3_000n, sourceRef: 'device', actor: 'test' });
    return { account, subscriberId, invoiceId: (await openInvoiceFor(t.db, account, '2026-07-01')).id };
  }

  test('a card that keeps failing: reminders, late fee, suspension on day 21, termination on day 60', async () => {
    const a = await invoiceFor('pm_card_chargeDeclined');
    const started = Date.now();
    const state: InvoiceWorkflowState = await env.client.workflow.execute('invoiceWorkflow', {
      workflowId: `invoice:${a.invoiceId}`, taskQueue, args: [{ invoiceId: a.invoiceId, asOf: '2026-08-01' }],
    });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(state.steps).toEqual([
      { step: 'issued', day: 0 }, { step: 'reminder', day: 3 }, { step: 'reminder', day: 10 }, { step: 'late_fee', day: 14 },
      { step: 'suspended', day: 21 }, { step: 'terminated', day: 60 },
    ]);
    expect(lifecycle.calls.filter((c) => c.subscriberId === a.subscriberId).map((c) => c.action)).toEqual(['suspend', 'terminate']);
    // Never collected: the wallet owes the instalment and the 5.00 late fee.
    expect(BigInt((await t.db('wallets').where({ billing_account_id: a.account }).first()).balance_micros)).toBe(-35_000_000n);
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  test('paid during dunning (after suspension): dunning stops and the line is resumed', async () => {
    const a = await invoiceFor('pm_card_chargeDeclined');
    const handle = await env.client.workflow.start('invoiceWorkflow', {
      workflowId: `invoice:${a.invoiceId}`, taskQueue, args: [{ invoiceId: a.invoiceId, asOf: '2026-08-01' }],
    });
    await env.sleep('25 days');
    await handle.signal(invoicePaidSignal);
    const state: InvoiceWorkflowState = await handle.result();
    expect(state.outcome).toBe('paid');
    expect(state.steps.map((s) => s.step)).toEqual(['issued', 'reminder', 'reminder', 'late_fee', 'suspended', 'paid']);
    expect(lifecycle.calls.filter((c) => c.subscriberId === a.subscriberId).map((c) => c.action)).toEqual(['suspend', 'resume']);
    expect((await t.db('subscribers').where({ id: a.subscriberId }).first()).state).toBe('active');
  });
});
