import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { EsimOrderOptions } from './subscriber.messages';

/** Messages of the eSIM provisioning workflow `esim-order:<order id>`. */
export const esimOrderWorkflowId = (orderId: string) => `esim-order:${orderId}`;

/** The failure code of an order cancelled by its line (terminated while the order was in flight). */
export const ESIM_ORDER_CANCELLED = 'CANCELLED';

export interface EsimOrderInput {
  orderId: string;
  subscriberId: string;
  purpose: 'activation' | 'swap';
  simId: string;
  iccid: string;
  eid?: string;
  actor: string;
  options?: EsimOrderOptions;
}

export type EsimOrderStatus = 'ordering' | 'confirming' | 'awaiting_download' | 'downloaded' | 'installed' | 'completed' | 'failed';

/** One HandleDownloadProgressInfo, as the API passes it on. */
export interface DownloadProgressEvent {
  functionCallIdentifier: string;
  notificationPointId: number;
  status: 'Executed-Success' | 'Executed-WithWarning' | 'Failed' | 'Expired';
  timestamp: string;
  eid?: string;
  subjectCode?: string;
  reasonCode?: string;
  message?: string;
}

export interface EsimOrderSnapshot {
  orderId: string;
  subscriberId: string;
  purpose: 'activation' | 'swap';
  iccid: string;
  eid?: string;
  status: EsimOrderStatus;
  matchingId?: string;
  smdpAddress?: string;
  /** `LPA:1$<smdp address>$<matching id>`; the storefront shows it (and its QR code). */
  activationCode?: string;
  failure?: { step: string; code: string; message: string };
  compensations: string[];
  notifications: { id: string; point: number; status: string; at: string }[];
}

export const esimOrderSnapshotQuery = defineQuery<EsimOrderSnapshot>('esimOrderSnapshot');
/** Resolves when the activation code is ready, or the order has failed. */
export const esimOrderActivationCodeUpdate = defineUpdate<EsimOrderSnapshot>('esimOrderActivationCode');
export const downloadProgressSignal = defineSignal<[DownloadProgressEvent]>('downloadProgress');
