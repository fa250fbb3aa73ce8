/** The line's lifecycle as pure rules, shared by the subscriber workflow (which enforces them) and
 * the API (which explains refusals). No I/O here. */
export const SUBSCRIBER_STATES = ['pending', 'active', 'suspended', 'terminated'] as const;
export type SubscriberState = (typeof SUBSCRIBER_STATES)[number];

export const SUSPEND_REASONS = ['non_payment', 'customer_request', 'fraud', 'lost_sim'] as const;
export type SuspendReason = (typeof SUSPEND_REASONS)[number];

export type LifecycleAction = 'activate' | 'suspend' | 'resume' | 'terminate';

const ALLOWED: Record<LifecycleAction, readonly SubscriberState[]> = {
  activate: ['pending'],
  suspend: ['active'],
  resume: ['suspended'],
  terminate: ['pending', 'active', 'suspended'],
};

const RESULT: Record<LifecycleAction, SubscriberState> = {
  activate: 'active',
  suspend: 'suspended',
  resume: 'active',
  terminate: 'terminated',
};

export class LifecycleRefusal extends Error {
  constructor(
    readonly code: 'INVALID_STATE',
    message: string,
  ) {
    super(message);
  }
}

/** The state an action leads to, or a refusal that says why. */
export function nextState(current: SubscriberState, action: LifecycleAction): SubscriberState {
  if (!ALLOWED[action].includes(current)) {
    throw new LifecycleRefusal('INVALID_STATE', `cannot ${action} a line that is ${current} (allowed from: ${ALLOWED[action].join(', ')})`);
  }
  return RESULT[action];
}

export function canPerform(current: SubscriberState, action: LifecycleAction): boolean {
  return ALLOWED[action].includes(current);
}
