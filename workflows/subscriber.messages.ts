import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SubscriberState, SuspendReason } from '../domain/subscribers/subscriber-lifecycle';

/** Messages of the subscriber lifecycle workflow, shared by the workflow, the API and tests. */
export const subscriberWorkflowId = (subscriberId: string) => `subscriber:${subscriberId}`;

export type SimForm = 'physical' | 'esim';

export interface SubscriberWorkflowInput {
  subscriberId: string;
  billingAccountId: string;
  /** A chosen number; the first free one of the pool when omitted. */
  msisdn?: string;
  planCode: string;
  /** A chosen SIM (physical or eSIM). */
  iccid?: string;
  /** 'esim': an eSIM profile is reserved (unless an ICCID is chosen) and ordered from the SM-DP+
   * (`esim-order:<subscriberId>`); the line activates when the device has enabled it. */
  simForm?: SimForm;
  /** The device's EID when known (ES2+ confirmOrder). */
  eid?: string;
  actor: string;
  /** Overrides for the eSIM order (tests, demos). */
  esimOrder?: EsimOrderOptions;
}

export interface EsimOrderOptions {
  /** How long to wait for the device to download and enable the profile. Default 7 days. */
  downloadTimeoutMs?: number;
  /** Attempts per ES2+ call (same functionCallIdentifier each time). Default 8. */
  es2MaxAttempts?: number;
  /** First retry interval of an ES2+ call. Default 1000 ms. */
  es2InitialIntervalMs?: number;
}

export interface LifecycleHistoryItem {
  at: string;
  action: string;
  from: SubscriberState | null;
  to: SubscriberState;
  actor: string;
  reason?: string;
  details?: Record<string, string | number | boolean | null>;
}

/** Plain JSON only: it is carried through continue-as-new. */
export interface SubscriberSnapshot {
  subscriberId: string;
  billingAccountId: string;
  msisdn: string;
  planCode: string;
  iccid?: string;
  simForm?: SimForm;
  state: SubscriberState | 'rejected';
  suspendReason?: SuspendReason;
  rejection?: { code: string; message: string };
  /** Operations so far (transition ids are `subscriber:<id>:<seq>`). */
  seq?: number;
  /** The eSIM order of the activation, when there is one. */
  esimOrderId?: string;
  scheduledPlanChange?: { planCode: string; effectiveAt: string };
  pendingSimSwap?: { orderId: string; simId: string; iccid: string; holder: string; transitionId: string };
  finalBillRequested?: boolean;
  /** The most recent transitions (the billing record keeps them all). */
  history: LifecycleHistoryItem[];
}

export interface ChangePlanRequest {
  actor: string;
  planCode: string;
  when: 'now' | 'end_of_cycle';
}
export interface TransferRequest {
  actor: string;
  billingAccountId: string;
}
export interface SimSwapRequest {
  actor: string;
  form: SimForm;
  /** The new SIM; for an eSIM the first free profile when omitted. */
  iccid?: string;
  eid?: string;
}

export interface EsimOrderOutcome {
  orderId: string;
  purpose: 'activation' | 'swap';
  iccid: string;
  eid?: string;
}
export interface EsimOrderFailure {
  orderId: string;
  purpose: 'activation' | 'swap';
  code: string;
  message: string;
  /** What becomes of the SIM: back to the pool when the SM-DP+ cancelled the order, retired when the
   * profile may be on a device. */
  simDisposition: 'available' | 'retired';
}

export const subscriberSnapshotQuery = defineQuery<SubscriberSnapshot>('subscriberSnapshot');
/** Resolves once the line is written to the billing record (or refused there). Used with update-with-start. */
export const subscriberRegisteredUpdate = defineUpdate<SubscriberSnapshot>('subscriberRegistered');
export const subscriberActivateUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberActivate');
export const subscriberSuspendUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string; reason: SuspendReason }]>('subscriberSuspend');
export const subscriberResumeUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberResume');
export const subscriberTerminateUpdate = defineUpdate<SubscriberSnapshot, [{ actor: string }]>('subscriberTerminate');
export const subscriberChangePlanUpdate = defineUpdate<SubscriberSnapshot, [ChangePlanRequest]>('subscriberChangePlan');
export const subscriberTransferUpdate = defineUpdate<SubscriberSnapshot, [TransferRequest]>('subscriberTransfer');
export const subscriberSimSwapUpdate = defineUpdate<SubscriberSnapshot, [SimSwapRequest]>('subscriberSimSwap');
/** From `esim-order:<id>`: the device has the profile enabled / the order failed and was compensated. */
export const esimOrderCompletedSignal = defineSignal<[EsimOrderOutcome]>('esimOrderCompleted');
export const esimOrderFailedSignal = defineSignal<[EsimOrderFailure]>('esimOrderFailed');
