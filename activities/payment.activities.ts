/** Activities of top-ups and vouchers: the gateway capture and refund, the wallet credit through the
 * charging engine, and the top-up record. Idempotent on the top-up's key (gateway idempotency keys
 * `top-up:<key>:capture` / `:refund`, ledger key `top-up:<key>`). */
import { ApplicationFailure } from '@temporalio/activity';
import type { Knex } from 'knex';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { processPaymentGateway, type PaymentGateway } from '../domain/payments';
import { findPaymentMethod, findTopUp, recordPayment, updateTopUp, type TopUp } from '../domain/payments/top-ups.repository';
import { creditWallet } from '../domain/ledger/wallet-operations';
import { minorToMicros } from '../domain/ledger/money';
import { DomainError } from '../domain/shared/domain-error';
import { publishEvents } from '../domain/notifications/notifications.repository';
import type { Logger } from '../platform/logger';
import { engineFor } from './billing.activities';
import { openAutoTopUp } from '../domain/payments/auto-top-up.repository';

export interface PaymentActivityDeps {
  db: Knex;
  logger: Logger;
  chargingEngine?: ChargingEngine;
  paymentGateway?: PaymentGateway;
}

export type CaptureOutcome =
  | { status: 'succeeded'; paymentRef: string }
  | { status: 'declined' | 'requires_action' | 'failed'; paymentRef: string | null; code: string; message: string };

export function createPaymentActivities(deps: PaymentActivityDeps) {
  const engine = engineFor(deps);
  let gateway = deps.paymentGateway;
  const gw = () => (gateway ??= processPaymentGateway());

  async function topUp(key: string): Promise<TopUp> {
    const t = await findTopUp(deps.db, key);
    if (!t) throw ApplicationFailure.nonRetryable(`no top-up with key ${key}`, 'TOP_UP_NOT_FOUND');
    return t;
  }

  return {
    async topUpCapture(key: string): Promise<CaptureOutcome> {
      const t = await topUp(key);
      if (t.paymentRef && t.status !== 'pending') return { status: 'succeeded', paymentRef: t.paymentRef };
      const method = await findPaymentMethod(deps.db, { billingAccountId: t.billingAccountId });
      const methodRef = t.paymentMethodRef ?? method?.paymentMethodRef;
      if (!method || !methodRef) {
        await updateTopUp(deps.db, key, { status: 'failed', errorCode: 'NO_PAYMENT_METHOD', errorMessage: 'the account has no saved payment method' });
        return { status: 'failed', paymentRef: null, code: 'NO_PAYMENT_METHOD', message: 'the account has no saved payment method' };
      }
      try {
        const r = await gw().capturePayment({
          amountMinor: t.amountMinor, currency: t.currency, customerRef: method.customerRef, paymentMethodRef: methodRef,
          idempotencyKey: `top-up:${key}:capture`, description: 'Balance top-up', metadata: { top_up_key: key, billing_account_id: t.billingAccountId },
        });
        await recordPayment(deps.db, {
          gateway: gw().name, paymentRef: r.paymentRef, billingAccountId: t.billingAccountId, purpose: 'top_up', purposeRef: key,
          amountMinor: t.amountMinor, currency: t.currency, status: r.status,
        });
        if (r.status === 'succeeded') {
          await updateTopUp(deps.db, key, { status: 'captured', paymentRef: r.paymentRef });
          return { status: 'succeeded', paymentRef: r.paymentRef };
        }
        const code = r.status === 'declined' ? 'PAYMENT_DECLINED' : r.status === 'requires_action' ? 'PAYMENT_REQUIRES_ACTION' : 'PAYMENT_FAILED';
        const message = r.message ?? (r.status === 'declined' ? 'the card was declined' : 'the payment did not go through');
        await updateTopUp(deps.db, key, { status: r.status === 'declined' ? 'declined' : 'failed', paymentRef: r.paymentRef, errorCode: r.declineCode ?? code, errorMessage: message });
        return { status: r.status, paymentRef: r.paymentRef, code, message };
      } catch (err) {
        if (err instanceof Error && 'retryable' in err && (err as { retryable: boolean }).retryable === false) {
          await updateTopUp(deps.db, key, { status: 'failed', errorCode: 'PAYMENT_ERROR', errorMessage: err.message });
          throw ApplicationFailure.nonRetryable(err.message, 'PAYMENT_ERROR');
        }
        throw err;
      }
    },

    async topUpCredit(key: string): Promise<{ journalEntryId: string | null; balanceMicros: string }> {
      const t = await topUp(key);
      try {
        const r = await creditWallet(engine(), {
          billingAccountId: t.billingAccountId, amountMicros: minorToMicros(t.amountMinor, t.currency), idempotencyKey: `top-up:${key}`,
          actor: `top-up:${t.source}`, sourceRef: `top-up:${key}`, kind: 'top_up', details: { paymentRef: t.paymentRef },
        });
        await updateTopUp(deps.db, key, { status: 'credited', journalEntryId: r.journalEntryId });
        return { journalEntryId: r.journalEntryId, balanceMicros: r.balanceMicros.toString() };
      } catch (err) {
        if (err instanceof DomainError) throw ApplicationFailure.nonRetryable(err.message, err.code);
        throw err;
      }
    },

    async topUpRefund(input: { key: string; reason: string }): Promise<void> {
      const t = await topUp(input.key);
      if (!t.paymentRef) return;
      const r = await gw().refundPayment({ paymentRef: t.paymentRef, idempotencyKey: `top-up:${input.key}:refund`, reason: 'requested_by_customer' });
      await updateTopUp(deps.db, input.key, { status: 'refunded', refundRef: r.refundRef, errorCode: 'CREDIT_FAILED', errorMessage: input.reason });
    },

    /** Opens one attempt of an auto top-up; false when it should stop (switched off, balance back up). */
    async autoTopUpOpen(input: { billingAccountId: string; key: string }): Promise<boolean> {
      return (await openAutoTopUp(deps.db, input)) !== null;
    },

    async topUpAccount(key: string): Promise<{ billingAccountId: string }> {
      return { billingAccountId: (await topUp(key)).billingAccountId };
    },

    async topUpNotify(input: { key: string; outcome: 'completed' | 'failed' }): Promise<void> {
      const t = await topUp(input.key);
      await publishEvents(deps.db, [{
        key: `top-up:${input.key}:${input.outcome}`, type: input.outcome === 'completed' ? 'top_up_completed' : 'payment_failed',
        billingAccountId: t.billingAccountId,
        payload: { topUpKey: input.key, amountMinor: t.amountMinor.toString(), currency: t.currency, status: t.status, errorCode: t.errorCode },
      }]);
    },
  };
}

export type PaymentActivities = ReturnType<typeof createPaymentActivities>;
