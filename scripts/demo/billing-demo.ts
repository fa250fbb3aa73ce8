/**
 * Billing demo for `npm start`: the demo prepaid customer (Alice) gets a saved test card and a
 * 20.00 EUR top-up through `top-up:demo-alice-1`; the demo postpaid customer (Bob) gets a saved card
 * and an invoice with his plan fee, issued and collected by `invoice:<id>`. Idempotent: a restart
 * finds what the first start made.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { processPaymentGateway } from '../../domain/payments';
import { listPaymentMethods, openTopUp, savePaymentMethod } from '../../domain/payments/top-ups.repository';
import { openInvoiceFor } from '../../domain/billing/invoices.repository';
import { addInvoiceCharge } from '../../domain/billing/invoice-wallet.service';
import { sharedEngineFor } from '../../domain/payments/shared-engine';
import { invoiceWorkflowId } from '../../workflows/invoice.messages';

async function accountOf(db: Knex, externalRef: string): Promise<string | undefined> {
  const row = await db('billing_accounts').join('customers', 'customers.id', 'billing_accounts.customer_id')
    .where('customers.external_ref', externalRef).whereNull('billing_accounts.parent_account_id').first('billing_accounts.id');
  return row?.id;
}

async function ensureCard(db: Knex, accountId: string): Promise<void> {
  if ((await listPaymentMethods(db, accountId)).length > 0) return;
  const g = processPaymentGateway();
  const customer = await g.createCustomer({ billingAccountId: accountId });
  const pm = await g.attachPaymentMethod({ customerRef: customer.customerRef, paymentMethodRef: 'pm_card_visa', setAsDefault: true });
  await savePaymentMethod(db, { billingAccountId: accountId, gateway: g.name, customerRef: customer.customerRef, paymentMethodRef: pm.paymentMethodRef, brand: pm.card?.brand, last4: pm.card?.last4 });
}

async function start(temporal: Client, workflowType: string, workflowId: string, taskQueue: string, args: unknown[]): Promise<void> {
  try {
    const h = await temporal.workflow.start(workflowType, { workflowId, taskQueue, args });
    await h.result();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

export async function runBillingDemo(db: Knex, temporal: Client, taskQueue: string): Promise<{ topUp?: string; invoiceId?: string }> {
  const out: { topUp?: string; invoiceId?: string } = {};
  const alice = await accountOf(db, 'demo-alice');
  if (alice) {
    await ensureCard(db, alice);
    const key = 'demo-alice-1';
    const t = await openTopUp(db, { idempotencyKey: key, billingAccountId: alice, amountMinor: 2000n, source: 'card' });
    if (t.status === 'pending') await start(temporal, 'topUpWorkflow', `top-up:${key}`, taskQueue, [{ key }]);
    out.topUp = key;
  }
  const bob = await accountOf(db, 'demo-bob');
  if (bob) {
    await ensureCard(db, bob);
    const issued = await db('invoices').where({ billing_account_id: bob }).whereNot({ status: 'open' }).first('id');
    if (issued) {
      out.invoiceId = issued.id;
    } else {
      const today = new Date().toISOString().slice(0, 10);
      const line = await db('subscribers').where({ billing_account_id: bob }).first('id', 'msisdn');
      // Through the wallet, as billing does: the one-off debits it, the credit credits it.
      const deps = { db, engine: sharedEngineFor(db) };
      await addInvoiceCharge(deps, { billingAccountId: bob, asOf: today, kind: 'one_off', description: `Postpaid Unlimited, ${line?.msisdn ?? 'demo line'} (demo month)`, amountMinor: 2500n, sourceRef: 'demo:fee', subscriberId: line?.id, actor: 'demo' });
      await addInvoiceCharge(deps, { billingAccountId: bob, asOf: today, kind: 'credit', description: 'Welcome credit', amountMinor: 500n, sourceRef: 'demo:welcome', actor: 'demo' });
      const inv = await openInvoiceFor(db, bob, today);
      await start(temporal, 'invoiceWorkflow', invoiceWorkflowId(inv.id), taskQueue, [{ invoiceId: inv.id, asOf: today }]).catch(() => undefined);
      out.invoiceId = inv.id;
    }
  }
  return out;
}
