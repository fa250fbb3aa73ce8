/**
 * Sends ES2+.HandleDownloadProgressInfo notifications to the Operator's endpoint, in order per
 * ICCID, retrying (same functionCallIdentifier, exponential backoff) while the Operator is down or
 * answers 5xx. Any 2xx counts as delivered. Honours the notification faults (delay, drop).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { randomUUID } from 'node:crypto';
import {
  ES2PLUS_ADMIN_PROTOCOL,
  ES2PLUS_ADMIN_PROTOCOL_HEADER,
  type Es2PlusStatusCodeData,
  type HandleDownloadProgressInfoWire,
} from '../../domain/sims/es2plus.types';
import type { FaultBook } from './faults';

export type NotificationOutcome = 'pending' | 'delivered' | 'dropped' | 'failed' | 'skipped';

export interface NotificationRecord {
  seq: number;
  iccid: string;
  notificationPointId: number;
  status: string;
  functionCallIdentifier: string;
  outcome: NotificationOutcome;
  attempts: number;
  lastError?: string;
  /** HTTP status of the last attempt. */
  httpStatus?: number;
  body: HandleDownloadProgressInfoWire;
}

export interface NotifierOptions {
  getUrl: () => string | undefined;
  functionRequesterIdentifier: string;
  faults: FaultBook;
  /** Attempts in all (first + retries). Default 5. */
  attempts?: number;
  /** First retry delay; doubles each time up to maxBackoffMs. Default 200 ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-attempt HTTP deadline. Default 5000 ms. */
  requestTimeoutMs?: number;
  signal: AbortSignal;
  log: (event: Record<string, unknown>) => void;
}

export interface NotificationInput {
  iccid: string;
  eid?: string;
  profileType: string;
  notificationPointId: number;
  status: 'Executed-Success' | 'Executed-WithWarning' | 'Failed' | 'Expired';
  statusCodeData?: Es2PlusStatusCodeData;
  resultData?: string;
}

/** W3C date-time without fractions, as in the SGP.22 examples (2001-12-17T09:30:47Z). */
export function w3cTimestamp(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export class Notifier {
  readonly records: NotificationRecord[] = [];
  private seq = 0;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly all = new Set<Promise<void>>();
  // Connections to the Operator are kept open between notifications, as an SM-DP+ under load does
  // (a new TCP connection per notification costs both sides more than the request).
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

  constructor(private readonly opts: NotifierOptions) {}

  /** Closes the kept connections (after drain). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  enqueue(input: NotificationInput): NotificationRecord {
    const functionCallIdentifier = randomUUID();
    const body: HandleDownloadProgressInfoWire = {
      header: { functionRequesterIdentifier: this.opts.functionRequesterIdentifier, functionCallIdentifier },
      ...(input.eid !== undefined ? { eid: input.eid } : {}),
      iccid: input.iccid,
      profileType: input.profileType,
      timestamp: w3cTimestamp(),
      notificationPointId: input.notificationPointId,
      notificationPointStatus: { status: input.status, ...(input.statusCodeData ? { statusCodeData: input.statusCodeData } : {}) },
      ...(input.resultData !== undefined ? { resultData: input.resultData } : {}),
    };
    const record: NotificationRecord = {
      seq: ++this.seq,
      iccid: input.iccid,
      notificationPointId: input.notificationPointId,
      status: input.status,
      functionCallIdentifier,
      outcome: 'pending',
      attempts: 0,
      body,
    };
    this.records.push(record);
    const previous = this.chains.get(input.iccid) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(record)).catch((e: unknown) => {
      record.outcome = 'failed';
      record.lastError = String(e);
    });
    this.chains.set(input.iccid, next);
    this.all.add(next);
    void next.finally(() => {
      this.all.delete(next);
      if (this.chains.get(input.iccid) === next) this.chains.delete(input.iccid);
    });
    return record;
  }

  /** Resolves when every notification queued so far is delivered, dropped or given up. */
  async drain(): Promise<void> {
    while (this.all.size > 0) await Promise.all([...this.all]);
  }

  private async deliver(record: NotificationRecord): Promise<void> {
    const { faults, signal, log } = this.opts;
    if (faults.takeNotificationDrop(record.notificationPointId)) {
      record.outcome = 'dropped';
      log({ msg: 'notification dropped (fault)', iccid: record.iccid, notificationPointId: record.notificationPointId });
      return;
    }
    await sleep(faults.notificationDelayMs(), signal);
    const attempts = this.opts.attempts ?? 5;
    let backoff = this.opts.backoffMs ?? 200;
    const maxBackoff = this.opts.maxBackoffMs ?? 5000;
    const payload = JSON.stringify(record.body);
    for (let i = 0; i < attempts; i++) {
      if (signal.aborted) {
        record.outcome = 'failed';
        record.lastError = 'simulator closed';
        return;
      }
      const url = this.opts.getUrl();
      if (!url) {
        record.outcome = 'skipped';
        record.lastError = 'no notificationUrl configured';
        return;
      }
      record.attempts += 1;
      try {
        const status = await postJson(url, payload, this.opts.requestTimeoutMs ?? 5000, signal, this.agents);
        record.httpStatus = status;
        if (status >= 200 && status < 300) {
          record.outcome = 'delivered';
          delete record.lastError;
          log({ msg: 'notification delivered', iccid: record.iccid, notificationPointId: record.notificationPointId, status: record.status, attempts: record.attempts });
          return;
        }
        record.lastError = `HTTP ${status}`;
      } catch (e) {
        record.lastError = e instanceof Error ? e.message : String(e);
      }
      if (i < attempts - 1) {
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
    record.outcome = 'failed';
    log({ msg: 'notification not delivered', iccid: record.iccid, notificationPointId: record.notificationPointId, attempts: record.attempts, error: record.lastError });
  }
}

function postJson(url: string, payload: string, timeoutMs: number, signal: AbortSignal, agents: { http: http.Agent; https: https.Agent }): Promise<number> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const send = secure ? https.request : http.request;
  return new Promise<number>((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'POST',
        agent: secure ? agents.https : agents.http,
        signal,
        headers: {
          'Content-Type': 'application/json;charset=UTF-8',
          [ES2PLUS_ADMIN_PROTOCOL_HEADER]: ES2PLUS_ADMIN_PROTOCOL,
          'Content-Length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
