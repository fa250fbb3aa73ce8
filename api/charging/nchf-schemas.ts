/**
 * JSON Schemas for the Nchf_ConvergedCharging v3 request body, written for this project from
 * 3GPP TS 32.291 (ChargingDataRequest and the types it uses from TS 29.571). They check every
 * information element the CHF reads, with the spec's types, ranges, patterns and mandatory
 * members; other members of the spec are accepted as they come (the spec allows them, and the
 * CHF ignores them). The official OpenAPI files are used only by the conformance test.
 *
 * One deliberate narrowing: Uint64 volumes are limited to 2^53 − 1 (9 PB), the largest integer a
 * JSON number carries exactly in JavaScript; a larger value is refused with a 400 naming it.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

const uint32 = { type: 'integer', minimum: 0, maximum: 4294967295 } as const;
const uint64 = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const anyString = { type: 'string' } as const;

const plmnId = {
  type: 'object',
  required: ['mcc', 'mnc'],
  properties: { mcc: { type: 'string', pattern: '^[0-9]{3}$' }, mnc: { type: 'string', pattern: '^[0-9]{2,3}$' } },
} as const;
const tai = {
  type: 'object',
  required: ['plmnId', 'tac'],
  properties: { plmnId, tac: { type: 'string', pattern: '(^[A-Fa-f0-9]{4}$)|(^[A-Fa-f0-9]{6}$)' } },
} as const;
const userLocation = {
  type: 'object',
  properties: {
    eutraLocation: {
      type: 'object',
      required: ['tai', 'ecgi'],
      properties: {
        tai,
        ecgi: { type: 'object', required: ['plmnId', 'eutraCellId'], properties: { plmnId, eutraCellId: { type: 'string', pattern: '^[A-Fa-f0-9]{7}$' } } },
      },
    },
    nrLocation: {
      type: 'object',
      required: ['tai', 'ncgi'],
      properties: {
        tai,
        ncgi: { type: 'object', required: ['plmnId', 'nrCellId'], properties: { plmnId, nrCellId: { type: 'string', pattern: '^[A-Fa-f0-9]{9}$' } } },
      },
    },
  },
} as const;
const trigger = {
  type: 'object',
  required: ['triggerCategory'],
  properties: {
    triggerType: anyString, triggerCategory: anyString, timeLimit: { type: 'integer' }, volumeLimit: uint32, volumeLimit64: uint64,
    eventLimit: uint32, maxNumberOfccc: uint32, tariffTimeChange: dateTime,
  },
} as const;
const triggers = { type: 'array', items: trigger } as const;
const units = { time: uint32, totalVolume: uint64, uplinkVolume: uint64, downlinkVolume: uint64, serviceSpecificUnits: uint64 } as const;
const usedUnitContainer = {
  type: 'object',
  required: ['localSequenceNumber'],
  properties: {
    serviceId: uint32, quotaManagementIndicator: anyString, triggers, triggerTimestamp: dateTime, ...units,
    eventTimeStamps: { type: 'array', items: dateTime }, localSequenceNumber: { type: 'integer' },
  },
} as const;
const multipleUnitUsage = {
  type: 'object',
  required: ['ratingGroup'],
  properties: {
    ratingGroup: uint32,
    requestedUnit: { type: 'object', properties: units },
    usedUnitContainer: { type: 'array', items: usedUnitContainer },
  },
} as const;
const roamerInOut = anyString;
const smAddressInfo = { type: 'object', properties: { sMaddressType: anyString, sMaddressData: anyString } } as const;

export const chargingDataRequestSchema = {
  $id: 'mvno-bss:nchf:ChargingDataRequest',
  type: 'object',
  required: ['nfConsumerIdentification', 'invocationTimeStamp', 'invocationSequenceNumber'],
  properties: {
    subscriberIdentifier: { type: 'string', pattern: '^(imsi-[0-9]{5,15}|nai-.+|gci-.+|gli-.+|.+)$', maxLength: 256 },
    tenantIdentifier: anyString,
    chargingId: uint32,
    nfConsumerIdentification: {
      type: 'object',
      required: ['nodeFunctionality'],
      properties: {
        nFName: { type: 'string', format: 'uuid' },
        nFIPv4Address: { type: 'string', format: 'ipv4' },
        nFIPv6Address: anyString,
        nFPLMNID: plmnId,
        nodeFunctionality: anyString,
        nFFqdn: anyString,
      },
    },
    invocationTimeStamp: dateTime,
    invocationSequenceNumber: uint32,
    retransmissionIndicator: { type: 'boolean' },
    oneTimeEvent: { type: 'boolean' },
    oneTimeEventType: anyString,
    notifyUri: anyString,
    supportedFeatures: { type: 'string', pattern: '^[A-Fa-f0-9]*$' },
    multipleUnitUsage: { type: 'array', items: multipleUnitUsage, maxItems: 64 },
    triggers,
    pDUSessionChargingInformation: {
      type: 'object',
      properties: {
        chargingId: uint32,
        userInformation: { type: 'object', properties: { servedGPSI: anyString, servedPEI: anyString, unauthenticatedFlag: { type: 'boolean' }, roamerInOut } },
        userLocationinfo: userLocation,
        uetimeZone: anyString,
        pduSessionInformation: {
          type: 'object',
          required: ['pduSessionID', 'dnnId'],
          properties: {
            pduSessionID: { type: 'integer', minimum: 0, maximum: 255 },
            dnnId: anyString, hPlmnId: plmnId, servingCNPlmnId: plmnId, ratType: anyString, startTime: dateTime, stopTime: dateTime,
          },
        },
      },
    },
    roamingQBCInformation: { type: 'object' },
    sMSChargingInformation: {
      type: 'object',
      properties: {
        recipientInfo: {
          type: 'array',
          items: { type: 'object', properties: { recipientSUPI: anyString, recipientGPSI: anyString, recipientOtherAddress: smAddressInfo, recipientReceivedAddress: smAddressInfo } },
        },
        roamerInOut,
        userLocationinfo: userLocation,
        numberofMessagesSent: uint32,
        submissionTime: dateTime,
      },
    },
    iMSChargingInformation: {
      type: 'object',
      properties: {
        userInformation: { type: 'object', properties: { roamerInOut } },
        userLocationInfo: userLocation,
        calledPartyAddress: anyString,
        requestedPartyAddress: { type: 'array', items: anyString, minItems: 1 },
      },
    },
  },
} as const;

/** The members whose errors are MANDATORY_IE_INCORRECT rather than OPTIONAL_IE_INCORRECT. */
const MANDATORY = [/^\/nfConsumerIdentification(\/nodeFunctionality)?$/, /^\/invocationTimeStamp$/, /^\/invocationSequenceNumber$/, /^\/multipleUnitUsage\/\d+\/ratingGroup$/, /\/usedUnitContainer\/\d+\/localSequenceNumber$/];

export interface InvalidParam {
  param: string;
  reason: string;
}

export interface SchemaProblem {
  cause: 'MANDATORY_IE_MISSING' | 'MANDATORY_IE_INCORRECT' | 'OPTIONAL_IE_INCORRECT';
  invalidParams: InvalidParam[];
}

export function compileRequestValidator(): (body: unknown) => SchemaProblem | null {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
  addFormats(ajv, ['date-time', 'uuid', 'ipv4']);
  const validate: ValidateFunction = ajv.compile(chargingDataRequestSchema);
  return (body) => {
    if (validate(body)) return null;
    return describe(validate.errors ?? []);
  };
}

function describe(errors: ErrorObject[]): SchemaProblem {
  const params = new Map<string, string>();
  let missing = false;
  let mandatory = false;
  for (const e of errors.slice(0, 20)) {
    const param = e.keyword === 'required' ? `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}` : e.instancePath || '/';
    if (e.keyword === 'required') missing = true;
    if (MANDATORY.some((re) => re.test(param))) mandatory = true;
    if (!params.has(param)) params.set(param, e.message ?? 'is invalid');
  }
  const cause = missing ? 'MANDATORY_IE_MISSING' : mandatory ? 'MANDATORY_IE_INCORRECT' : 'OPTIONAL_IE_INCORRECT';
  return { cause, invalidParams: [...params].map(([param, reason]) => ({ param, reason })) };
}
