import {
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  isCancellation,
  log,
  proxyLocalActivities,
  setHandler,
} from '@temporalio/workflow';
import type { EsimActivities } from '../activities/esim.activities';
import {
  downloadProgressSignal,
  esimOrderActivationCodeUpdate,
  esimOrderSnapshotQuery,
  ESIM_ORDER_CANCELLED,
  type EsimOrderInput,
  type EsimOrderSnapshot,
} from './esim-order.messages';

const DEFAULT_DOWNLOAD_TIMEOUT_MS = 7 * 24 * 3600 * 1000;
// SGP.22 notification points (see domain/sims/es2plus.types.ts).
const POINT_DOWNLOAD = 3;
const POINT_INSTALL = 4;
const POINT_ENABLED = 6;

/**
 * eSIM provisioning with the SM-DP+ (GSMA SGP.22 ES2+), one workflow per order, id
 * `esim-order:<order id>`: downloadOrder → confirmOrder (with the EID when known, released at once)
 * → the activation code for the storefront → HandleDownloadProgressInfo notifications (signals from
 * the API) until the profile is enabled → the line is told (signal). A failure or timeout at any step,
 * or a cancellation (the line was terminated while pending), runs the compensations pushed so far in
 * reverse (cancelOrder at the SM-DP+) and tells the line, which gives its inventory back. Every ES2+
 * call reuses `<order id>:<function>` as its functionCallIdentifier, so a retried call never places a
 * second order. The line's activities record the order and start this workflow, with its search
 * attributes and memo (activities/esim.activities.ts `startEsimOrderWorkflow`); the line is told from
 * the activity that records the outcome.
 */
export async function esimOrderWorkflow(input: EsimOrderInput): Promise<EsimOrderSnapshot> {
  const opts = input.options ?? {};
  // Local activities: each ES2+ call and record is a short request, run by the worker that runs the
  // workflow (a marker in the history, no task round trip through the server); retries beyond a few
  // seconds become durable timers.
  const es2 = proxyLocalActivities<EsimActivities>({
    startToCloseTimeout: '30 seconds',
    localRetryThreshold: '5 seconds',
    retry: {
      initialInterval: opts.es2InitialIntervalMs ?? 1000,
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: opts.es2MaxAttempts ?? 8,
      nonRetryableErrorTypes: ['ES2PLUS_REFUSED', 'ES2PLUS_NOT_CONFIGURED'],
    },
  });
  const record = proxyLocalActivities<EsimActivities>({ startToCloseTimeout: '30 seconds', localRetryThreshold: '5 seconds', retry: { initialInterval: '1 second', maximumInterval: '1 minute' } });

  const snapshot: EsimOrderSnapshot = {
    orderId: input.orderId,
    subscriberId: input.subscriberId,
    purpose: input.purpose,
    iccid: input.iccid,
    eid: input.eid,
    status: 'ordering',
    compensations: [],
    notifications: [],
  };
  let outcome: { ok: true } | { ok: false; code: string; message: string } | undefined;
  let downloaded = false;
  let installed = false;
  const seen = new Set<string>();

  setHandler(esimOrderSnapshotQuery, () => snapshot);
  setHandler(esimOrderActivationCodeUpdate, async () => {
    await condition(() => snapshot.activationCode !== undefined || snapshot.status === 'failed');
    return snapshot;
  });
  setHandler(downloadProgressSignal, (n) => {
    // The SM-DP+ retries a notification with the same functionCallIdentifier: apply it once.
    if (seen.has(n.functionCallIdentifier)) return;
    seen.add(n.functionCallIdentifier);
    snapshot.notifications.push({ id: n.functionCallIdentifier, point: n.notificationPointId, status: n.status, at: n.timestamp });
    if (n.eid) snapshot.eid = n.eid;
    if (outcome || snapshot.status === 'failed' || snapshot.status === 'completed') return;
    if (n.status === 'Failed' || n.status === 'Expired') {
      const code = n.subjectCode && n.reasonCode ? `${n.subjectCode}/${n.reasonCode}` : n.status;
      outcome = { ok: false, code: `DOWNLOAD_FAILED:${code}`, message: `the device reported a failure at notification point ${n.notificationPointId}: ${n.message ?? code}` };
      return;
    }
    if (n.notificationPointId === POINT_DOWNLOAD) {
      downloaded = true;
      snapshot.status = 'downloaded';
    } else if (n.notificationPointId === POINT_INSTALL) {
      downloaded = installed = true;
      snapshot.status = 'installed';
    } else if (n.notificationPointId === POINT_ENABLED) {
      downloaded = installed = true;
      outcome = { ok: true };
    }
  });

  const compensations: { name: string; run: () => Promise<void> }[] = [];
  let step = 'downloadOrder';
  try {
    // The SM-DP+ steps run to their end even when the order is cancelled meanwhile: a cancelled call
    // could still have placed the order, and only a finished call tells what to compensate.
    await CancellationScope.nonCancellable(async () => {
      await es2.es2DownloadOrder({ orderId: input.orderId, iccid: input.iccid, eid: input.eid });
      compensations.push({
        name: 'cancelOrder',
        run: async () => {
          const r = await es2.es2CancelOrder({ orderId: input.orderId, iccid: input.iccid, eid: snapshot.eid });
          if (!r.cancelled) throw ApplicationFailure.nonRetryable(`cancelOrder refused: ${r.code ?? ''}`, 'ES2PLUS_REFUSED');
        },
      });
      step = 'confirmOrder';
      snapshot.status = 'confirming';
      const c = await es2.es2ConfirmOrder({ orderId: input.orderId, iccid: input.iccid, eid: input.eid });
      snapshot.matchingId = c.matchingId;
      snapshot.smdpAddress = c.smdpAddress;
      snapshot.activationCode = c.activationCode;
      if (c.eid) snapshot.eid = c.eid;
      if (snapshot.status === 'confirming') snapshot.status = 'awaiting_download';
    });
    step = 'download';
    // Cancellable: a cancellation while waiting for the device rejects here.
    const arrived = await condition(() => outcome !== undefined, opts.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS);
    if (!arrived) {
      // Installed but the enable notification never came: the profile is on the device; take it.
      if (installed) outcome = { ok: true };
      else outcome = { ok: false, code: 'DOWNLOAD_TIMEOUT', message: downloaded ? 'the profile was downloaded but not installed in time' : 'the device did not download the profile in time' };
    }
    if (!outcome!.ok) throw ApplicationFailure.nonRetryable(outcome!.message, outcome!.code);
    step = 'complete';
    // Records the order as completed and signals the line, in one local activity (no extra task).
    await CancellationScope.nonCancellable(() => record.completeEsimOrder({
      orderId: input.orderId, eid: snapshot.eid, line: { subscriberId: input.subscriberId, purpose: input.purpose, iccid: input.iccid },
    }));
    snapshot.status = 'completed';
  } catch (err) {
    const failure = isCancellation(err)
      ? { code: ESIM_ORDER_CANCELLED, message: 'the order was cancelled (the line was terminated)' }
      : describe(err);
    snapshot.failure = { step, code: failure.code, message: failure.message };
    log.warn('eSIM order failed; compensating', { step, code: failure.code });
    await CancellationScope.nonCancellable(async () => {
      // Compensate in reverse. A profile the SM-DP+ will not take back may be on a device: its SIM is
      // retired rather than sold again.
      let simDisposition: 'available' | 'retired' = 'available';
      for (const c of compensations.reverse()) {
        try {
          await c.run();
          snapshot.compensations.push(c.name);
        } catch (cErr) {
          simDisposition = 'retired';
          snapshot.compensations.push(`${c.name}:failed`);
          log.error('compensation failed', { name: c.name, err: describe(cErr).message });
        }
      }
      // Records the failure and signals the line, which gives its inventory back.
      await record.failEsimOrder({
        orderId: input.orderId, code: failure.code, message: failure.message,
        line: { subscriberId: input.subscriberId, purpose: input.purpose, simDisposition },
      });
    });
    snapshot.status = 'failed';
  }
  // A cancelled order ends like any failed one: with its snapshot (the wait is not cancelled again).
  await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  return snapshot;
}

function describe(err: unknown): { code: string; message: string } {
  let e: unknown = err;
  while (e && typeof e === 'object' && 'cause' in e && (e as { cause?: unknown }).cause && !(e instanceof ApplicationFailure && e.type)) e = (e as { cause?: unknown }).cause;
  if (e instanceof ApplicationFailure) return { code: e.type ?? 'FAILED', message: e.message };
  return { code: 'FAILED', message: err instanceof Error ? err.message : String(err) };
}
