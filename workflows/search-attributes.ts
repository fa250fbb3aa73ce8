import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Typed keys for the search attributes registered on the server (platform/temporal-search-attributes.ts). */
export const SubscriberIdKey = defineSearchAttributeKey('SubscriberId', SearchAttributeType.KEYWORD);
export const MsisdnKey = defineSearchAttributeKey('Msisdn', SearchAttributeType.KEYWORD);
export const IccidKey = defineSearchAttributeKey('Iccid', SearchAttributeType.KEYWORD);
export const PlanCodeKey = defineSearchAttributeKey('PlanCode', SearchAttributeType.KEYWORD);
export const LifecycleStateKey = defineSearchAttributeKey('LifecycleState', SearchAttributeType.KEYWORD);
export const BillingAccountIdKey = defineSearchAttributeKey('BillingAccountId', SearchAttributeType.KEYWORD);
