/** The billing run starts `invoice:<id>` for every invoice it issued for its date, even when the
 * issuing step was retried after its issues had committed (a crash before it returned: the retry
 * finds nothing left to issue). Starts are idempotent: a rerun starts nothing twice. */
import crypto from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { useBillingTestStack } from './support';
import { seedAccount } from '../../domain/charging/testing/fixtures';
import { SandboxPaymentGateway } from '../../domain/payments';
import { savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { findInvoice, issueInvoice, openInvoiceFor } from '../../domain/billing/invoices.repository';
import { addInvoiceCharge } from '../../domain/billing/invoice-wallet.service';
import { createInvoiceActivities } from '../../activities/billing-invoice.activities';
import { createLogger } from '../../platform/logger';
import type { InvoiceWorkflowState } from '../../workflows/invoice.messages';

jest.setTimeout(120_000);

const RUN_DATE = '2026-05-01';

describe('billing run: invoice workflows of the issued invoices', () => {
  const gateway = new SandboxPaymentGateway();
  const stack = useBillingTestStack(gateway);

  async function accountWithInvoice(asOf: string) {
    const id = await seedAccount(stack.t.db, { paymentType: 'postpaid', creditLimitMinor: 100_000n });
    const customer = await gateway.createCustomer({ billingAccountId: id });
    const pm = await gateway.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa' });
    await savePaymentMethod(stack.t.db, { billingAccountId: id, gateway: 'sandbox', customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef });
    await addInvoiceCharge({ db: stack.t.db, engine: stack.engine }, { billingAccountId: id, asOf, kind: 'one_off', description: 'SIM card', amountMinor: 1_000n, sourceRef: `sim:${id}`, actor: 'test' });
    return (await openInvoiceFor(stack.t.db, id, asOf)).id;
  }
  async function run(cycleDate: string) {
    const h = await stack.w.client.workflow.start('billingRunWorkflow', {
      workflowId: `billing-run:${cycleDate}:${crypto.randomUUID()}`, taskQueue: stack.w.taskQueue, args: [{ cycleDate, batchSize: 50, dunningDayMs: 50 }],
    });
    return h.result();
  }
  const invoiceWorkflow = (invoiceId: string) => stack.w.client.workflow.getHandle(`invoice:${invoiceId}`);

  it('a retried issuing step (its issues committed, then a crash) still gets every issued invoice its workflow, once', async () => {
    const first = await accountWithInvoice('2026-04-10');
    const second = await accountWithInvoice('2026-04-20');
    // Issued for another date, without a workflow: not this run's to start.
    const other = await accountWithInvoice('2026-03-10');
    await issueInvoice(stack.t.db, other, { asOf: '2026-04-02' });

    // The first attempt of the issuing step issues both and its answer is lost; the retry issues nothing.
    const activities = createInvoiceActivities({ db: stack.t.db, logger: createLogger({ level: 'silent' }), chargingEngine: stack.engine, paymentGateway: gateway });
    expect((await activities.billingRunIssueDue({ cycleDate: RUN_DATE, limit: 200 })).sort()).toEqual([first, second].sort());
    expect(await activities.billingRunIssueDue({ cycleDate: RUN_DATE, limit: 200 })).toEqual([]);
    for (const id of [first, second]) await expect(invoiceWorkflow(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    await run(RUN_DATE);
    for (const id of [first, second]) {
      const state = (await invoiceWorkflow(id).result()) as InvoiceWorkflowState;
      expect(state.outcome).toBe('paid');
      expect(await findInvoice(stack.t.db, id)).toMatchObject({ status: 'paid', paidMinor: 1_190n });
    }
    await expect(invoiceWorkflow(other).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    // A rerun of the date finds the same invoices; their workflows already ran, so none starts again.
    const runIds = await Promise.all([first, second].map(async (id) => (await invoiceWorkflow(id).describe()).runId));
    await run(RUN_DATE);
    expect(await Promise.all([first, second].map(async (id) => (await invoiceWorkflow(id).describe()).runId))).toEqual(runIds);
    expect((await stack.t.db('payments').whereIn('purpose_ref', [first, second])).length).toBe(2);
  });
});
