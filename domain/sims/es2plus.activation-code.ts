/**
 * Activation Codes (GSMA SGP.22 §4.1): what the end user scans to download an eSIM Profile.
 *
 *   Activation Code = AC_Format "$" SM-DP+ Address "$" AC_Token [ "$" SM-DP+ OID [ "$" CCRF ] ]
 *   QR code content = "LPA:" Activation Code          e.g. LPA:1$smdp.example.com$04386-AGYFT-A74Y8-3F815
 *
 * AC_Format is "1"; AC_Token is the Matching ID; the optional Confirmation Code Required Flag
 * is "1" when the user must type a Confirmation Code. `$` is the delimiter, so it may appear in
 * no field. An empty AC_Token is allowed by the format but useless in a code handed to a user.
 */
import * as QRCode from 'qrcode';

export const ACTIVATION_CODE_PREFIX = 'LPA:';

export interface ActivationCodeOptions {
  /** SM-DP+ OID, only needed when the device must check it. */
  smdpOid?: string;
  /** Sets the Confirmation Code Required Flag. */
  confirmationCodeRequired?: boolean;
}

export interface ParsedActivationCode {
  format: '1';
  smdpAddress: string;
  matchingId: string;
  smdpOid?: string;
  confirmationCodeRequired: boolean;
}

export class InvalidActivationCodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidActivationCodeError';
  }
}

const FIELD_FORBIDDEN = /[$\s]/;

function checkField(name: string, value: string, required: boolean): void {
  if (required && value.length === 0) throw new InvalidActivationCodeError(`${name} must not be empty`);
  if (FIELD_FORBIDDEN.test(value)) throw new InvalidActivationCodeError(`${name} must not contain '$' or whitespace`);
}

/** `LPA:1$<smdp-address>$<matching-id>` (plus the optional OID and confirmation-code flag). */
export function buildActivationCode(smdpAddress: string, matchingId: string, options: ActivationCodeOptions = {}): string {
  checkField('SM-DP+ address', smdpAddress, true);
  checkField('Matching ID', matchingId, true);
  let code = `${ACTIVATION_CODE_PREFIX}1$${smdpAddress}$${matchingId}`;
  if (options.smdpOid !== undefined || options.confirmationCodeRequired) {
    const oid = options.smdpOid ?? '';
    if (oid !== '' && !/^[0-9]+(?:\.[0-9]+)+$/.test(oid)) throw new InvalidActivationCodeError('SM-DP+ OID must be a dotted OID');
    code += `$${oid}`;
    if (options.confirmationCodeRequired) code += '$1';
  }
  return code;
}

/** Parses an Activation Code, with or without the `LPA:` prefix of the QR code content. */
export function parseActivationCode(input: string): ParsedActivationCode {
  const raw = input.trim();
  const body = raw.toUpperCase().startsWith(ACTIVATION_CODE_PREFIX) ? raw.slice(ACTIVATION_CODE_PREFIX.length) : raw;
  const parts = body.split('$');
  if (parts.length < 3 || parts.length > 5) throw new InvalidActivationCodeError('expected 3 to 5 $-separated fields');
  const [format, smdpAddress, matchingId, smdpOid, ccrf] = parts as [string, string, string, string?, string?];
  if (format !== '1') throw new InvalidActivationCodeError(`unsupported AC_Format '${format}'`);
  checkField('SM-DP+ address', smdpAddress, true);
  checkField('Matching ID', matchingId, false);
  if (ccrf !== undefined && ccrf !== '' && ccrf !== '1') throw new InvalidActivationCodeError('Confirmation Code Required Flag must be 1');
  const parsed: ParsedActivationCode = { format: '1', smdpAddress, matchingId, confirmationCodeRequired: ccrf === '1' };
  if (smdpOid) parsed.smdpOid = smdpOid;
  return parsed;
}

const QR_OPTIONS = { errorCorrectionLevel: 'M' as const, margin: 2, scale: 6 };

/** PNG image (Buffer) of the Activation Code as a QR code. */
export async function activationCodeQrPng(code: string): Promise<Buffer> {
  return QRCode.toBuffer(code, { ...QR_OPTIONS, type: 'png' });
}

/** `data:image/png;base64,...` URL of the QR code, for e-mails and web pages. */
export async function activationCodeQrDataUrl(code: string): Promise<string> {
  return QRCode.toDataURL(code, { ...QR_OPTIONS, type: 'image/png' });
}
