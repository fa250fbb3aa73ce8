/** SMS and e-mail texts per notification event, pure. Amounts arrive in minor units with a currency. */
import type { NotificationEventType } from './notifications.repository';

export interface RenderedMessage {
  subject: string;
  body: string;
}

const money = (minor: unknown, currency: unknown) => {
  const n = BigInt(String(minor ?? 0));
  const sign = n < 0n ? '-' : '';
  const abs = n < 0n ? -n : n;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')} ${String(currency ?? '')}`.trim();
};

const TEMPLATES: Record<NotificationEventType, (p: Record<string, unknown>) => RenderedMessage> = {
  usage_alert: (p) => ({
    subject: `You have used ${p.thresholdPercent} % of your ${p.service} allowance`,
    body: `You have used ${p.thresholdPercent} % of your ${p.service} allowance for this period.${Number(p.thresholdPercent) >= 100 ? ' Further use is charged from your balance.' : ''}`,
  }),
  low_balance: (p) => ({ subject: 'Your balance is low', body: `Your balance is ${money(p.balanceMinor, p.currency)}. Top up to keep using your line.` }),
  top_up_completed: (p) => ({ subject: 'Top-up received', body: `Thank you: ${money(p.amountMinor, p.currency)} has been added to your balance.` }),
  invoice_issued: (p) => ({ subject: `Invoice ${p.number}`, body: `Your invoice ${p.number} of ${money(p.totalMinor, p.currency)} is due on ${p.dueOn}.` }),
  payment_failed: (p) => ({ subject: 'Payment failed', body: `We could not take your payment of ${money(p.amountMinor, p.currency)}${p.errorCode ? ` (${p.errorCode})` : ''}. Please check your payment method.` }),
  suspension_warning: (p) => ({ subject: 'Your line will be suspended', body: `We could not renew your plan. Top up within ${p.graceDays} days to avoid suspension.` }),
  subscriber_suspended: () => ({ subject: 'Your line is suspended', body: 'Your line is suspended for non-payment. Pay or top up to reactivate it.' }),
  subscriber_resumed: () => ({ subject: 'Your line is active again', body: 'Thank you: your line is active again.' }),
};

export function renderNotification(type: NotificationEventType, payload: Record<string, unknown>): RenderedMessage {
  return TEMPLATES[type](payload);
}
