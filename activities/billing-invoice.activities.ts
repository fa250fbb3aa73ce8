/** Activities of the invoice and dunning workflow `invoice:<id>`. */
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Knex } from 'knex';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { processPaymentGateway, type PaymentGateway } from '../domain/payments';
import { findPaymentMethod, recordPayment } from '../domain/payments/top-ups.repository';
import { findInvoice, invoicesDue, invoicesIssuedOn, issueInvoice, outsideWalletMinor, outstandingMinor, recordInvoicePayment } from '../domain/billing/invoices.repository';
import { addInvoiceCharge } from '../domain/billing/invoice-wallet.service';
import { consumeFinalBillRequests, type FinalBillBatch } from '../domain/billing/final-bills.repository';
import { creditWallet } from '../domain/ledger/wallet-operations';
import { minorToMicros } from '../domain/ledger/money';
import { publishEvents } from '../domain/notifications/notifications.repository';
import type { Logger } from '../platform/logger';
import { invoiceWorkflowId, type DunningTimetable } from '../workflows/invoice.messages';
import type { invoiceWorkflow } from '../workflows/invoice.workflow';
import { engineFor, temporalLifecyclePort, type LifecyclePort } from './billing.activities';

export interface InvoiceActivityDeps {
  db: Knex;
  logger: Logger;
  chargingEngine?: ChargingEngine;
  paymentGateway?: PaymentGateway;
  lifecycle?: LifecyclePort;
}

export function createInvoiceActivities(deps: InvoiceActivityDeps) {
  const engine = engineFor(deps);
  let gateway = deps.paymentGateway;
  const gw = () => (gateway ??= processPaymentGateway());
  const lifecycle = deps.lifecycle ?? temporalLifecyclePort;
  const linesOf = async (invoiceId: string, states: string[]) => {
    const inv = (await findInvoice(deps.db, invoiceId))!;
    return deps.db('subscribers').whereIn('state', states)
      .whereIn('billing_account_id', deps.db('billing_accounts').select('id').where('id', inv.billingAccountId).orWhere('parent_account_id', inv.billingAccountId))
      .pluck('id') as Promise<string[]>;
  };

  return {
    async invoiceIssue(input: { invoiceId: string; asOf: string }): Promise<{ number: string | null; totalMinor: string; settled: boolean }> {
      const inv = await issueInvoice(deps.db, input.invoiceId, { asOf: input.asOf });
      await publishEvents(deps.db, [{
        key: `invoice-issued:${inv.id}`, type: 'invoice_issued', billingAccountId: inv.billingAccountId,
        payload: { invoiceId: inv.id, number: inv.number, totalMinor: inv.totalMinor.toString(), currency: inv.currency, dueOn: inv.dueOn },
      }]);
      return { number: inv.number, totalMinor: inv.totalMinor.toString(), settled: outstandingMinor(inv) === 0n };
    },

    /** Takes what is outstanding from the saved method; the payment credits the wallet (receivables). */
    async invoiceCollect(input: { invoiceId: string; attempt: number }): Promise<{ settled: boolean; code?: string }> {
      const inv = (await findInvoice(deps.db, input.invoiceId))!;
      const due = outstandingMinor(inv);
      if (due === 0n) return { settled: true };
      const method = await findPaymentMethod(deps.db, { billingAccountId: inv.billingAccountId });
      if (!method) return { settled: false, code: 'NO_PAYMENT_METHOD' };
      const key = `invoice:${inv.id}:collect:${input.attempt}`;
      const r = await gw().capturePayment({
        amountMinor: due, currency: inv.currency, customerRef: method.customerRef, paymentMethodRef: method.paymentMethodRef, idempotencyKey: key,
        description: `Invoice ${inv.number}`, metadata: { invoice_id: inv.id },
      });
      await recordPayment(deps.db, { gateway: gw().name, paymentRef: r.paymentRef, billingAccountId: inv.billingAccountId, purpose: 'invoice', purposeRef: inv.id, amountMinor: due, currency: inv.currency, status: r.status });
      if (r.status !== 'succeeded') return { settled: false, code: r.declineCode ?? r.status };
      // The wallet carries what the account owes before tax; the payment settles that part of it. Tax
      // and the charges the wallet refused (owed in receivables) are settled outside it.
      const outside = await outsideWalletMinor(deps.db, inv);
      const share = inv.totalMinor === 0n ? 0n : due - (outside * due) / inv.totalMinor;
      if (share > 0n) {
        await creditWallet(engine(), {
          billingAccountId: inv.billingAccountId, amountMicros: minorToMicros(share, inv.currency), idempotencyKey: `${key}:wallet`,
          actor: 'billing:collection', sourceRef: `invoice:${inv.id}`, kind: 'payment', details: { invoice: inv.number, paymentRef: r.paymentRef },
        });
      }
      const after = await recordInvoicePayment(deps.db, inv.id, due);
      return { settled: outstandingMinor(after) === 0n };
    },

    async invoiceStatus(input: { invoiceId: string }): Promise<{ settled: boolean; status: string }> {
      const inv = (await findInvoice(deps.db, input.invoiceId))!;
      return { settled: outstandingMinor(inv) === 0n, status: inv.status };
    },

    async invoiceDunningPolicy(): Promise<DunningTimetable> {
      const p = await deps.db('dunning_policies').where({ id: 'default' }).first();
      return {
        reminderDays: p.reminder_days, lateFeeMinor: Number(p.late_fee_minor), lateFeeAfterDays: p.late_fee_after_days,
        suspendAfterDays: p.suspend_after_days, terminateAfterDays: p.terminate_after_days,
      };
    },

    async invoiceRemind(input: { invoiceId: string; day: number; final: boolean }): Promise<void> {
      const inv = (await findInvoice(deps.db, input.invoiceId))!;
      await publishEvents(deps.db, [{
        key: `invoice-reminder:${inv.id}:${input.day}`, type: input.final ? 'suspension_warning' : 'payment_failed', billingAccountId: inv.billingAccountId,
        payload: { invoiceId: inv.id, number: inv.number, amountMinor: outstandingMinor(inv).toString(), currency: inv.currency, day: input.day, graceDays: 0 },
      }]);
    },

    /** The late fee on the next invoice, debited from the wallet (past the credit limit: owed in receivables). */
    async invoiceLateFee(input: { invoiceId: string; amountMinor: number; asOf: string }): Promise<void> {
      const inv = (await findInvoice(deps.db, input.invoiceId))!;
      await addInvoiceCharge({ db: deps.db, engine: engine() }, {
        billingAccountId: inv.billingAccountId, asOf: input.asOf, kind: 'late_fee', description: `Late payment fee for invoice ${inv.number}`,
        amountMinor: BigInt(input.amountMinor), sourceRef: `late-fee:${inv.id}`, actor: 'billing:dunning',
      });
    },

    async invoiceSuspendLines(input: { invoiceId: string }): Promise<number> {
      let n = 0;
      for (const id of await linesOf(input.invoiceId, ['active'])) if ((await lifecycle.suspendForNonPayment(id)) === 'done') n++;
      return n;
    },

    async invoiceResumeLines(input: { invoiceId: string }): Promise<number> {
      let n = 0;
      for (const id of await linesOf(input.invoiceId, ['suspended'])) if ((await lifecycle.resumeAfterPayment(id)) === 'done') n++;
      return n;
    },

    async invoiceTerminateLines(input: { invoiceId: string }): Promise<number> {
      let n = 0;
      for (const id of await linesOf(input.invoiceId, ['active', 'suspended'])) if ((await lifecycle.terminateForNonPayment(id)) === 'done') n++;
      return n;
    },

    /** Consumes a batch of final-bill requests; an account whose last line ended gets its open invoice
     * closed at the cycle date, so `billingRunIssueDue` issues it next. */
    async billingRunFinalBills(input: { cycleDate: string; limit: number }): Promise<FinalBillBatch> {
      return consumeFinalBillRequests(deps.db, input);
    },

    /** Issues the open invoices whose period ended (a batch). The ids returned are only this attempt's:
     * a retry after the issues committed returns none, so the run starts the workflows from
     * `billingRunStartInvoices` (runs before the patch `invoice-workflows-by-date` started them from here). */
    async billingRunIssueDue(input: { cycleDate: string; limit: number; afterId?: string }): Promise<string[]> {
      const ids = await invoicesDue(deps.db, input.cycleDate, input.limit, input.afterId);
      for (const id of ids) await issueInvoice(deps.db, id, { asOf: input.cycleDate });
      return ids;
    },

    /** Starts `invoice:<id>` for a batch of the invoices issued for the run's date (keyset by id), with
     * the fixed workflow id: one already started (or finished) is success, so a retry or a rerun starts
     * none twice. Started here with the worker's client rather than as children of the run, so a run
     * that issues a million invoices does not carry a million child starts in its history. */
    async billingRunStartInvoices(input: { cycleDate: string; limit: number; afterId: string; dunningDayMs?: number }): Promise<{ scanned: number; started: number; lastId: string | null }> {
      const ids = await invoicesIssuedOn(deps.db, input.cycleDate, input.limit, input.afterId);
      const { client } = Context.current();
      const { taskQueue } = Context.current().info;
      let started = 0;
      for (let i = 0; i < ids.length; i += 20) {
        const outcomes = await Promise.all(ids.slice(i, i + 20).map(async (invoiceId) => {
          try {
            await client.workflow.start<typeof invoiceWorkflow>('invoiceWorkflow', {
              workflowId: invoiceWorkflowId(invoiceId), taskQueue, workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
              args: [{ invoiceId, asOf: input.cycleDate, ...(input.dunningDayMs ? { dayMs: input.dunningDayMs } : {}) }],
            });
            return true;
          } catch (err) {
            if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
            throw err;
          }
        }));
        started += outcomes.filter(Boolean).length;
        Context.current().heartbeat(i);
      }
      return { scanned: ids.length, started, lastId: ids.length ? ids[ids.length - 1] : null };
    },
  };
}

export type InvoiceActivities = ReturnType<typeof createInvoiceActivities>;
