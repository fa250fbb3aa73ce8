/**
 * Local SM-DP+ simulator speaking GSMA SGP.22 ES2+ (JSON over HTTP, or HTTPS with mutual TLS when
 * given certificates), for development, tests and demos. See README.md for the endpoints.
 *
 * - ES2+ (Operator → SM-DP+): POST /gsma/rsp2/es2plus/{downloadOrder,confirmOrder,cancelOrder,releaseProfile}
 *   idempotent on (functionRequesterIdentifier, function, functionCallIdentifier).
 * - ES2+ (SM-DP+ → Operator): HandleDownloadProgressInfo to `notificationUrl` after device events.
 * - Device side and admin: /sim/device/download, /sim/profiles[/:iccid], /sim/faults, /sim/config,
 *   /sim/notifications, /health.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  ES2PLUS_ADMIN_PROTOCOL,
  ES2PLUS_ADMIN_PROTOCOL_HEADER,
  ES2PLUS_PATH_PREFIX,
  ES2PLUS_SMDP_FUNCTIONS,
  Es2PlusCodes,
  failedResponse,
  isMissingElement,
  isRetryableStatusCode,
  NotificationPoint,
  REQUEST_SCHEMAS,
  RequestHeaderSchema,
  DownloadOrderRequestSchema,
  ConfirmOrderRequestSchema,
  CancelOrderRequestSchema,
  ReleaseProfileRequestSchema,
  successHeader,
  type Es2PlusSmdpFunction,
} from '../../domain/sims/es2plus.types';
import { buildActivationCode, parseActivationCode } from '../../domain/sims/es2plus.activation-code';
import { FaultBook, SmdpFaultsSchema, type SmdpFaults } from './faults';
import { Notifier, sleep, type NotificationRecord } from './notifier';
import { generateEid, ProfileStore, type ProfileState, type ProfileStoreOptions, type Refusal, type SimProfile } from './profiles';

export type { SmdpFaults } from './faults';
export type { NotificationRecord } from './notifier';
export type { ProfileState, SimProfile } from './profiles';

export interface AutoDeviceOptions {
  /** Wait after confirmOrder(releaseFlag=true) / releaseProfile before the device downloads. Default 50 ms. */
  delayMs?: number;
  /** EID the automatic device uses when the order has none; random when omitted. */
  eid?: string;
}

export interface SmdpPlusSimulatorOptions extends Omit<ProfileStoreOptions, 'now'> {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Operator endpoint for HandleDownloadProgressInfo (full URL). */
  notificationUrl?: string;
  faults?: SmdpFaults;
  /** SM-DP+ address returned by confirmOrder and put in Activation Codes. Default `smdp-plus.simulator.local`. */
  smdpAddress?: string;
  /** The simulator's own functionRequesterIdentifier in notifications. */
  functionRequesterIdentifier?: string;
  /** Operator identities accepted; any when omitted (else 1.1/1.1). */
  allowedRequesters?: readonly string[];
  /** Play the device automatically after a Profile is released. */
  autoDevice?: boolean | AutoDeviceOptions;
  /** Pause between device steps (download → install → enable). Default 10 ms. */
  deviceStepDelayMs?: number;
  notificationRetry?: { attempts?: number; backoffMs?: number; maxBackoffMs?: number };
  notificationTimeoutMs?: number;
  /** Serve HTTPS; with `ca` the client must present a certificate signed by it (mutual TLS). */
  tls?: { cert: string; key: string; ca?: string };
  /** Refuse ES2+ requests without `X-Admin-Protocol: gsma/rsp/v2.*`. Default true. */
  requireAdminProtocolHeader?: boolean;
  /** Remembered answers for idempotency. Default 10 000. */
  idempotencyCacheSize?: number;
  /** Structured log sink; silent when omitted. */
  log?: (event: Record<string, unknown>) => void;
}

export interface DeviceDownloadInput {
  matchingId?: string;
  activationCode?: string;
  eid?: string;
}

export type DeviceDownloadResult =
  | { ok: true; profile: ProfileView }
  | { ok: false; step: 'eligibility' | 'download' | 'install' | 'enable'; error: Refusal; profile?: ProfileView };

export interface ProfileView {
  iccid: string;
  profileType: string;
  state: ProfileState;
  eid?: string;
  matchingId?: string;
  smdsAddress?: string;
  releaseFlag?: boolean;
  activationCode?: string;
  downloadAttempts: number;
  lastError?: { subjectCode: string; reasonCode: string; message: string };
  history: SimProfile['history'];
}

export interface SmdpPlusSimulator {
  /** Base URL, e.g. http://127.0.0.1:8701 — give it to the ES2+ client as baseUrl. */
  readonly url: string;
  readonly port: number;
  readonly smdpAddress: string;
  close(): Promise<void>;
  setFaults(faults: SmdpFaults): SmdpFaults;
  mergeFaults(faults: SmdpFaults): SmdpFaults;
  clearFaults(): void;
  getFaults(): SmdpFaults;
  setNotificationUrl(url: string | undefined): void;
  setAutoDevice(auto: boolean | AutoDeviceOptions): void;
  getProfile(iccid: string): ProfileView | undefined;
  listProfiles(): ProfileView[];
  deviceDownload(input: DeviceDownloadInput): Promise<DeviceDownloadResult>;
  /** Every notification so far, with its delivery outcome. */
  readonly notifications: readonly NotificationRecord[];
  /** Waits for queued notifications (and running automatic devices) to settle. */
  settle(): Promise<void>;
  /** Waits until the Profile reaches `state` (polling), or throws after timeoutMs. */
  waitForState(iccid: string, state: ProfileState, timeoutMs?: number): Promise<ProfileView>;
}

type Answer = { httpStatus: number; body: unknown };

const DeviceDownloadSchema = z.object({
  matchingId: z.string().max(255).optional(),
  activationCode: z.string().max(1024).optional(),
  eid: z.string().regex(/^[0-9]{32}$/).optional(),
});

const AutoDeviceSchema = z.union([
  z.boolean(),
  z.object({ delayMs: z.number().int().min(0).max(3_600_000).optional(), eid: z.string().regex(/^[0-9]{32}$/).optional() }),
]);

const ConfigSchema = z.strictObject({
  notificationUrl: z.union([z.url(), z.null()]).optional(),
  autoDevice: AutoDeviceSchema.optional(),
  deviceStepDelayMs: z.number().int().min(0).max(3_600_000).optional(),
});

export async function createSmdpPlusSimulator(options: SmdpPlusSimulatorOptions = {}): Promise<SmdpPlusSimulator> {
  const log = options.log ?? (() => undefined);
  const host = options.host ?? '127.0.0.1';
  const smdpAddress = options.smdpAddress ?? 'smdp-plus.simulator.local';
  const requireProtocol = options.requireAdminProtocolHeader ?? true;
  const cacheSize = options.idempotencyCacheSize ?? 10_000;
  const abort = new AbortController();
  const faults = new FaultBook(options.faults);
  const store = new ProfileStore(options);
  let notificationUrl = options.notificationUrl;
  let autoDevice: AutoDeviceOptions | undefined = normalizeAuto(options.autoDevice);
  let deviceStepDelayMs = options.deviceStepDelayMs ?? 10;
  let closed = false;

  const notifier = new Notifier({
    getUrl: () => notificationUrl,
    functionRequesterIdentifier: options.functionRequesterIdentifier ?? 'smdp-plus-simulator',
    faults,
    signal: abort.signal,
    log,
    ...(options.notificationRetry?.attempts !== undefined ? { attempts: options.notificationRetry.attempts } : {}),
    ...(options.notificationRetry?.backoffMs !== undefined ? { backoffMs: options.notificationRetry.backoffMs } : {}),
    ...(options.notificationRetry?.maxBackoffMs !== undefined ? { maxBackoffMs: options.notificationRetry.maxBackoffMs } : {}),
    ...(options.notificationTimeoutMs !== undefined ? { requestTimeoutMs: options.notificationTimeoutMs } : {}),
  });

  /** functionCallIdentifier → the first answer (a promise, so concurrent repeats wait for it). */
  const answers = new Map<string, Promise<Answer | null>>();
  const remember = (key: string, answer: Promise<Answer | null>): void => {
    answers.set(key, answer);
    while (answers.size > cacheSize) answers.delete(answers.keys().next().value as string);
  };

  const autoTimers = new Set<NodeJS.Timeout>();
  const devices = new Set<Promise<unknown>>();

  // ---- views ----------------------------------------------------------------------------------

  const view = (p: SimProfile): ProfileView => {
    const v: ProfileView = {
      iccid: p.iccid,
      profileType: p.profileType,
      state: p.state,
      downloadAttempts: p.downloadAttempts,
      history: p.history.map((h) => ({ ...h })),
    };
    if (p.eid !== undefined) v.eid = p.eid;
    if (p.matchingId !== undefined) v.matchingId = p.matchingId;
    if (p.smdsAddress !== undefined) v.smdsAddress = p.smdsAddress;
    if (p.releaseFlag !== undefined) v.releaseFlag = p.releaseFlag;
    if (p.matchingId) v.activationCode = buildActivationCode(smdpAddress, p.matchingId);
    if (p.lastError) v.lastError = { ...p.lastError };
    return v;
  };

  // ---- device side ------------------------------------------------------------------------------

  const notify = (p: SimProfile, point: number, status: 'Executed-Success' | 'Failed', scd?: Refusal): void => {
    notifier.enqueue({
      iccid: p.iccid,
      ...(p.eid !== undefined ? { eid: p.eid } : {}),
      profileType: p.profileType,
      notificationPointId: point,
      status,
      ...(scd ? { statusCodeData: { subjectCode: scd.subjectCode, reasonCode: scd.reasonCode, message: scd.message } } : {}),
    });
  };

  const deviceDownload = async (input: DeviceDownloadInput): Promise<DeviceDownloadResult> => {
    let matchingId = input.matchingId;
    if (input.activationCode !== undefined) {
      try {
        const ac = parseActivationCode(input.activationCode);
        if (ac.smdpAddress !== smdpAddress) log({ msg: 'activation code for another SM-DP+ address', expected: smdpAddress, got: ac.smdpAddress });
        matchingId = ac.matchingId;
      } catch (e) {
        return { ok: false, step: 'eligibility', error: { ...Es2PlusCodes.MatchingIdInvalid, message: (e as Error).message } };
      }
    }
    const found = store.findForDownload({ ...(matchingId !== undefined ? { matchingId } : {}), ...(input.eid !== undefined ? { eid: input.eid } : {}) });
    if (!found.ok) return { ok: false, step: 'eligibility', error: found.refusal };
    const p = found.value;
    const eid = input.eid ?? p.eid ?? autoDevice?.eid ?? generateEid();
    if (p.eid !== undefined && p.eid !== eid) {
      // Eligibility check fails: tell the Operator (check point 1).
      const refusal: Refusal = { ...Es2PlusCodes.EidMismatch, message: 'device EID differs from the EID of the order', subjectIdentifier: eid };
      notify(p, NotificationPoint.EligibilityAndRetryLimitCheck, 'Failed', refusal);
      return { ok: false, step: 'eligibility', error: refusal, profile: view(p) };
    }
    const steps = [
      { step: 'download', to: 'Downloaded', point: NotificationPoint.BppDownload },
      { step: 'install', to: 'Installed', point: NotificationPoint.BppInstallation },
      { step: 'enable', to: 'Enabled', point: NotificationPoint.ProfileEnabled },
    ] as const;
    for (const s of steps) {
      if (s.step !== 'download') await sleep(deviceStepDelayMs, abort.signal);
      if (closed) return { ok: false, step: s.step, error: { ...Es2PlusCodes.ExecutionError, message: 'simulator closed' } };
      const injected = faults.takeDownloadError(s.step);
      if (injected) {
        const refusal: Refusal = { subjectCode: injected.subjectCode, reasonCode: injected.reasonCode, message: injected.message ?? `${s.step} failed (injected)` };
        if (p.eid === undefined) p.eid = eid;
        store.fail(p.iccid, refusal);
        notify(p, s.point, 'Failed', refusal);
        log({ msg: 'device step failed (fault)', iccid: p.iccid, step: s.step });
        return { ok: false, step: s.step, error: refusal, profile: view(p) };
      }
      const r = store.advance(p.iccid, s.to, eid);
      if (!r.ok) return { ok: false, step: s.step, error: r.refusal, profile: view(p) };
      notify(p, s.point, 'Executed-Success');
      log({ msg: 'device step', iccid: p.iccid, state: s.to });
    }
    return { ok: true, profile: view(p) };
  };

  const scheduleAutoDevice = (iccid: string): void => {
    if (!autoDevice || closed) return;
    const auto = autoDevice;
    const timer = setTimeout(() => {
      autoTimers.delete(timer);
      const p = store.get(iccid);
      if (!p || p.state !== 'Released' || closed) return;
      const run = deviceDownload({
        ...(p.matchingId ? { matchingId: p.matchingId } : {}),
        eid: p.eid ?? auto.eid ?? generateEid(),
      })
        .then((r) => log({ msg: 'automatic device finished', iccid, ok: r.ok }))
        .catch((e: unknown) => log({ msg: 'automatic device crashed', iccid, error: String(e) }));
      devices.add(run);
      void run.finally(() => devices.delete(run));
    }, auto.delayMs ?? 50);
    autoTimers.add(timer);
  };

  // ---- ES2+ functions -------------------------------------------------------------------------

  const execute = (fn: Es2PlusSmdpFunction, body: unknown): Answer => {
    const parsed = REQUEST_SCHEMAS[fn].safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const missing = parsed.error.issues.some((i) => isMissingElement(body, i.path));
      const code =
        issue?.code === 'custom'
          ? Es2PlusCodes.ConditionalElementMissing // downloadOrder without iccid nor profileType
          : fn === 'cancelOrder' && missing && issue?.path[0] !== 'header'
            ? Es2PlusCodes.IccidMissing
            : missing
              ? Es2PlusCodes.MandatoryElementMissing
              : Es2PlusCodes.InvalidInput;
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      return { httpStatus: 200, body: failedResponse(code, msg, issue?.path.join('.')) };
    }
    switch (fn) {
      case 'downloadOrder': {
        const r = store.downloadOrder(DownloadOrderRequestSchema.parse(body));
        return r.ok ? ok({ iccid: r.value.iccid }) : refused(r.refusal);
      }
      case 'confirmOrder': {
        const req = ConfirmOrderRequestSchema.parse(body);
        const r = store.confirmOrder(req);
        if (!r.ok) return refused(r.refusal);
        if (req.releaseFlag) scheduleAutoDevice(req.iccid);
        return ok({ ...(r.value.eid !== undefined ? { eid: r.value.eid } : {}), matchingId: r.value.matchingId, smdpAddress });
      }
      case 'cancelOrder': {
        const r = store.cancelOrder(CancelOrderRequestSchema.parse(body));
        return r.ok ? ok({}) : refused(r.refusal);
      }
      case 'releaseProfile': {
        const req = ReleaseProfileRequestSchema.parse(body);
        const r = store.releaseProfile(req);
        if (!r.ok) return refused(r.refusal);
        scheduleAutoDevice(req.iccid);
        return ok({});
      }
    }
  };

  const handleEs2Plus = async (fn: Es2PlusSmdpFunction, req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> => {
    const protocol = req.headers[ES2PLUS_ADMIN_PROTOCOL_HEADER.toLowerCase()];
    if (requireProtocol && (typeof protocol !== 'string' || !/^gsma\/rsp\/v2\./.test(protocol))) {
      return send(res, 400, failedResponse(Es2PlusCodes.ProtocolVersionUnsupported, `${ES2PLUS_ADMIN_PROTOCOL_HEADER} must be gsma/rsp/v2.x.x`));
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, failedResponse(Es2PlusCodes.InvalidInput, 'body is not JSON'));
    }
    const header = RequestHeaderSchema.safeParse((body as { header?: unknown } | null)?.header);
    if (!header.success) return send(res, 200, failedResponse(Es2PlusCodes.MandatoryElementMissing, 'header with functionRequesterIdentifier and functionCallIdentifier required', 'header'));
    const { functionRequesterIdentifier, functionCallIdentifier } = header.data;
    if (options.allowedRequesters && !options.allowedRequesters.includes(functionRequesterIdentifier)) {
      return send(res, 200, failedResponse(Es2PlusCodes.RequesterUnknown, 'unknown function requester', functionRequesterIdentifier));
    }

    // Idempotency: a repeated functionCallIdentifier gets the first answer, faults or not; a repeat
    // arriving while the first is still being worked on waits for it.
    const key = `${functionRequesterIdentifier}\u0000${fn}\u0000${functionCallIdentifier}`;
    for (;;) {
      const known = answers.get(key);
      if (!known) break;
      const a = await known;
      if (a) {
        log({ msg: 'repeated call answered from memory', fn, functionCallIdentifier });
        return send(res, a.httpStatus, a.body);
      }
      // The first attempt ended without a remembered answer (fault): this one is a fresh call.
    }
    let settle!: (a: Answer | null) => void;
    remember(key, new Promise<Answer | null>((r) => (settle = r)));
    const keep = (a: Answer): Answer => {
      settle(a);
      return a;
    };
    const forget = (): void => {
      if (answers.get(key)) answers.delete(key);
      settle(null);
    };
    try {
      const latency = faults.latencyMs(fn);
      if (latency > 0) await sleep(latency, abort.signal);
      if (faults.takeReset(fn)) {
        forget();
        log({ msg: 'connection reset (fault)', fn, functionCallIdentifier });
        req.socket.destroy();
        return;
      }
      const httpStatus = faults.takeHttpStatus(fn);
      if (httpStatus !== undefined) {
        forget();
        log({ msg: 'HTTP error (fault)', fn, httpStatus });
        res.writeHead(httpStatus, { 'Content-Type': 'text/plain' }).end(`simulated HTTP ${httpStatus}`);
        return;
      }
      const error = faults.takeError(fn);
      if (error) {
        const answer: Answer = { httpStatus: 200, body: failedResponse(error, error.message, undefined, error.status ?? 'Failed') };
        // Transient refusals are not remembered, so a retry with the same identifier can succeed.
        if (error.status !== 'Expired' && !isRetryableStatusCode(error.subjectCode, error.reasonCode)) keep(answer);
        else forget();
        log({ msg: 'refused (fault)', fn, subjectCode: error.subjectCode, reasonCode: error.reasonCode });
        return send(res, answer.httpStatus, answer.body);
      }
      const timeout = faults.takeTimeout(fn);
      if (timeout) {
        log({ msg: 'not answering in time (fault)', fn, ms: timeout.ms, execute: timeout.execute ?? true });
        if (timeout.execute ?? true) {
          const answer = keep(execute(fn, body));
          await sleep(timeout.ms, abort.signal);
          return send(res, answer.httpStatus, answer.body);
        }
        forget();
        await sleep(timeout.ms, abort.signal);
        req.socket.destroy();
        return;
      }
      const answer = keep(execute(fn, body));
      log({ msg: 'es2+', fn, functionCallIdentifier, status: (answer.body as { header: { functionExecutionStatus: { status: string } } }).header.functionExecutionStatus.status });
      return send(res, answer.httpStatus, answer.body);
    } catch (e) {
      forget();
      throw e;
    }
  };

  // ---- admin ------------------------------------------------------------------------------------

  const handleAdmin = async (method: string, path: string, res: http.ServerResponse, raw: string): Promise<void> => {
    const json = (): unknown => (raw.trim() === '' ? {} : JSON.parse(raw));
    if (path === '/health' && method === 'GET') return send(res, 200, { ok: true });
    if (path === '/sim/faults') {
      if (method === 'GET') return send(res, 200, faults.snapshot());
      if (method === 'DELETE') {
        faults.clear();
        return send(res, 200, faults.snapshot());
      }
      if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
        const parsed = SmdpFaultsSchema.safeParse(json());
        if (!parsed.success) return send(res, 400, { error: 'invalid faults', issues: parsed.error.issues });
        const now = method === 'PATCH' ? faults.merge(parsed.data) : faults.set(parsed.data);
        log({ msg: 'faults changed', faults: now });
        return send(res, 200, now);
      }
    }
    if (path === '/sim/config' && method === 'POST') {
      const parsed = ConfigSchema.safeParse(json());
      if (!parsed.success) return send(res, 400, { error: 'invalid config', issues: parsed.error.issues });
      if (parsed.data.notificationUrl !== undefined) notificationUrl = parsed.data.notificationUrl ?? undefined;
      if (parsed.data.autoDevice !== undefined) autoDevice = normalizeAuto(parsed.data.autoDevice);
      if (parsed.data.deviceStepDelayMs !== undefined) deviceStepDelayMs = parsed.data.deviceStepDelayMs;
      return send(res, 200, { notificationUrl: notificationUrl ?? null, autoDevice: autoDevice ?? false, deviceStepDelayMs });
    }
    if (path === '/sim/profiles' && method === 'GET') return send(res, 200, store.list().map(view));
    const m = /^\/sim\/profiles\/([0-9A-Fa-f]{18,20})$/.exec(path);
    if (m && method === 'GET') {
      const p = store.get(m[1] as string);
      return p ? send(res, 200, view(p)) : send(res, 404, { error: 'unknown ICCID' });
    }
    if (path === '/sim/device/download' && method === 'POST') {
      const parsed = DeviceDownloadSchema.safeParse(json());
      if (!parsed.success) return send(res, 400, { error: 'invalid request', issues: parsed.error.issues });
      if (parsed.data.matchingId === undefined && parsed.data.activationCode === undefined && parsed.data.eid === undefined) {
        return send(res, 400, { error: 'matchingId, activationCode or eid required' });
      }
      const r = await trackDevice(deviceDownload(stripUndefined(parsed.data)));
      return send(res, deviceHttpStatus(r), r);
    }
    if (path === '/sim/notifications' && method === 'GET') return send(res, 200, notifier.records);
    return send(res, 404, { error: `no route ${method} ${path}` });
  };

  const trackDevice = <T>(p: Promise<T>): Promise<T> => {
    devices.add(p);
    void p.finally(() => devices.delete(p)).catch(() => undefined);
    return p;
  };

  // ---- server ------------------------------------------------------------------------------------

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void (async () => {
      const raw = await readBody(req, 1 << 20);
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const method = req.method ?? 'GET';
      if (path.startsWith(`${ES2PLUS_PATH_PREFIX}/`)) {
        const fn = path.slice(ES2PLUS_PATH_PREFIX.length + 1);
        if (method !== 'POST' || !(ES2PLUS_SMDP_FUNCTIONS as readonly string[]).includes(fn)) return send(res, 404, failedResponse(Es2PlusCodes.InvalidInput, `unknown function ${fn}`));
        return handleEs2Plus(fn as Es2PlusSmdpFunction, req, res, raw);
      }
      return handleAdmin(method, path, res, raw);
    })().catch((e: unknown) => {
      log({ msg: 'request failed', error: String(e) });
      if (e instanceof SyntaxError) return send(res, 400, { error: 'body is not JSON' });
      if (e instanceof BodyTooLarge) return send(res, 413, { error: 'body too large' });
      send(res, 500, failedResponse(Es2PlusCodes.ExecutionError, 'simulator error'));
    });
  };

  const server: http.Server = options.tls
    ? https.createServer(
        { cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true } : {}) },
        onRequest,
      )
    : http.createServer(onRequest);
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log({ msg: 'SM-DP+ simulator listening', url, smdpAddress, notificationUrl: notificationUrl ?? null, autoDevice: autoDevice ?? false });

  const settle = async (): Promise<void> => {
    for (;;) {
      await notifier.drain();
      if (devices.size === 0) {
        await notifier.drain();
        if (devices.size === 0) return;
      }
      await Promise.allSettled([...devices]);
    }
  };

  return {
    url,
    port,
    smdpAddress,
    get notifications() {
      return notifier.records;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of autoTimers) clearTimeout(t);
      autoTimers.clear();
      abort.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.allSettled([...devices]);
      await notifier.drain();
      notifier.close();
    },
    setFaults: (f) => faults.set(f),
    mergeFaults: (f) => faults.merge(f),
    clearFaults: () => faults.clear(),
    getFaults: () => faults.snapshot(),
    setNotificationUrl: (u) => {
      notificationUrl = u;
    },
    setAutoDevice: (a) => {
      autoDevice = normalizeAuto(a);
    },
    getProfile: (iccid) => {
      const p = store.get(iccid);
      return p ? view(p) : undefined;
    },
    listProfiles: () => store.list().map(view),
    deviceDownload: (input) => trackDevice(deviceDownload(input)),
    settle,
    async waitForState(iccid, state, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const p = store.get(iccid);
        if (p?.state === state) return view(p);
        if (Date.now() > deadline) throw new Error(`profile ${iccid} is ${p?.state ?? 'unknown'}, not ${state}, after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

// ---- helpers ----------------------------------------------------------------------------------

function ok(fields: Record<string, unknown>): Answer {
  return { httpStatus: 200, body: { header: successHeader(), ...fields } };
}

function refused(r: Refusal): Answer {
  return { httpStatus: 200, body: failedResponse(r, r.message, r.subjectIdentifier) };
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=UTF-8',
    [ES2PLUS_ADMIN_PROTOCOL_HEADER]: ES2PLUS_ADMIN_PROTOCOL,
    'Content-Length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

class BodyTooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** 200 when the device ran (even if a step failed: the failure is the simulated outcome);
 *  4xx when the device was refused before downloading. */
function deviceHttpStatus(r: DeviceDownloadResult): number {
  if (r.ok || r.step !== 'eligibility') return 200;
  if (r.error.reasonCode.startsWith('2.')) return 400;
  if (r.error.reasonCode === '3.8' || r.error.reasonCode === '3.9') return 404;
  return 409;
}

function normalizeAuto(a: boolean | AutoDeviceOptions | undefined): AutoDeviceOptions | undefined {
  if (a === undefined || a === false) return undefined;
  return a === true ? {} : { ...a };
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
