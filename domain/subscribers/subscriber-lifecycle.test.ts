import { nextState, canPerform, LifecycleRefusal, type LifecycleAction, type SubscriberState } from './subscriber-lifecycle';

describe('subscriber lifecycle rules', () => {
  test.each<[SubscriberState, LifecycleAction, SubscriberState]>([
    ['pending', 'activate', 'active'],
    ['active', 'suspend', 'suspended'],
    ['suspended', 'resume', 'active'],
    ['pending', 'terminate', 'terminated'],
    ['active', 'terminate', 'terminated'],
    ['suspended', 'terminate', 'terminated'],
  ])('%s --%s--> %s', (from, action, to) => {
    expect(canPerform(from, action)).toBe(true);
    expect(nextState(from, action)).toBe(to);
  });

  test.each<[SubscriberState, LifecycleAction]>([
    ['active', 'activate'],
    ['suspended', 'suspend'],
    ['active', 'resume'],
    ['terminated', 'activate'],
    ['terminated', 'resume'],
    ['terminated', 'terminate'],
    ['pending', 'suspend'],
  ])('refuses %s --%s-->', (from, action) => {
    expect(canPerform(from, action)).toBe(false);
    expect(() => nextState(from, action)).toThrow(LifecycleRefusal);
    expect(() => nextState(from, action)).toThrow(new RegExp(`cannot ${action} a line that is ${from}`));
  });
});
