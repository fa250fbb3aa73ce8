import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { SubscriberState, SuspendReason } from '../domain/subscribers/subscriber-lifecycle';

/** Messages of the subscriber lifecycle workflow, shared by the workflow, the API and tests. */
export const subscriberWorkflowId = (subscriberId: string) => `subscriber:${subscriberId}`;

export interface SubscriberWorkflowInput {
  subscriberId: string;
  billingAccountId: string;
  msisdn: string;
  planCode: string;
  iccid?: string;
  actor: string;
}

export interface LifecycleHistoryItem {
  at: string;
  action: string;
  from: SubscriberState | null;
  to: SubscriberState;
  actor: string;
  reason?: string;
}

/** Plain JSON only: it is carried through continue-as-new. */
export interface SubscriberSnapshot {
  subscriberId: string;
  billingAccountId: string;
  msisdn: string;
  planCode: string;
  iccid?: string;
  state: SubscriberState | 'rejected';
  suspendReason?: SuspendReason;
  rejection?: { code: string; message: string };
  history: LifecycleHistoryItem[];
}

export const subscriberSnapshotQuery = defineQuery<SubscriberSnapshot>('subscriberSnapshot');
/** Resolves once the line is written to the billing record (or refused there). Used with update-with-start. */
export const subscriberRegisteredUpdate = defineUpdate<SubscriberSnapshot>('subscriberRegistered');
export const subscriberActivateUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberActivate');
export const subscriberSuspendUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string; reason: SuspendReason }]>('subscriberSuspend');
export const subscriberResumeUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberResume');
export const subscriberTerminateUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberTerminate');
