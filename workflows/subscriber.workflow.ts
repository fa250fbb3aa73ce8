import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { nextState, SUSPEND_REASONS, type LifecycleAction, type SubscriberState } from '../domain/subscribers/subscriber-lifecycle';
import type { SubscriberActivities } from '../activities/subscriber.activities';
import type { EsimActivities } from '../activities/esim.activities';
import {
  esimOrderCompletedSignal,
  esimOrderFailedSignal,
  subscriberActivateUpdate,
  subscriberChangePlanUpdate,
  subscriberRegisteredUpdate,
  subscriberResumeUpdate,
  subscriberSimSwapUpdate,
  subscriberSnapshotQuery,
  subscriberSuspendUpdate,
  subscriberTerminateUpdate,
  subscriberTransferUpdate,
  type EsimOrderFailure,
  type EsimOrderOutcome,
  type LifecycleHistoryItem,
  type SubscriberSnapshot,
  type SubscriberWorkflowInput,
} from './subscriber.messages';
import { esimOrderWorkflowId, type EsimOrderInput } from './esim-order.messages';
import { IccidKey, LifecycleStateKey, MsisdnKey, PlanCodeKey, SubscriberIdKey, BillingAccountIdKey } from './search-attributes';

// Local activities: short, idempotent writes to the billing record, run by the worker that runs the
// workflow (no task round trip through the server); retries beyond a few seconds become timers.
const billingRecord = proxyLocalActivities<SubscriberActivities & Pick<EsimActivities, 'startEsimOrder'>>({
  startToCloseTimeout: '30 seconds',
  localRetryThreshold: '5 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['BillingRecordRefusal'] },
});

const HISTORY_KEPT = 100;
/** How long a terminate waits for a cancelled eSIM order to report its compensation; without a report
 * the SIM is retired (its profile may be on a device). */
const ORDER_CANCEL_WAIT = '5 minutes';
/** Patch: a terminate cancels a pending eSIM swap's order and gives its SIM back first. */
const TERMINATE_CANCELS_PENDING_SWAP = 'terminate-cancels-pending-swap';
/** Patch: an operation woken from the queue looks again before it takes the line (`exclusive`). */
const EXCLUSIVE_RECHECKS = 'exclusive-rechecks';

/** An activity's business refusal becomes the update's refusal, with the domain code as its type. */
function refusalOf(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.cause.type ?? 'REFUSED', message: err.cause.message, nonRetryable: true, details: err.cause.details as unknown[] });
  }
  return err;
}

function refuse(code: string, message: string): never {
  throw ApplicationFailure.create({ type: code, message, nonRetryable: true });
}

/** One long-lived entity per line: pending → active ⇄ suspended → terminated, plus plan changes,
 * transfers and SIM swaps. Every operation is an update (validated first, so callers get a refusal
 * without touching history) that writes the billing record through an idempotent activity before the
 * state changes here; operations run one at a time. */
export async function subscriberWorkflow(input: SubscriberWorkflowInput, carried?: SubscriberSnapshot): Promise<SubscriberSnapshot> {
  const snapshot: SubscriberSnapshot = carried ?? {
    subscriberId: input.subscriberId,
    billingAccountId: input.billingAccountId,
    msisdn: input.msisdn ?? '',
    planCode: input.planCode,
    iccid: input.iccid,
    simForm: input.simForm ?? (input.iccid ? 'physical' : undefined),
    state: 'pending',
    seq: 0,
    history: [],
  };
  let registered = carried !== undefined;
  let busy = false;
  let scheduleVersion = 0;
  const workflowId = workflowInfo().workflowId;

  let publishedMemo: string | undefined;
  const publish = () => {
    upsertSearchAttributes([
      { key: SubscriberIdKey, value: snapshot.subscriberId },
      ...(snapshot.msisdn ? [{ key: MsisdnKey, value: snapshot.msisdn }] : []),
      { key: PlanCodeKey, value: snapshot.planCode },
      { key: LifecycleStateKey, value: snapshot.state },
      { key: BillingAccountIdKey, value: snapshot.billingAccountId },
      ...(snapshot.iccid ? [{ key: IccidKey, value: snapshot.iccid }] : []),
    ]);
    // The memo describes the line (the state is a search attribute); rewritten only when that changes,
    // as every upsert is one more visibility write on the server.
    const memo = { msisdn: snapshot.msisdn, iccid: snapshot.iccid ?? null, planCode: snapshot.planCode, billingAccountId: snapshot.billingAccountId, simForm: snapshot.simForm ?? null };
    const memoJson = JSON.stringify(memo);
    if (memoJson !== publishedMemo) {
      upsertMemo(memo);
      publishedMemo = memoJson;
    }
  };

  const nextTransitionId = () => {
    snapshot.seq = (snapshot.seq ?? snapshot.history.length) + 1;
    return `${workflowId}:${snapshot.seq}`;
  };

  const remember = (item: LifecycleHistoryItem) => {
    snapshot.history.push(item);
    if (snapshot.history.length > HISTORY_KEPT) snapshot.history.splice(0, snapshot.history.length - HISTORY_KEPT);
  };

  /** Runs one operation at a time; a refusal from the billing record fails the update cleanly.
   * Every waiter whose condition holds wakes in the same activation, and they resume one after
   * another: each must look again before it takes the line, or all of them would run together, each
   * starting from the same state (patched: histories from before it replay the old wake-up). */
  const exclusive = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (patched(EXCLUSIVE_RECHECKS)) {
      while (busy || !registered) await condition(() => !busy && registered);
    } else {
      await condition(() => !busy && registered);
    }
    busy = true;
    try {
      return await fn();
    } catch (err) {
      throw refusalOf(err);
    } finally {
      busy = false;
    }
  };

  const applyTransition = async (action: LifecycleAction, actor: string, reason?: string, extra: { eid?: string; simDisposition?: 'available' | 'retired' } = {}) => {
    const from = snapshot.state as SubscriberState;
    const to = nextState(from, action); // re-checked: an earlier update may have changed the state
    const at = await billingRecord.recordSubscriberTransition({
      subscriberId: snapshot.subscriberId, action, from, to, reason, actor, transitionId: nextTransitionId(), ...extra,
    });
    snapshot.state = to;
    snapshot.suspendReason = to === 'suspended' ? (reason as SubscriberSnapshot['suspendReason']) : undefined;
    if (to === 'terminated' && from !== 'pending') snapshot.finalBillRequested = true;
    if (to === 'terminated') snapshot.scheduledPlanChange = undefined;
    remember({ at, action, from, to, actor, reason, ...(extra.eid ? { details: { eid: extra.eid } } : {}) });
    publish();
    return snapshot;
  };
  // Checked again once the line is ours: an update queued behind another (a resume behind a terminate)
  // was validated on the state before it. A refusal fails the update; the plain error nextState
  // throws would fail the workflow task, retried forever, and the update would never answer.
  const transition = (action: LifecycleAction, actor: string, reason?: string, extra: { eid?: string; simDisposition?: 'available' | 'retired' } = {}) =>
    exclusive(() => {
      checkState(action);
      return applyTransition(action, actor, reason, extra);
    });

  const checkState = (action: LifecycleAction) => {
    if (snapshot.state === 'rejected') refuse('NOT_REGISTERED', 'this line was never registered');
    try {
      nextState(snapshot.state, action);
    } catch (err) {
      refuse('INVALID_STATE', (err as Error).message);
    }
  };
  const checkLive = (what: string) => {
    if (snapshot.state === 'rejected') refuse('NOT_REGISTERED', 'this line was never registered');
    if (snapshot.state !== 'active' && snapshot.state !== 'suspended') refuse('INVALID_STATE', `cannot ${what} a line that is ${snapshot.state} (allowed from: active, suspended)`);
  };

  /** Records the order and starts `esim-order:<id>` from a local activity rather than as a child: no
   * child events and tasks here, and the order outlives a continue-as-new of the line; it reports
   * back by signal. */
  const startEsimOrder = async (purpose: 'activation' | 'swap', orderId: string, sim: { simId: string; iccid: string }, eid: string | undefined, actor: string) => {
    const args: EsimOrderInput = { orderId, subscriberId: snapshot.subscriberId, purpose, simId: sim.simId, iccid: sim.iccid, eid, actor, options: input.esimOrder };
    await billingRecord.startEsimOrder(args);
  };

  // What the activation's eSIM order reported, and whether a terminate is waiting for it.
  let activationOrderReport: { ok: true; outcome: EsimOrderOutcome } | { ok: false; failure: EsimOrderFailure } | undefined;
  let cancellingActivationOrder = false;

  /** How an eSIM order ended, as far as where its SIM goes is concerned. */
  type OrderReport = { ok: true } | { ok: false; failure: EsimOrderFailure };

  /** Cancels an eSIM order that has not reported yet and waits for its report (it compensates at the
   * SM-DP+ first). Answers where the order's SIM goes: back to the pool if the order failed and says
   * so; retired if the device has the profile (the order completed first) or may have it (no report). */
  const cancelOrder = async (orderId: string, reportOf: () => OrderReport | undefined) => {
    if (!reportOf()) {
      try {
        await getExternalWorkflowHandle(esimOrderWorkflowId(orderId)).cancel();
      } catch (err) {
        // The order has ended: its report is in this history already or on its way.
        log.warn('eSIM order could not be cancelled', { orderId, err: String(err) });
      }
      await condition(() => reportOf() !== undefined, ORDER_CANCEL_WAIT);
    }
    const report = reportOf();
    return report && !report.ok ? report.failure.simDisposition : 'retired';
  };

  /** Terminating a line still pending on its eSIM order: the order is cancelled (it compensates at the
   * SM-DP+ and reports back), then the line is given up with the SIM where the order left it — back in
   * the pool, or retired when the profile may be on a device. */
  const terminatePendingWithOrder = async (actor: string, orderId: string) => {
    cancellingActivationOrder = true;
    try {
      const simDisposition = await cancelOrder(orderId, () => activationOrderReport);
      return await applyTransition('terminate', actor, undefined, { simDisposition });
    } finally {
      cancellingActivationOrder = false;
    }
  };

  // What the pending swap's order reported, kept for a terminate that cancels it (the report may come
  // in before the terminate gets its turn), and the order such a terminate is cancelling.
  let swapOrderReport: { orderId: string; report: OrderReport } | undefined;
  let cancellingSwapOrder: string | undefined;
  const swapReportOf = (orderId: string): OrderReport | undefined => (swapOrderReport?.orderId === orderId ? swapOrderReport.report : undefined);

  /** Terminating a line with an eSIM swap pending: the swap order is cancelled (it compensates at the
   * SM-DP+ and reports back), its SIM goes back to the pool — retired if the profile may be on a
   * device — and only then is the line terminated. Without this the order waited for a download that
   * would never count, and its SIM stayed reserved after the line was gone. */
  const cancelPendingSwap = async (swap: NonNullable<SubscriberSnapshot['pendingSimSwap']>, actor: string) => {
    cancellingSwapOrder = swap.orderId;
    try {
      const disposition = await cancelOrder(swap.orderId, () => swapReportOf(swap.orderId));
      await billingRecord.releaseReservedSim({ simId: swap.simId, holder: swap.holder, disposition });
      const state = snapshot.state as SubscriberState;
      snapshot.pendingSimSwap = undefined;
      remember({ at: new Date(Date.now()).toISOString(), action: 'sim_swap_cancelled', from: state, to: state, actor,
        details: { esimOrderId: swap.orderId, newIccid: swap.iccid, sim: disposition } });
    } finally {
      cancellingSwapOrder = undefined;
    }
  };

  setHandler(subscriberSnapshotQuery, () => snapshot);
  setHandler(subscriberRegisteredUpdate, async () => {
    await condition(() => registered || snapshot.state === 'rejected');
    return snapshot;
  });
  setHandler(subscriberActivateUpdate, ({ actor }) => transition('activate', actor), { validator: (_req) => checkState('activate') });
  setHandler(subscriberSuspendUpdate, ({ actor, reason }) => transition('suspend', actor, reason), {
    validator: ({ reason }) => {
      if (!(SUSPEND_REASONS as readonly string[]).includes(reason)) refuse('INVALID_REASON', `reason must be one of ${SUSPEND_REASONS.join(', ')}`);
      checkState('suspend');
    },
  });
  setHandler(subscriberResumeUpdate, ({ actor }) => transition('resume', actor), { validator: (_req) => checkState('resume') });
  setHandler(
    subscriberTerminateUpdate,
    ({ actor }) =>
      exclusive(async () => {
        if (snapshot.state === 'terminated') return snapshot; // given up meanwhile (its eSIM order failed)
        checkState('terminate'); // re-checked: an earlier update may have changed the state
        const orderId = snapshot.esimOrderId;
        if (snapshot.state === 'pending' && orderId) return terminatePendingWithOrder(actor, orderId);
        const swap = snapshot.pendingSimSwap;
        if (swap && patched(TERMINATE_CANCELS_PENDING_SWAP)) await cancelPendingSwap(swap, actor);
        return applyTransition('terminate', actor);
      }),
    { validator: (_req) => checkState('terminate') },
  );

  setHandler(
    subscriberChangePlanUpdate,
    (req) =>
      exclusive(async () => {
        checkLive('change the plan of');
        const transitionId = nextTransitionId();
        const r = await billingRecord.changeSubscriberPlan({
          transitionId, subscriberId: snapshot.subscriberId, planCode: req.planCode, when: req.when, actor: req.actor, at: new Date(Date.now()).toISOString(),
        });
        const state = snapshot.state as SubscriberState;
        if (req.when === 'now') {
          snapshot.planCode = r.toPlanCode;
          remember({ at: r.at, action: 'change_plan', from: state, to: state, actor: req.actor, details: { from: r.fromPlanCode, to: r.toPlanCode, netMinor: r.netMinor, currency: r.currency } });
        } else {
          snapshot.scheduledPlanChange = { planCode: r.toPlanCode, effectiveAt: r.effectiveAt };
          scheduleVersion++;
          remember({ at: r.at, action: 'schedule_plan_change', from: state, to: state, actor: req.actor, details: { to: r.toPlanCode, effectiveAt: r.effectiveAt } });
        }
        publish();
        return snapshot;
      }),
    {
      validator: (req) => {
        checkLive('change the plan of');
        if (req.when !== 'now' && req.when !== 'end_of_cycle') refuse('INVALID_INPUT', 'when must be now or end_of_cycle');
        if (!req.planCode) refuse('INVALID_INPUT', 'a plan code is required');
        if (req.planCode === snapshot.planCode) refuse('SAME_PLAN', 'the line is on this plan already');
      },
    },
  );

  setHandler(
    subscriberTransferUpdate,
    (req) =>
      exclusive(async () => {
        checkLive('transfer');
        const r = await billingRecord.transferSubscriber({ transitionId: nextTransitionId(), subscriberId: snapshot.subscriberId, toBillingAccountId: req.billingAccountId, actor: req.actor });
        const state = snapshot.state as SubscriberState;
        snapshot.billingAccountId = req.billingAccountId;
        remember({ at: r.at, action: 'transfer', from: state, to: state, actor: req.actor, details: { fromBillingAccountId: r.fromBillingAccountId, toBillingAccountId: req.billingAccountId, movedBuckets: r.movedBuckets } });
        publish();
        return snapshot;
      }),
    {
      validator: (req) => {
        checkLive('transfer');
        if (req.billingAccountId === snapshot.billingAccountId) refuse('SAME_ACCOUNT', 'the line is on this account already');
      },
    },
  );

  setHandler(
    subscriberSimSwapUpdate,
    (req) =>
      exclusive(async () => {
        checkLive('swap the SIM of');
        if (snapshot.pendingSimSwap) refuse('SWAP_IN_PROGRESS', 'an eSIM swap is in progress');
        const transitionId = nextTransitionId();
        const holder = `swap:${transitionId}`;
        const sim = await billingRecord.reserveSimForSwap({ holder, iccid: req.iccid, form: req.form });
        const state = snapshot.state as SubscriberState;
        if (sim.form === 'physical') {
          let r;
          try {
            r = await billingRecord.swapSubscriberSim({ transitionId, subscriberId: snapshot.subscriberId, newSimId: sim.simId, actor: req.actor });
          } catch (err) {
            await billingRecord.releaseReservedSim({ simId: sim.simId, holder, disposition: 'available' });
            throw err;
          }
          snapshot.iccid = r.newIccid;
          snapshot.simForm = 'physical';
          remember({ at: r.at, action: 'sim_swap', from: state, to: state, actor: req.actor, details: { oldIccid: r.oldIccid, newIccid: r.newIccid } });
        } else {
          // An eSIM swap completes when the device has the new profile: the old SIM works till then.
          const orderId = uuid4();
          snapshot.pendingSimSwap = { orderId, simId: sim.simId, iccid: sim.iccid, holder, transitionId };
          await startEsimOrder('swap', orderId, sim, req.eid, req.actor);
          remember({ at: new Date(Date.now()).toISOString(), action: 'sim_swap_ordered', from: state, to: state, actor: req.actor, details: { newIccid: sim.iccid, esimOrderId: orderId } });
        }
        publish();
        return snapshot;
      }),
    {
      validator: (req) => {
        checkLive('swap the SIM of');
        if (snapshot.pendingSimSwap) refuse('SWAP_IN_PROGRESS', 'an eSIM swap is in progress');
        if (req.form !== 'physical' && req.form !== 'esim') refuse('INVALID_INPUT', 'form must be physical or esim');
        if (req.form === 'physical' && !req.iccid) refuse('INVALID_INPUT', 'a physical SIM swap needs the new ICCID');
        if (req.iccid && req.iccid === snapshot.iccid) refuse('SAME_SIM', 'the line is on this SIM already');
      },
    },
  );

  setHandler(esimOrderCompletedSignal, async (o) => {
    if (o.purpose === 'activation') {
      if (o.orderId !== snapshot.esimOrderId || activationOrderReport) return; // a repeated signal
      activationOrderReport = { ok: true, outcome: o };
      // A terminate waiting on this order gives the line up instead.
      if (snapshot.state === 'pending' && !cancellingActivationOrder) {
        await transition('activate', 'sm-dp+', undefined, { eid: o.eid }).catch((err) => log.warn('activation after download refused', { err: String(err) }));
      }
      return;
    }
    const swap = snapshot.pendingSimSwap;
    if (!swap || swap.orderId !== o.orderId) return;
    if (!swapReportOf(o.orderId)) swapOrderReport = { orderId: o.orderId, report: { ok: true } };
    // Enabled before the cancel reached it: the terminate that cancelled it retires the SIM.
    if (cancellingSwapOrder === o.orderId) return;
    await exclusive(async () => {
      // A terminate that got its turn first dealt with the swap (never attach a SIM to a terminated line).
      if (snapshot.pendingSimSwap?.orderId !== o.orderId && patched(TERMINATE_CANCELS_PENDING_SWAP)) return;
      const state = snapshot.state as SubscriberState;
      if (state !== 'active' && state !== 'suspended') {
        await billingRecord.releaseReservedSim({ simId: swap.simId, holder: swap.holder, disposition: 'retired' });
      } else {
        const r = await billingRecord.swapSubscriberSim({ transitionId: swap.transitionId, subscriberId: snapshot.subscriberId, newSimId: swap.simId, actor: 'sm-dp+', eid: o.eid });
        snapshot.iccid = r.newIccid;
        snapshot.simForm = 'esim';
        remember({ at: r.at, action: 'sim_swap', from: state, to: state, actor: 'sm-dp+', details: { oldIccid: r.oldIccid, newIccid: r.newIccid, eid: o.eid ?? null } });
      }
      snapshot.pendingSimSwap = undefined;
      publish();
    }).catch((err) => log.error('eSIM swap could not be recorded', { err: String(err) }));
  });

  setHandler(esimOrderFailedSignal, async (f) => {
    if (f.purpose === 'activation') {
      if (f.orderId !== snapshot.esimOrderId || activationOrderReport) return; // a repeated signal
      activationOrderReport = { ok: false, failure: f };
      // The order was compensated at the SM-DP+; the line never went live: give it up, which returns
      // its number (and the SIM, unless the profile may be on a device) to the inventory. A terminate
      // waiting on this order does that itself.
      if (snapshot.state === 'pending' && !cancellingActivationOrder) {
        await transition('terminate', 'esim-order', `provisioning_failed:${f.code}`, { simDisposition: f.simDisposition }).catch((err) =>
          log.error('giving up the line failed', { err: String(err) }),
        );
      }
      return;
    }
    const swap = snapshot.pendingSimSwap;
    if (!swap || swap.orderId !== f.orderId) return;
    if (!swapReportOf(f.orderId)) swapOrderReport = { orderId: f.orderId, report: { ok: false, failure: f } };
    if (cancellingSwapOrder === f.orderId) return; // the terminate that cancelled it releases the SIM
    await exclusive(async () => {
      if (snapshot.pendingSimSwap?.orderId !== f.orderId && patched(TERMINATE_CANCELS_PENDING_SWAP)) return; // a terminate released it
      await billingRecord.releaseReservedSim({ simId: swap.simId, holder: swap.holder, disposition: f.simDisposition });
      const state = snapshot.state as SubscriberState;
      snapshot.pendingSimSwap = undefined;
      remember({ at: new Date(Date.now()).toISOString(), action: 'sim_swap_failed', from: state, to: state, actor: 'esim-order', reason: f.code, details: { message: f.message } });
    }).catch((err) => log.error('releasing the swap SIM failed', { err: String(err) }));
  });

  if (!registered) {
    try {
      const reg = await billingRecord.registerSubscriber(input);
      snapshot.msisdn = reg.msisdn;
      snapshot.iccid = reg.iccid;
      snapshot.simForm = reg.simForm;
      remember({ at: reg.at, action: 'register', from: null, to: 'pending', actor: input.actor, details: { msisdn: reg.msisdn, iccid: reg.iccid ?? null } });
      if (reg.simForm === 'esim' && reg.simId && reg.iccid) {
        // The registration placed the order `esim-order:<subscriber id>` (recorded with the line).
        snapshot.esimOrderId = input.subscriberId;
      }
      registered = true;
      publish();
    } catch (err) {
      const cause = err instanceof ApplicationFailure ? err : (err as { cause?: unknown }).cause;
      const failure = cause instanceof ApplicationFailure ? cause : undefined;
      snapshot.state = 'rejected';
      snapshot.rejection = { code: failure?.type ?? 'REGISTRATION_FAILED', message: failure?.message ?? String(err) };
      log.warn('subscriber registration refused', { code: snapshot.rejection.code });
      await condition(allHandlersFinished);
      return snapshot;
    }
  }

  const done = () => snapshot.state === 'terminated' || workflowInfo().continueAsNewSuggested;
  for (;;) {
    const scheduled = snapshot.scheduledPlanChange;
    const dueInMs = scheduled && snapshot.state !== 'terminated' ? Date.parse(scheduled.effectiveAt) - Date.now() : undefined;
    if (dueInMs !== undefined && dueInMs <= 0) {
      await exclusive(async () => {
        const r = await billingRecord.applyScheduledPlanChange({ transitionId: nextTransitionId(), subscriberId: snapshot.subscriberId, actor: 'schedule' });
        const state = snapshot.state as SubscriberState;
        if (r.planCode) snapshot.planCode = r.planCode;
        snapshot.scheduledPlanChange = undefined;
        remember({ at: r.at, action: 'change_plan', from: state, to: state, actor: 'schedule', details: { to: r.planCode, scheduled: true } });
        publish();
      }).catch((err) => {
        log.error('scheduled plan change failed', { err: String(err) });
        snapshot.scheduledPlanChange = undefined;
      });
      continue;
    }
    const seen = scheduleVersion;
    const wake = () => done() || scheduleVersion !== seen;
    if (dueInMs !== undefined) await condition(wake, dueInMs);
    else await condition(wake);
    if (done()) break;
  }
  await condition(allHandlersFinished);
  if (snapshot.state !== 'terminated') {
    await continueAsNew<typeof subscriberWorkflow>(input, snapshot);
  }
  return snapshot;
}
