/** Realistic Nchf ChargingDataRequest bodies (as an SMF, IMS node or SMSF sends them), for tests
 * and the load generator. */
export const SMF_ID = '5b4f3c2e-8a61-4d4e-9a3b-1c2d3e4f5a6b';
export const IMS_ID = '6c5f4d3e-9b72-4e5f-8b4c-2d3e4f5a6b7c';
export const SMSF_ID = '7d6e5f4a-ac83-4f60-9c5d-3e4f5a6b7c8d';

export interface Where {
  mcc?: string;
  mnc?: string;
}

const location = (w: Where = {}) => ({
  nrLocation: {
    tai: { plmnId: { mcc: w.mcc ?? '262', mnc: w.mnc ?? '01' }, tac: '00A1' },
    ncgi: { plmnId: { mcc: w.mcc ?? '262', mnc: w.mnc ?? '01' }, nrCellId: '0000000A1' },
  },
});

const now = () => new Date().toISOString();

export function dataCreate(subscriber: string, opts: { requested?: number; chargingId?: number; where?: Where; seq?: number } = {}) {
  return {
    subscriberIdentifier: subscriber,
    nfConsumerIdentification: { nFName: SMF_ID, nodeFunctionality: 'SMF', nFPLMNID: { mcc: '262', mnc: '01' } },
    invocationTimeStamp: now(),
    invocationSequenceNumber: opts.seq ?? 0,
    chargingId: opts.chargingId,
    multipleUnitUsage: [{ ratingGroup: 10, requestedUnit: opts.requested === undefined ? {} : { totalVolume: opts.requested } }],
    triggers: [{ triggerType: 'VOLUME_LIMIT', triggerCategory: 'IMMEDIATE_REPORT', volumeLimit64: 5_000_000 }],
    pDUSessionChargingInformation: {
      chargingId: opts.chargingId,
      userInformation: { servedGPSI: undefined, roamerInOut: opts.where?.mcc && opts.where.mcc !== '262' ? 'OUT_BOUND' : undefined },
      userLocationinfo: location(opts.where),
      pduSessionInformation: { pduSessionID: 5, dnnId: 'internet', ratType: 'NR', servingCNPlmnId: { mcc: opts.where?.mcc ?? '262', mnc: opts.where?.mnc ?? '01' } },
    },
  };
}

export function dataUpdate(seq: number, used: number, opts: { requested?: number | null; lsn?: number; where?: Where } = {}) {
  const mu: Record<string, unknown> = {
    ratingGroup: 10,
    usedUnitContainer: [{
      localSequenceNumber: opts.lsn ?? seq, quotaManagementIndicator: 'ONLINE_CHARGING', triggerTimestamp: now(),
      triggers: [{ triggerType: 'QUOTA_EXHAUSTED', triggerCategory: 'IMMEDIATE_REPORT' }],
      totalVolume: used, uplinkVolume: Math.floor(used / 5), downlinkVolume: used - Math.floor(used / 5),
    }],
  };
  if (opts.requested !== null) mu.requestedUnit = opts.requested === undefined ? {} : { totalVolume: opts.requested };
  return {
    nfConsumerIdentification: { nFName: SMF_ID, nodeFunctionality: 'SMF' },
    invocationTimeStamp: now(),
    invocationSequenceNumber: seq,
    multipleUnitUsage: [mu],
    ...(opts.where ? { pDUSessionChargingInformation: { userLocationinfo: location(opts.where) } } : {}),
  };
}

export function dataRelease(seq: number, used: number) {
  const body = dataUpdate(seq, used, { requested: null });
  (body.multipleUnitUsage[0].usedUnitContainer as { triggers: unknown[] }[])[0].triggers = [{ triggerType: 'FINAL', triggerCategory: 'IMMEDIATE_REPORT' }];
  return body;
}

export function voiceCreate(subscriber: string, called: string, opts: { requested?: number; where?: Where; seq?: number } = {}) {
  return {
    subscriberIdentifier: subscriber,
    nfConsumerIdentification: { nFName: IMS_ID, nodeFunctionality: 'IMS_Node' },
    invocationTimeStamp: now(),
    invocationSequenceNumber: opts.seq ?? 0,
    multipleUnitUsage: [{ ratingGroup: 20, requestedUnit: { time: opts.requested ?? 120 } }],
    iMSChargingInformation: {
      roleOfNode: 'ORIGINATING',
      calledPartyAddress: `tel:+${called}`,
      userLocationInfo: location(opts.where),
      userInformation: { roamerInOut: opts.where?.mcc && opts.where.mcc !== '262' ? 'OUT_BOUND' : undefined },
    },
  };
}

export function voiceUpdate(seq: number, seconds: number, requested: number | null) {
  const mu: Record<string, unknown> = {
    ratingGroup: 20,
    usedUnitContainer: [{ localSequenceNumber: seq, time: seconds, triggerTimestamp: now() }],
  };
  if (requested !== null) mu.requestedUnit = { time: requested };
  return { nfConsumerIdentification: { nFName: IMS_ID, nodeFunctionality: 'IMS_Node' }, invocationTimeStamp: now(), invocationSequenceNumber: seq, multipleUnitUsage: [mu] };
}

export function smsEvent(subscriber: string, recipient: string, opts: { where?: Where; seq?: number; messageReference?: string } = {}) {
  return {
    subscriberIdentifier: subscriber,
    nfConsumerIdentification: { nFName: SMSF_ID, nodeFunctionality: 'SMSF' },
    invocationTimeStamp: now(),
    invocationSequenceNumber: opts.seq ?? 0,
    oneTimeEvent: true,
    oneTimeEventType: 'IEC',
    multipleUnitUsage: [{ ratingGroup: 30, requestedUnit: { serviceSpecificUnits: 1 } }],
    sMSChargingInformation: {
      recipientInfo: [{ recipientOtherAddress: { sMaddressType: 'MSISDN', sMaddressData: `+${recipient}` } }],
      userLocationinfo: location(opts.where),
      messageReference: opts.messageReference ?? String(Math.floor(Math.random() * 1e9)),
    },
  };
}
