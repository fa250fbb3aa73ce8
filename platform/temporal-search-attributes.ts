/** Custom search attributes ops use to find workflows in the Temporal UI. Registered by the dev
 * server (`--search-attribute`) and by docker-compose's setup service; one list for both. */
export const SEARCH_ATTRIBUTES = {
  SubscriberId: 'Keyword',
  Msisdn: 'Keyword',
  Iccid: 'Keyword',
  PlanCode: 'Keyword',
  LifecycleState: 'Keyword',
  BillingAccountId: 'Keyword',
  PartnerCode: 'Keyword',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
