/**
 * Types of the real-time charging engine: the operations it accepts (what the Nchf API and the
 * workflows ask), the locked balances it decides on, and the answers it gives.
 *
 * Units: data in bytes, voice in seconds, SMS in messages; money in micro-units (1e-6 of the
 * major unit). All amounts are bigint; JSON forms carry them as decimal strings.
 *
 * Answers use the field names and result codes of 3GPP TS 32.291 (ChargingDataResponse,
 * MultipleUnitInformation, ResultCode), because the engine is the CHF behind that API and a
 * retransmitted request must get the stored first answer byte for byte.
 */
import type { Rate } from './rating';
import type { Service } from './tariff.types';
import type { SubscriberState } from '../subscribers/subscriber-lifecycle';

export type { Service };
export type PaymentType = 'prepaid' | 'postpaid' | 'hybrid';

// ---- requests ------------------------------------------------------------------------------

export type SubscriberKey = { kind: 'imsi' | 'msisdn'; value: string };

/** One used-unit report (TS 32.291 UsedUnitContainer) reduced to what charging needs. */
export interface UsedUnits {
  /** Units in the rating group's service unit: bytes, seconds or messages. */
  units: bigint;
  uplink?: bigint;
  downlink?: bigint;
  serviceId?: number;
  localSequenceNumber?: number;
  /** When the report was triggered (end of this slice of usage). */
  triggerTimestamp?: Date;
  /** First event time (one-time events). */
  eventTime?: Date;
}

/** What one rating group of a request reports and asks for. */
export interface UnitUsage {
  ratingGroup: number;
  /** undefined: no quota wanted. null or 0: the default amount. A positive number: that amount. */
  requested?: bigint | null;
  used: UsedUnits[];
}

/** Where and to whom the usage happens; resolved from the request by the API. */
export interface UsageContextInput {
  /** Rating zone ('home', 'roam-eu', …). Omitted on updates that do not carry location. */
  zone?: string;
  /** Called / recipient number for voice and SMS, E.164 digits. */
  destination?: string | null;
}

interface RequestBase {
  /** ChargingDataRef. For a create the engine's caller computes it (see `chargingDataRefFor`). */
  ref: string;
  sequenceNumber: number;
  invocationTime: Date;
  /** The request as received — ideally the body's exact JSON text — kept verbatim in the
   * journal entry (`details.request`, a JSON string) for the "explain this charge" trail. */
  raw: string | unknown;
  context: UsageContextInput;
  units: UnitUsage[];
  /** NF consumer name or FQDN, recorded as the journal entry's actor. */
  nfConsumer?: string;
}

export interface CreateOp extends RequestBase {
  kind: 'create';
  subscriber: SubscriberKey;
  subscriberIdentifier: string;
  /** One-time event: charge immediately (IEC: grant = debit; PEC: report used units), keep no session. */
  oneTimeEvent?: 'IEC' | 'PEC';
}
export interface UpdateOp extends RequestBase {
  kind: 'update';
}
export interface ReleaseOp extends RequestBase {
  kind: 'release';
}
/** Internal: return the holds of a session whose validity ended (the sweeper). */
export interface ExpireOp {
  kind: 'expire';
  ref: string;
}
/** Money in or out of a wallet: top-ups, recurring fees, refunds, manual adjustments. */
export interface WalletOp {
  kind: 'wallet';
  billingAccountId: string;
  /** Positive credits the wallet, negative debits it. */
  amountMicros: bigint;
  entryType: 'top_up' | 'recurring_charge' | 'adjustment' | 'refund' | 'payment' | 'credit_note';
  /** Ledger account kind on the other side: gateway_cash (top-up), revenue (fee), adjustments. */
  counterKind: 'gateway_cash' | 'revenue' | 'adjustments' | 'receivables' | 'discounts';
  idempotencyKey: string;
  actor: string;
  reason?: string;
  sourceRef: string;
  details?: Record<string, unknown>;
  /** Debits only: refuse (INSUFFICIENT_FUNDS) rather than pass the credit limit. Always true; the
   * database refuses anything else. */
}

export type ChargingRequestOp = CreateOp | UpdateOp | ReleaseOp;
export type ChargingOp = ChargingRequestOp | ExpireOp | WalletOp;

// ---- answers -------------------------------------------------------------------------------

export type ResultCode =
  | 'SUCCESS'
  | 'END_USER_SERVICE_DENIED'
  | 'QUOTA_LIMIT_REACHED'
  | 'RATING_FAILED'
  | 'END_USER_SERVICE_REJECTED'
  | 'QUOTA_MANAGEMENT_NOT_APPLICABLE';

export interface GrantedUnit {
  time?: number;
  totalVolume?: number;
  serviceSpecificUnits?: number;
}

export interface MultipleUnitInformation {
  resultCode: ResultCode;
  ratingGroup: number;
  grantedUnit?: GrantedUnit;
  validityTime?: number;
  finalUnitIndication?: { finalUnitAction: 'TERMINATE' };
}

export interface ChargingDataResponse {
  invocationTimeStamp: string;
  invocationSequenceNumber: number;
  multipleUnitInformation?: MultipleUnitInformation[];
}

/** TS 29.571 ProblemDetails, with the application error `cause` of TS 32.291 / TS 29.500. */
export interface ChargingProblem {
  status: number;
  cause: string;
  title: string;
  detail: string;
}

export type ChargingAnswer =
  | { kind: 'response'; httpStatus: 200 | 201 | 204; ref: string; body: ChargingDataResponse | null }
  | { kind: 'problem'; ref?: string; problem: ChargingProblem };

export type WalletOpResult =
  | { kind: 'wallet'; status: 'applied' | 'duplicate'; journalEntryId: string | null; balanceMicros: bigint }
  | { kind: 'wallet'; status: 'refused'; code: 'INSUFFICIENT_FUNDS' | 'WALLET_NOT_FOUND' | 'ZERO_AMOUNT'; message: string };

export type OpResult = ChargingAnswer | WalletOpResult | { kind: 'expired'; released: boolean };

// ---- state the engine decides on (locked rows) ---------------------------------------------

/** What identifies a line and who pays for it: cached by the engine between batches (`LineInfo`)
 * and decided on with the line's current state (`SubscriberInfo`). */
export interface LineProfile {
  msisdn: string;
  imsi: string | null;
  billingAccountId: string;
  parentAccountId: string | null;
  paymentType: PaymentType;
  currency: string;
  subscriptionId: string | null;
  planId: string | null;
}

export interface SubscriberInfo extends LineProfile {
  id: string;
  state: SubscriberState;
}

export type BucketService = Service | 'money';

export interface BucketState {
  /** Ledger account id (decimal string). */
  id: string;
  billingAccountId: string;
  /** null: an account-level shared pool. */
  subscriptionId: string | null;
  service: BucketService;
  unit: string;
  initial: bigint;
  balance: bigint;
  reserved: bigint;
  priority: number;
  validFrom: number;
  validUntil: number;
}

export interface WalletState {
  /** Ledger account id (decimal string). */
  id: string;
  billingAccountId: string;
  currency: string;
  balance: bigint;
  reserved: bigint;
  creditLimit: bigint;
}

export interface Hold {
  /** Ledger account id of the bucket or wallet. */
  account: string;
  kind: 'bucket' | 'wallet';
  /** Bucket units (or micros for a money bucket), or wallet micros. */
  amount: bigint;
}

/** One rating group's reservation inside a session. */
export interface Reservation {
  ratingGroup: number;
  service: Service;
  zone: string;
  destination: string | null;
  /** The rate the current grant was priced at (usage is charged at it), and the instant it was
   * selected for; the full rating decision is derived again from the tariff for the journal. */
  rate: Rate | null;
  ratedAt: number;
  holds: Hold[];
  granted: bigint;
  /** Units priced from money since the decision took effect, and their price (cumulative, so that
   * increments apply to the whole call and not to each report). */
  segmentUnits: bigint;
  segmentMicros: bigint;
  usedTotal: bigint;
  /** Epoch ms when the grant's validity ends; null = nothing granted. */
  expiresAt: number | null;
  /** Epoch ms: start of usage not yet reported. */
  sliceStart: number;
}

export interface SessionState {
  ref: string;
  subscriberId: string;
  billingAccountId: string;
  subscriberIdentifier: string;
  msisdn: string | null;
  imsi: string | null;
  nfConsumer: string | null;
  state: 'open' | 'released';
  lastSequenceNumber: number;
  createdAt: number;
  releasedAt: number | null;
  reservations: Reservation[];
}

export interface StoredAnswer {
  ref: string;
  sequenceNumber: number;
  httpStatus: number;
  response: ChargingDataResponse | null;
}
