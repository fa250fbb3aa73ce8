import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { nextState, type LifecycleAction, type SubscriberState, type SuspendReason } from '../domain/subscribers/subscriber-lifecycle';
import type { SubscriberActivities } from '../activities/subscriber.activities';
import {
  subscriberActivateUpdate,
  subscriberRegisteredUpdate,
  subscriberResumeUpdate,
  subscriberSnapshotQuery,
  subscriberSuspendUpdate,
  subscriberTerminateUpdate,
  type SubscriberSnapshot,
  type SubscriberWorkflowInput,
} from './subscriber.messages';
import { IccidKey, LifecycleStateKey, MsisdnKey, PlanCodeKey, SubscriberIdKey, BillingAccountIdKey } from './search-attributes';

const billingRecord = proxyActivities<SubscriberActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['BillingRecordRefusal'] },
});

/** One long-lived entity per line: pending → active ⇄ suspended → terminated. Every transition is
 * an update (validated first, so callers get a refusal without touching history) that writes the
 * billing record through an idempotent activity before the state changes here. */
export async function subscriberWorkflow(input: SubscriberWorkflowInput, carried?: SubscriberSnapshot): Promise<SubscriberSnapshot> {
  const snapshot: SubscriberSnapshot = carried ?? {
    subscriberId: input.subscriberId,
    billingAccountId: input.billingAccountId,
    msisdn: input.msisdn,
    planCode: input.planCode,
    iccid: input.iccid,
    state: 'pending',
    history: [],
  };
  let registered = carried !== undefined;
  // Updates run one at a time so two transitions never interleave around an activity.
  let busy = false;

  const publish = () => {
    upsertSearchAttributes([
      { key: SubscriberIdKey, value: snapshot.subscriberId },
      { key: MsisdnKey, value: snapshot.msisdn },
      { key: PlanCodeKey, value: snapshot.planCode },
      { key: LifecycleStateKey, value: snapshot.state },
      { key: BillingAccountIdKey, value: snapshot.billingAccountId },
      ...(snapshot.iccid ? [{ key: IccidKey, value: snapshot.iccid }] : []),
    ]);
    upsertMemo({ msisdn: snapshot.msisdn, planCode: snapshot.planCode, state: snapshot.state, billingAccountId: snapshot.billingAccountId });
  };

  const transition = async (action: LifecycleAction, actor: string, reason?: SuspendReason): Promise<SubscriberSnapshot> => {
    await condition(() => !busy && registered);
    busy = true;
    try {
      const from = snapshot.state as SubscriberState;
      const to = nextState(from, action); // re-checked: an earlier update may have changed the state
      const at = await billingRecord.recordSubscriberTransition({
        subscriberId: snapshot.subscriberId,
        action,
        from,
        to,
        reason,
        actor,
        transitionId: `${workflowInfo().workflowId}:${snapshot.history.length}`,
      });
      snapshot.state = to;
      snapshot.suspendReason = to === 'suspended' ? reason : undefined;
      snapshot.history.push({ at, action, from, to, actor, reason });
      publish();
      return snapshot;
    } finally {
      busy = false;
    }
  };

  const refuseUnless = (action: LifecycleAction) => (..._args: unknown[]) => {
    if (snapshot.state === 'rejected') throw new Error('this line was never registered');
    nextState(snapshot.state, action);
  };

  setHandler(subscriberSnapshotQuery, () => snapshot);
  setHandler(subscriberRegisteredUpdate, async () => {
    await condition(() => registered || snapshot.state === 'rejected');
    return snapshot;
  });
  setHandler(subscriberActivateUpdate, ({ actor }) => transition('activate', actor), { validator: refuseUnless('activate') });
  setHandler(subscriberSuspendUpdate, ({ actor, reason }) => transition('suspend', actor, reason), {
    validator: refuseUnless('suspend'),
  });
  setHandler(subscriberResumeUpdate, ({ actor }) => transition('resume', actor), { validator: refuseUnless('resume') });
  setHandler(subscriberTerminateUpdate, ({ actor }) => transition('terminate', actor), { validator: refuseUnless('terminate') });

  if (!registered) {
    try {
      const at = await billingRecord.registerSubscriber(input);
      snapshot.history.push({ at, action: 'register', from: null, to: 'pending', actor: input.actor });
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

  await condition(() => snapshot.state === 'terminated' || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  if (snapshot.state !== 'terminated') {
    await continueAsNew<typeof subscriberWorkflow>(input, snapshot);
  }
  return snapshot;
}
