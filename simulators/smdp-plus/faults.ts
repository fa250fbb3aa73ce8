/**
 * Fault injection for the SM-DP+ simulator: the configuration format (validated with zod, the
 * same for `createSmdpPlusSimulator({ faults })`, `POST /sim/faults` and `SMDP_FAULTS`) and the
 * book that counts down faults limited to a number of occurrences.
 *
 * Example:
 * {
 *   "downloadOrder":  { "error": { "subjectCode": "8.2.5", "reasonCode": "3.7", "times": 1 } },
 *   "confirmOrder":   { "latencyMs": 300, "timeout": { "ms": 5000, "times": 2 } },
 *   "cancelOrder":    { "httpStatus": { "status": 503, "times": 1 } },
 *   "releaseProfile": { "reset": { "times": 1 } },
 *   "notifications":  { "delayMs": 1000, "drop": { "times": 1, "notificationPointIds": [3] } },
 *   "downloadError":  { "step": "install", "subjectCode": "8.2.10", "reasonCode": "4.2", "times": 1 }
 * }
 * `times` is a positive count or "always"; when omitted a fault applies always (until cleared).
 */
import { z } from 'zod';
import type { Es2PlusSmdpFunction } from '../../domain/sims/es2plus.types';

const Times = z.union([z.number().int().positive(), z.literal('always')]);
const Code = z.string().regex(/^[0-9]+(?:\.[0-9]+)*$/, 'status codes look like 8.2.1');
const Ms = z.number().int().min(0).max(3_600_000);

export const FunctionFaultSchema = z.strictObject({
  /** Answer `Failed` (or `Expired`) with these codes instead of executing the function. */
  error: z
    .strictObject({
      subjectCode: Code,
      reasonCode: Code,
      message: z.string().optional(),
      status: z.enum(['Failed', 'Expired']).optional(),
      times: Times.optional(),
    })
    .optional(),
  /** Delay every answer of this function by this many ms. */
  latencyMs: Ms.optional(),
  /** Do not answer within `ms`. With `execute` (default true) the function is executed and its
   *  answer remembered for the functionCallIdentifier — as if the answer were lost on the way —
   *  and sent after `ms` if the client still listens; without, the connection is closed after
   *  `ms` and nothing happens. */
  timeout: z.strictObject({ ms: Ms.refine((v) => v > 0, 'ms must be > 0'), execute: z.boolean().optional(), times: Times.optional() }).optional(),
  /** Answer this HTTP error status with a non-ES2+ body (a proxy or load balancer failing). */
  httpStatus: z.strictObject({ status: z.number().int().min(400).max(599), times: Times.optional() }).optional(),
  /** Close the connection without answering (nothing executed). */
  reset: z.strictObject({ times: Times.optional() }).optional(),
});
export type FunctionFault = z.infer<typeof FunctionFaultSchema>;

export const NotificationFaultSchema = z.strictObject({
  /** Wait this long before sending each notification. */
  delayMs: Ms.optional(),
  /** Never send the notification (optionally only for some notificationPointIds). */
  drop: z.strictObject({ times: Times.optional(), notificationPointIds: z.array(z.number().int().positive()).optional() }).optional(),
});

export const DownloadErrorFaultSchema = z.strictObject({
  /** The device-side step that fails; its notification carries status Failed with these codes
   *  and the Profile goes to `Error`. */
  step: z.enum(['download', 'install', 'enable']),
  subjectCode: Code,
  reasonCode: Code,
  message: z.string().optional(),
  times: Times.optional(),
});

export const SmdpFaultsSchema = z.strictObject({
  downloadOrder: FunctionFaultSchema.optional(),
  confirmOrder: FunctionFaultSchema.optional(),
  cancelOrder: FunctionFaultSchema.optional(),
  releaseProfile: FunctionFaultSchema.optional(),
  notifications: NotificationFaultSchema.optional(),
  downloadError: DownloadErrorFaultSchema.optional(),
});
export type SmdpFaults = z.infer<typeof SmdpFaultsSchema>;

type Limited = { times?: number | 'always' };

/** Holds the active faults; `take*` consumes one occurrence of a limited fault. */
export class FaultBook {
  private faults: SmdpFaults = {};

  constructor(initial?: SmdpFaults) {
    if (initial) this.set(initial);
  }

  /** Replaces all faults (validated; throws a ZodError when invalid). */
  set(faults: unknown): SmdpFaults {
    this.faults = structuredClone(SmdpFaultsSchema.parse(faults));
    return this.snapshot();
  }

  /** Replaces the given top-level entries only. */
  merge(faults: unknown): SmdpFaults {
    const parsed = SmdpFaultsSchema.parse(faults);
    this.faults = { ...this.faults, ...structuredClone(parsed) };
    return this.snapshot();
  }

  clear(): void {
    this.faults = {};
  }

  /** Current faults, with the remaining `times`. */
  snapshot(): SmdpFaults {
    return structuredClone(this.faults);
  }

  latencyMs(fn: Es2PlusSmdpFunction): number {
    return this.faults[fn]?.latencyMs ?? 0;
  }

  takeReset(fn: Es2PlusSmdpFunction): boolean {
    return this.takeFromFunction(fn, 'reset') !== undefined;
  }

  takeHttpStatus(fn: Es2PlusSmdpFunction): number | undefined {
    return this.takeFromFunction(fn, 'httpStatus')?.status;
  }

  takeError(fn: Es2PlusSmdpFunction): NonNullable<FunctionFault['error']> | undefined {
    return this.takeFromFunction(fn, 'error');
  }

  takeTimeout(fn: Es2PlusSmdpFunction): NonNullable<FunctionFault['timeout']> | undefined {
    return this.takeFromFunction(fn, 'timeout');
  }

  notificationDelayMs(): number {
    return this.faults.notifications?.delayMs ?? 0;
  }

  takeNotificationDrop(notificationPointId: number): boolean {
    const n = this.faults.notifications;
    const drop = n?.drop;
    if (!n || !drop) return false;
    if (drop.notificationPointIds && !drop.notificationPointIds.includes(notificationPointId)) return false;
    if (consume(drop)) delete n.drop;
    return true;
  }

  takeDownloadError(step: 'download' | 'install' | 'enable'): NonNullable<SmdpFaults['downloadError']> | undefined {
    const e = this.faults.downloadError;
    if (!e || e.step !== step) return undefined;
    const copy = structuredClone(e);
    if (consume(e)) delete this.faults.downloadError;
    return copy;
  }

  private takeFromFunction<K extends 'reset' | 'httpStatus' | 'error' | 'timeout'>(
    fn: Es2PlusSmdpFunction,
    key: K,
  ): NonNullable<FunctionFault[K]> | undefined {
    const f = this.faults[fn];
    const rule = f?.[key] as (Limited & NonNullable<FunctionFault[K]>) | undefined;
    if (!f || !rule) return undefined;
    const copy = structuredClone(rule);
    if (consume(rule)) delete f[key];
    return copy;
  }
}

/** Counts one occurrence down; true when the fault is used up. */
function consume(rule: Limited): boolean {
  if (rule.times === undefined || rule.times === 'always') return false;
  rule.times -= 1;
  return rule.times <= 0;
}
