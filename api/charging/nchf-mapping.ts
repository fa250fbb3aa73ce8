/**
 * From a validated Nchf ChargingDataRequest to a charging engine operation (pure).
 *
 * Documented profile of TS 32.291 this CHF implements:
 *  - Subscriber: `subscriberIdentifier` "imsi-<IMSI>" (the SUPI) or "msisdn-<MSISDN>" (a GPSI,
 *    accepted for convenience); otherwise `pDUSessionChargingInformation.userInformation.servedGPSI`
 *    "msisdn-…". Anything else is an unknown user.
 *  - Rating groups → services: the engine's policy (10 data, 20 voice, 30 SMS by default).
 *  - Units: data = usedUnitContainer.totalVolume (else uplinkVolume + downlinkVolume), bytes;
 *    voice = time, seconds; SMS = serviceSpecificUnits (default 1), messages. Requested units
 *    likewise from requestedUnit; an empty requestedUnit asks for the default quota, no
 *    requestedUnit asks for none.
 *  - Zone: the visited PLMN from the user location (nrLocation, else eutraLocation, TAI PLMN) of
 *    pDUSessionChargingInformation, iMSChargingInformation or sMSChargingInformation, else
 *    pduSessionInformation.servingCNPlmnId. An MCC in `homeMccs` is 'home', an EU/EEA MCC is
 *    'roam-eu', any other 'roam-world'. Without a PLMN, roamerInOut OUT_BOUND means
 *    'roam-world'; otherwise the zone stays as it was ('home' on create).
 *  - Destination: voice from iMSChargingInformation.calledPartyAddress (else
 *    requestedPartyAddress[0]); SMS from sMSChargingInformation.recipientInfo[0]
 *    (recipientOtherAddress.sMaddressData, recipientReceivedAddress.sMaddressData or
 *    recipientGPSI); "tel:", "sip:", "msisdn-", "+" and any "@domain" or ";params" are removed.
 *  - One-time events: oneTimeEvent true with oneTimeEventType IEC (default) or PEC.
 *  - ChargingDataRef of a create: derived from (subscriber, NF, chargingId, invocationTimeStamp,
 *    invocationSequenceNumber), so a retransmitted create reaches the same resource.
 */
import { deriveChargingDataRef } from '../../domain/charging/charging-engine';
import type { ChargingRequestOp, Service, SubscriberKey, UnitUsage, UsageContextInput, UsedUnits } from '../../domain/charging/charging.types';

/* eslint-disable @typescript-eslint/no-explicit-any -- the request was validated against our schema */
type Json = any;

/** Mobile country codes of the EU and EEA states (roam-like-at-home zone). */
export const EU_MCCS: ReadonlySet<string> = new Set([
  '232', '206', '284', '219', '280', '230', '238', '248', '244', '208', '262', '202', '216', '272', '222', '247', '246', '270',
  '278', '204', '260', '268', '226', '231', '293', '214', '240', // EU
  '274', '295', '242', // EEA: Iceland, Liechtenstein, Norway
]);

export interface MappingOptions {
  ratingGroups: Readonly<Record<number, Service>>;
  homeMccs: ReadonlySet<string>;
}

export type Mapped = { op: ChargingRequestOp } | { error: { status: number; cause: string; detail: string; invalidParams?: { param: string; reason: string }[] } };

export function subscriberKeyOf(body: Json): SubscriberKey | null {
  const id: string | undefined = body.subscriberIdentifier;
  if (typeof id === 'string') {
    if (/^imsi-\d{5,15}$/.test(id)) return { kind: 'imsi', value: id.slice(5) };
    if (/^msisdn-\d{5,15}$/.test(id)) return { kind: 'msisdn', value: id.slice(7) };
  }
  const gpsi: unknown = body.pDUSessionChargingInformation?.userInformation?.servedGPSI;
  if (typeof gpsi === 'string' && /^msisdn-\d{5,15}$/.test(gpsi)) return { kind: 'msisdn', value: gpsi.slice(7) };
  return null;
}

export function mapCreate(body: Json, options: MappingOptions, rawText?: string): Mapped {
  if (typeof body.subscriberIdentifier !== 'string' && !body.pDUSessionChargingInformation?.userInformation?.servedGPSI) {
    return { error: { status: 400, cause: 'CHARGING_FAILED', detail: 'a create needs the subscriber', invalidParams: [{ param: '/subscriberIdentifier', reason: 'is required to charge' }] } };
  }
  const subscriber = subscriberKeyOf(body) ?? { kind: 'msisdn' as const, value: '' };
  const nf = nfName(body);
  const chargingId = body.chargingId ?? body.pDUSessionChargingInformation?.chargingId ?? null;
  const ref = deriveChargingDataRef([body.subscriberIdentifier ?? '', nf, chargingId, body.invocationTimeStamp, body.invocationSequenceNumber, body.oneTimeEvent ? 'event' : 'session']);
  const oneTimeEvent = body.oneTimeEvent === true ? (body.oneTimeEventType === 'PEC' ? 'PEC' : 'IEC') : undefined;
  return {
    op: {
      kind: 'create', ref, sequenceNumber: body.invocationSequenceNumber, invocationTime: new Date(body.invocationTimeStamp), raw: rawText ?? body,
      context: contextOf(body, options, true), units: unitsOf(body, options, oneTimeEvent !== undefined), nfConsumer: nf,
      subscriber, subscriberIdentifier: String(body.subscriberIdentifier ?? body.pDUSessionChargingInformation?.userInformation?.servedGPSI),
      oneTimeEvent,
    },
  };
}

export function mapUpdate(kind: 'update' | 'release', ref: string, body: Json, options: MappingOptions, rawText?: string): Mapped {
  return {
    op: {
      kind, ref, sequenceNumber: body.invocationSequenceNumber, invocationTime: new Date(body.invocationTimeStamp), raw: rawText ?? body,
      context: contextOf(body, options, false), units: unitsOf(body, options, false, kind === 'release'), nfConsumer: nfName(body),
    },
  };
}

function nfName(body: Json): string {
  const nf = body.nfConsumerIdentification ?? {};
  return String(nf.nFName ?? nf.nFFqdn ?? nf.nFIPv4Address ?? nf.nFIPv6Address ?? nf.nodeFunctionality);
}

function unitsOf(body: Json, options: MappingOptions, event: boolean, release = false): UnitUsage[] {
  const list: Json[] = body.multipleUnitUsage ?? [];
  return list.map((m) => {
    const service = options.ratingGroups[m.ratingGroup];
    const used: UsedUnits[] = (m.usedUnitContainer ?? []).map((c: Json) => ({
      units: usedUnits(service, c),
      uplink: c.uplinkVolume !== undefined ? BigInt(c.uplinkVolume) : undefined,
      downlink: c.downlinkVolume !== undefined ? BigInt(c.downlinkVolume) : undefined,
      serviceId: c.serviceId,
      localSequenceNumber: c.localSequenceNumber,
      triggerTimestamp: c.triggerTimestamp ? new Date(c.triggerTimestamp) : undefined,
      eventTime: c.eventTimeStamps?.[0] ? new Date(c.eventTimeStamps[0]) : undefined,
    }));
    let requested: bigint | null | undefined;
    if (!release && m.requestedUnit !== undefined) requested = requestedUnits(service, m.requestedUnit);
    else if (!release && event && used.length === 0) {
      const sms = body.sMSChargingInformation?.numberofMessagesSent;
      requested = service === 'sms' && typeof sms === 'number' && sms > 0 ? BigInt(sms) : null;
    }
    return { ratingGroup: m.ratingGroup, requested, used };
  });
}

function usedUnits(service: Service | undefined, c: Json): bigint {
  if (service === 'voice') return BigInt(c.time ?? 0);
  if (service === 'sms') return BigInt(c.serviceSpecificUnits ?? 1);
  if (c.totalVolume !== undefined) return BigInt(c.totalVolume);
  return BigInt(c.uplinkVolume ?? 0) + BigInt(c.downlinkVolume ?? 0);
}

function requestedUnits(service: Service | undefined, r: Json): bigint | null {
  const v = service === 'voice' ? r.time : service === 'sms' ? r.serviceSpecificUnits : (r.totalVolume ?? (r.uplinkVolume !== undefined || r.downlinkVolume !== undefined ? (r.uplinkVolume ?? 0) + (r.downlinkVolume ?? 0) : undefined));
  return v === undefined || v === 0 ? null : BigInt(v);
}

export function contextOf(body: Json, options: MappingOptions, create: boolean): UsageContextInput {
  const pdu = body.pDUSessionChargingInformation;
  const ims = body.iMSChargingInformation;
  const sms = body.sMSChargingInformation;
  const plmn = plmnOf(pdu?.userLocationinfo) ?? pdu?.pduSessionInformation?.servingCNPlmnId ?? plmnOf(ims?.userLocationInfo) ?? plmnOf(sms?.userLocationinfo);
  const roamer: unknown = pdu?.userInformation?.roamerInOut ?? ims?.userInformation?.roamerInOut ?? sms?.roamerInOut;
  let zone: string | undefined;
  if (plmn?.mcc) zone = options.homeMccs.has(plmn.mcc) ? 'home' : EU_MCCS.has(plmn.mcc) ? 'roam-eu' : 'roam-world';
  else if (roamer === 'OUT_BOUND') zone = 'roam-world';
  else if (create) zone = 'home';
  const ctx: UsageContextInput = {};
  if (zone !== undefined) ctx.zone = zone;
  const dest = ims?.calledPartyAddress ?? ims?.requestedPartyAddress?.[0] ?? recipientOf(sms?.recipientInfo?.[0]);
  if (typeof dest === 'string') ctx.destination = normalizeNumber(dest);
  return ctx;
}

function plmnOf(location: Json): { mcc: string; mnc: string } | undefined {
  return location?.nrLocation?.tai?.plmnId ?? location?.eutraLocation?.tai?.plmnId;
}

function recipientOf(r: Json): string | undefined {
  return r?.recipientOtherAddress?.sMaddressData ?? r?.recipientReceivedAddress?.sMaddressData ?? r?.recipientGPSI;
}

/** "tel:+49 170 1234567", "sip:+491701234567@ims.example;user=phone", "msisdn-4917…" → digits. */
export function normalizeNumber(address: string): string {
  let a = address.trim();
  a = a.replace(/^(tel:|sip:|sips:|msisdn-)/i, '');
  a = a.split(/[@;]/)[0];
  return a.replace(/[\s\-().]/g, '').replace(/^\+/, '');
}
