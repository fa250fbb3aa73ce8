/**
 * The simulated SM-DP+'s Profile inventory and its state machine (GSMA SGP.22 §3.1 / §5.3).
 * Pure and synchronous: no I/O, no timers; the HTTP layer (`simulator.ts`) calls it.
 *
 *   Available ──downloadOrder──► Allocated (no EID) / Linked (EID given)
 *   Allocated|Linked ──confirmOrder──► Confirmed (releaseFlag=false) / Released (releaseFlag=true)
 *   Confirmed ──releaseProfile──► Released
 *   Released|Error ──device download──► Downloaded ──► Installed ──► Enabled   (device side)
 *   any step of the download may fail ──► Error
 *   Allocated|Linked|Confirmed|Released|Error ──cancelOrder──► Available | Unavailable
 *
 * "Enabled" is not an SM-DP+ state in SGP.22 (the SM-DP+ only learns it from the eUICC's
 * notifications); the simulator keeps it so tests and demos can see the whole journey.
 */
import { randomInt } from 'node:crypto';
import { Es2PlusCodes, type FinalProfileStatusIndicator } from '../../domain/sims/es2plus.types';

export const PROFILE_STATES = [
  'Available',
  'Allocated',
  'Linked',
  'Confirmed',
  'Released',
  'Downloaded',
  'Installed',
  'Enabled',
  'Error',
  'Unavailable',
] as const;
export type ProfileState = (typeof PROFILE_STATES)[number];

export interface ProfileHistoryEntry {
  at: string;
  state: ProfileState;
  by: string;
}

export interface SimProfile {
  iccid: string;
  profileType: string;
  state: ProfileState;
  eid?: string;
  matchingId?: string;
  confirmationCode?: string;
  smdsAddress?: string;
  releaseFlag?: boolean;
  downloadAttempts: number;
  lastError?: { subjectCode: string; reasonCode: string; message: string };
  history: ProfileHistoryEntry[];
}

export interface Refusal {
  subjectCode: string;
  reasonCode: string;
  message: string;
  subjectIdentifier?: string;
}
export type Outcome<T> = { ok: true; value: T } | { ok: false; refusal: Refusal };

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const refuse = (code: { subjectCode: string; reasonCode: string }, message: string, subjectIdentifier?: string): Outcome<never> => ({
  ok: false,
  refusal: { ...code, message, ...(subjectIdentifier !== undefined ? { subjectIdentifier } : {}) },
});

export interface ProfileStoreOptions {
  /** Digits every generated ICCID starts with; 19 - prefix.length digits of serial follow, then a
   *  Luhn check digit (20 digits in all). Default `898801`. */
  iccidPrefix?: string;
  /** First serial number; default derived from the clock so that a restarted simulator does not
   *  hand out ICCIDs an operator database already holds. */
  iccidSerialStart?: number;
  /** Profile Types the SM-DP+ knows; any non-empty type when omitted. */
  profileTypes?: readonly string[];
  /** Profile Type for profiles adopted or ordered without a type. Default `default`. */
  defaultProfileType?: string;
  /** Most profiles generated per Profile Type (then 8.2.5/3.7); unlimited when omitted. */
  maxProfilesPerType?: number;
  /** downloadOrder with an ICCID the SM-DP+ does not hold creates it instead of answering
   *  8.2.1/3.9. Default false (what a real SM-DP+ does). */
  adoptUnknownIccids?: boolean;
  seedProfiles?: ReadonlyArray<{ iccid: string; profileType?: string }>;
  now?: () => Date;
}

const ORDERED_STATES: readonly ProfileState[] = ['Allocated', 'Linked', 'Confirmed', 'Released', 'Error'];
const DOWNLOADED_STATES: readonly ProfileState[] = ['Downloaded', 'Installed', 'Enabled'];

export function luhnCheckDigit(digits: string): number {
  let sum = 0;
  let double = true; // the check digit will be appended on the right
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return (10 - (sum % 10)) % 10;
}

const MATCHING_ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function generateMatchingId(): string {
  const groups: string[] = [];
  for (let g = 0; g < 4; g++) {
    let s = '';
    for (let i = 0; i < 5; i++) s += MATCHING_ID_ALPHABET[randomInt(MATCHING_ID_ALPHABET.length)];
    groups.push(s);
  }
  return groups.join('-');
}

export function generateEid(): string {
  let s = '89049032';
  while (s.length < 32) s += String(randomInt(10));
  return s;
}

export class ProfileStore {
  private readonly profiles = new Map<string, SimProfile>();
  private readonly iccidPrefix: string;
  private serial: number;
  private readonly serialDigits: number;
  private readonly now: () => Date;

  constructor(private readonly options: ProfileStoreOptions = {}) {
    this.iccidPrefix = options.iccidPrefix ?? '898801';
    if (!/^[0-9]{2,12}$/.test(this.iccidPrefix)) throw new Error('iccidPrefix must be 2-12 digits');
    this.serialDigits = 19 - this.iccidPrefix.length;
    const modulo = 10 ** this.serialDigits;
    this.serial = (options.iccidSerialStart ?? Date.now() * 10) % modulo;
    this.now = options.now ?? (() => new Date());
    for (const seed of options.seedProfiles ?? []) this.create(seed.iccid, seed.profileType ?? this.defaultType, 'seed');
  }

  private get defaultType(): string {
    return this.options.defaultProfileType ?? this.options.profileTypes?.[0] ?? 'default';
  }

  get(iccid: string): SimProfile | undefined {
    return this.profiles.get(iccid);
  }

  list(): SimProfile[] {
    return [...this.profiles.values()];
  }

  findByMatchingId(matchingId: string): SimProfile | undefined {
    for (const p of this.profiles.values()) if (p.matchingId === matchingId && p.state !== 'Available' && p.state !== 'Unavailable') return p;
    return undefined;
  }

  // ---- ES2+ functions ---------------------------------------------------------------------

  downloadOrder(req: { eid?: string; iccid?: string; profileType?: string }): Outcome<{ iccid: string }> {
    if (req.profileType !== undefined && this.options.profileTypes && !this.options.profileTypes.includes(req.profileType)) {
      return refuse(Es2PlusCodes.ProfileTypeUnknown, `unknown Profile Type '${req.profileType}'`, req.profileType);
    }
    let profile: SimProfile | undefined;
    if (req.iccid !== undefined) {
      profile = this.profiles.get(req.iccid);
      if (!profile) {
        if (!this.options.adoptUnknownIccids) return refuse(Es2PlusCodes.IccidUnknown, 'unknown ICCID', req.iccid);
        profile = this.create(req.iccid, req.profileType ?? this.defaultType, 'downloadOrder');
      }
      if (profile.state !== 'Available') return refuse(Es2PlusCodes.ProfileNotAvailable, `Profile is ${profile.state}`, req.iccid);
      if (req.profileType !== undefined && req.profileType !== profile.profileType) {
        return refuse(Es2PlusCodes.ProfileTypeMismatch, `Profile is of type '${profile.profileType}'`, req.iccid);
      }
    } else {
      const type = req.profileType ?? this.defaultType;
      profile = this.list().find((p) => p.profileType === type && p.state === 'Available');
      if (!profile) {
        const count = this.list().filter((p) => p.profileType === type).length;
        if (this.options.maxProfilesPerType !== undefined && count >= this.options.maxProfilesPerType) {
          return refuse(Es2PlusCodes.ProfileTypeExhausted, `no more Profile of type '${type}'`, type);
        }
        profile = this.create(this.nextIccid(), type, 'downloadOrder');
      }
    }
    if (req.eid !== undefined) profile.eid = req.eid;
    this.transition(profile, req.eid !== undefined ? 'Linked' : 'Allocated', 'downloadOrder');
    return ok({ iccid: profile.iccid });
  }

  confirmOrder(req: {
    iccid: string;
    eid?: string;
    matchingId?: string;
    confirmationCode?: string;
    smdsAddress?: string;
    releaseFlag: boolean;
  }): Outcome<{ eid?: string; matchingId: string }> {
    const p = this.profiles.get(req.iccid);
    if (!p) return refuse(Es2PlusCodes.IccidUnknown, 'unknown ICCID', req.iccid);
    if (p.state !== 'Allocated' && p.state !== 'Linked') {
      return refuse(Es2PlusCodes.ProfileInvalidTransition, `Profile is ${p.state}, not Allocated or Linked`, req.iccid);
    }
    if (req.eid !== undefined && p.eid !== undefined && req.eid !== p.eid) {
      return refuse(Es2PlusCodes.EidMismatch, 'a different EID is associated with this ICCID', req.eid);
    }
    const eid = req.eid ?? p.eid;
    if (req.smdsAddress !== undefined && eid === undefined) return refuse(Es2PlusCodes.EidMissing, 'EID required with an SM-DS address');
    if (req.matchingId === '' && eid === undefined) return refuse(Es2PlusCodes.EidMissing, 'EID required with a zero-length Matching ID');
    let matchingId = req.matchingId;
    if (matchingId !== undefined && matchingId !== '') {
      const other = this.findByMatchingId(matchingId);
      if (other && other.iccid !== p.iccid) return refuse(Es2PlusCodes.MatchingIdConflict, 'Matching ID already in use', matchingId);
    }
    if (matchingId === undefined) {
      do matchingId = generateMatchingId();
      while (this.findByMatchingId(matchingId));
    }
    p.matchingId = matchingId;
    if (eid !== undefined) p.eid = eid;
    if (req.confirmationCode !== undefined) p.confirmationCode = req.confirmationCode;
    if (req.smdsAddress !== undefined) p.smdsAddress = req.smdsAddress;
    p.releaseFlag = req.releaseFlag;
    this.transition(p, req.releaseFlag ? 'Released' : 'Confirmed', 'confirmOrder');
    return ok({ ...(eid !== undefined ? { eid } : {}), matchingId });
  }

  cancelOrder(req: { iccid: string; eid?: string; matchingId?: string; finalProfileStatusIndicator: FinalProfileStatusIndicator }): Outcome<void> {
    const p = this.profiles.get(req.iccid);
    if (!p) return refuse(Es2PlusCodes.IccidUnknown, 'unknown ICCID', req.iccid);
    if (DOWNLOADED_STATES.includes(p.state)) return refuse(Es2PlusCodes.ProfileNotAvailable, `Profile already ${p.state}`, req.iccid);
    if (!ORDERED_STATES.includes(p.state)) return refuse(Es2PlusCodes.ProfileInvalidTransition, `no order to cancel: Profile is ${p.state}`, req.iccid);
    if (req.eid !== undefined && p.eid !== undefined && req.eid !== p.eid) {
      return refuse(Es2PlusCodes.EidMismatch, 'a different EID is associated with this ICCID', req.eid);
    }
    if (req.matchingId !== undefined && p.matchingId !== undefined && req.matchingId !== p.matchingId) {
      return refuse(Es2PlusCodes.MatchingIdMismatch, 'a different Matching ID is associated with this ICCID', req.matchingId);
    }
    this.resetOrder(p);
    this.transition(p, req.finalProfileStatusIndicator, 'cancelOrder');
    return ok(undefined);
  }

  releaseProfile(req: { iccid: string }): Outcome<void> {
    const p = this.profiles.get(req.iccid);
    if (!p) return refuse(Es2PlusCodes.IccidUnknown, 'unknown ICCID', req.iccid);
    if (p.state !== 'Confirmed') return refuse(Es2PlusCodes.ProfileInvalidTransition, `Profile is ${p.state}, not Confirmed`, req.iccid);
    this.transition(p, 'Released', 'releaseProfile');
    return ok(undefined);
  }

  // ---- device side (ES9+/ES8+ abstracted away) ----------------------------------------------

  /** Which Profile a device asking with this Matching ID (or, without one, this EID) gets. */
  findForDownload(req: { matchingId?: string; eid?: string }): Outcome<SimProfile> {
    let p: SimProfile | undefined;
    if (req.matchingId) {
      p = this.findByMatchingId(req.matchingId);
      if (!p) return refuse({ subjectCode: '8.2.6', reasonCode: '3.8' }, 'unknown Matching ID', req.matchingId);
    } else {
      if (!req.eid) return refuse(Es2PlusCodes.EidMissing, 'EID required without a Matching ID');
      p = this.list().find((x) => x.eid === req.eid && (x.matchingId === '' || x.smdsAddress !== undefined) && (x.state === 'Released' || x.state === 'Error'));
      if (!p) return refuse({ subjectCode: '8.1.1', reasonCode: '3.8' }, 'no pending order for this EID', req.eid);
    }
    if (DOWNLOADED_STATES.includes(p.state)) return refuse(Es2PlusCodes.ProfileNotAvailable, `Profile already ${p.state}`, p.iccid);
    if (p.state === 'Confirmed') return refuse({ subjectCode: '8.2', reasonCode: '3.7' }, 'Profile not released', p.iccid);
    if (p.state !== 'Released' && p.state !== 'Error') return refuse(Es2PlusCodes.ProfileInvalidTransition, `Profile is ${p.state}`, p.iccid);
    return ok(p);
  }

  /** One device-side step; refuses when the order changed under the device (e.g. cancelled). */
  advance(iccid: string, to: 'Downloaded' | 'Installed' | 'Enabled', eid: string): Outcome<SimProfile> {
    const p = this.profiles.get(iccid);
    if (!p) return refuse(Es2PlusCodes.IccidUnknown, 'unknown ICCID', iccid);
    const from: Record<typeof to, readonly ProfileState[]> = {
      Downloaded: ['Released', 'Error'],
      Installed: ['Downloaded'],
      Enabled: ['Installed'],
    };
    if (!from[to].includes(p.state)) return refuse(Es2PlusCodes.ProfileInvalidTransition, `Profile is ${p.state}, cannot become ${to}`, iccid);
    if (p.eid !== undefined && p.eid !== eid) return refuse(Es2PlusCodes.EidMismatch, 'a different EID is associated with this ICCID', eid);
    p.eid = eid;
    if (to === 'Downloaded') p.downloadAttempts += 1;
    delete p.lastError;
    this.transition(p, to, 'device');
    return ok(p);
  }

  fail(iccid: string, error: { subjectCode: string; reasonCode: string; message: string }): void {
    const p = this.profiles.get(iccid);
    if (!p) return;
    p.lastError = error;
    this.transition(p, 'Error', 'device');
  }

  // ---- internals ----------------------------------------------------------------------------

  private create(iccid: string, profileType: string, by: string): SimProfile {
    const p: SimProfile = { iccid, profileType, state: 'Available', downloadAttempts: 0, history: [] };
    this.profiles.set(iccid, p);
    p.history.push({ at: this.now().toISOString(), state: 'Available', by });
    return p;
  }

  private nextIccid(): string {
    for (;;) {
      const serial = String(this.serial).padStart(this.serialDigits, '0');
      this.serial = (this.serial + 1) % 10 ** this.serialDigits;
      const body = this.iccidPrefix + serial;
      const iccid = body + String(luhnCheckDigit(body));
      if (!this.profiles.has(iccid)) return iccid;
    }
  }

  private resetOrder(p: SimProfile): void {
    delete p.eid;
    delete p.matchingId;
    delete p.confirmationCode;
    delete p.smdsAddress;
    delete p.releaseFlag;
    delete p.lastError;
    p.downloadAttempts = 0;
  }

  private transition(p: SimProfile, to: ProfileState, by: string): void {
    p.state = to;
    p.history.push({ at: this.now().toISOString(), state: to, by });
  }
}
