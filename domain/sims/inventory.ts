/** Pure rules of the SIM and number inventory: CSV row validation for batch imports, ICCID check
 * digits. No I/O. */
export const SIM_STATES = ['available', 'reserved', 'active', 'suspended', 'retired'] as const;
export type SimState = (typeof SIM_STATES)[number];
export const SIM_FORMS = ['physical', 'esim'] as const;
export type SimForm = (typeof SIM_FORMS)[number];
export const MSISDN_STATES = ['available', 'reserved', 'assigned', 'quarantined'] as const;
export type MsisdnState = (typeof MSISDN_STATES)[number];

/** Days a number rests after its line is terminated before it can be sold again. */
export const MSISDN_QUARANTINE_DAYS = 90;

/** Luhn check digit of a string of digits (ITU-T E.118 for ICCIDs). */
export function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let n = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      n *= 2;
      if (n > 9) n -= 9;
    }
    sum += n;
  }
  return (10 - (sum % 10)) % 10;
}

export function withLuhn(body: string): string {
  return `${body}${luhnCheckDigit(body)}`;
}

export function iccidHasValidCheckDigit(iccid: string): boolean {
  return luhnCheckDigit(iccid.slice(0, -1)) === Number(iccid.slice(-1));
}

/** Columns that would carry a card's secret keys. A file with any of them is refused whole: the BSS
 * never takes keys, only a reference to where they are held (HSM slot, vendor key file). */
export const SECRET_KEY_COLUMNS = ['ki', 'k', 'opc', 'op', 'key', 'eki', 'kic', 'kid', 'kik', 'secret_key'];

export interface SimImportRow {
  iccid: string;
  imsi: string;
  pin1: string | null;
  puk1: string | null;
  keyReference: string;
}

export interface RejectedRow {
  /** 1-based line number in the file (the header is line 1). */
  line: number;
  iccid: string | null;
  reasons: { code: string; message: string }[];
}

/** Validates one CSV record (already split into named fields). */
export function validateSimRow(record: Record<string, string | undefined>): { ok: true; row: SimImportRow } | { ok: false; reasons: RejectedRow['reasons'] } {
  const reasons: RejectedRow['reasons'] = [];
  const iccid = (record.iccid ?? '').trim();
  const imsi = (record.imsi ?? '').trim();
  const pin1 = (record.pin1 ?? '').trim() || null;
  const puk1 = (record.puk1 ?? '').trim() || null;
  const keyReference = (record.key_reference ?? record.key_ref ?? '').trim();
  if (!/^89[0-9]{16,18}$/.test(iccid)) reasons.push({ code: 'ICCID_INVALID', message: 'ICCID must be 18 to 20 digits starting with 89' });
  else if (!iccidHasValidCheckDigit(iccid)) reasons.push({ code: 'ICCID_CHECK_DIGIT', message: 'ICCID check digit (Luhn) is wrong' });
  if (!/^[0-9]{14,15}$/.test(imsi)) reasons.push({ code: 'IMSI_INVALID', message: 'IMSI must be 14 or 15 digits' });
  if (pin1 !== null && !/^[0-9]{4,8}$/.test(pin1)) reasons.push({ code: 'PIN_INVALID', message: 'PIN1 must be 4 to 8 digits' });
  if (puk1 !== null && !/^[0-9]{8}$/.test(puk1)) reasons.push({ code: 'PUK_INVALID', message: 'PUK1 must be 8 digits' });
  if (!keyReference) reasons.push({ code: 'KEY_REFERENCE_MISSING', message: 'key_reference is required (where the card keys are held)' });
  else if (/^[0-9A-Fa-f]{32}$/.test(keyReference) || /^[0-9A-Fa-f]{64}$/.test(keyReference)) {
    reasons.push({ code: 'KEY_REFERENCE_LOOKS_LIKE_KEY', message: 'key_reference looks like a key itself; send a reference, never the key' });
  } else if (keyReference.length > 200) reasons.push({ code: 'KEY_REFERENCE_INVALID', message: 'key_reference is longer than 200 characters' });
  return reasons.length ? { ok: false, reasons } : { ok: true, row: { iccid, imsi, pin1, puk1, keyReference } };
}
