/**
 * The network side's charging API: 3GPP TS 32.291 Nchf_ConvergedCharging v3 on plain `node:http`
 * (the hot path: no framework, no per-request allocations beyond the body and the answer).
 *
 *   POST /nchf-convergedcharging/v3/chargingdata                      create → 201 + Location
 *   POST /nchf-convergedcharging/v3/chargingdata/{ChargingDataRef}/update   → 200
 *   POST /nchf-convergedcharging/v3/chargingdata/{ChargingDataRef}/release  → 204
 *
 * Errors are TS 29.571 ProblemDetails (application/problem+json) with the TS 32.291 / TS 29.500
 * cause: 400 MANDATORY_IE_MISSING / MANDATORY_IE_INCORRECT / OPTIONAL_IE_INCORRECT (with
 * `invalidParams` as JSON pointers), INVALID_MSG_FORMAT (not JSON), CHARGING_FAILED (no
 * subscriber); 404 USER_UNKNOWN, CONTEXT_NOT_FOUND, RESOURCE_URI_STRUCTURE_NOT_FOUND;
 * 403 END_USER_REQUEST_DENIED (line pending or suspended); 401/403 for the API key;
 * 405, 411, 413, 415; 503 NF_CONGESTION_RISK when the engine's queue is full; 500
 * SYSTEM_FAILURE only for faults. Per rating group outcomes (QUOTA_LIMIT_REACHED,
 * RATING_FAILED, END_USER_SERVICE_DENIED) are result codes in multipleUnitInformation.
 *
 * Authentication: `Authorization: Bearer <API key>`, resolved by the injected `authenticate`
 * (role `network` or `admin` may call), cached per header value for `authCacheTtlMs`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChargingEngine } from '../../domain/charging/charging-engine';
import type { ChargingAnswer } from '../../domain/charging/charging.types';
import { compileRequestValidator, type InvalidParam } from './nchf-schemas';
import { mapCreate, mapUpdate, type MappingOptions } from './nchf-mapping';

export const NCHF_BASE = '/nchf-convergedcharging/v3/chargingdata';
const ALLOWED_ROLES = new Set(['network', 'admin']);

export interface ChargingServerDeps {
  engine: ChargingEngine;
  /** Resolves an `Authorization` header value to the caller's role (undefined = not a valid key). */
  authenticate: (authorization: string | undefined) => Promise<string | undefined>;
  /** MCCs of the home network (default 262, Germany, as the example tariff). */
  homeMccs?: string[];
  maxBodyBytes?: number;
  /** Answer 503 instead of queueing beyond this many operations. */
  maxQueue?: number;
  authCacheTtlMs?: number;
  onError?: (err: unknown) => void;
}

export interface ChargingServer {
  readonly server: http.Server;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

interface Problem {
  status: number;
  title: string;
  cause?: string;
  detail?: string;
  invalidParams?: InvalidParam[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 411: 'Length Required',
  413: 'Payload Too Large', 415: 'Unsupported Media Type', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function createChargingServer(deps: ChargingServerDeps): ChargingServer {
  const validate = compileRequestValidator();
  const mapping: MappingOptions = { ratingGroups: deps.engine.policy.ratingGroups, homeMccs: new Set(deps.homeMccs ?? ['262']) };
  const maxBody = deps.maxBodyBytes ?? 64 * 1024;
  const maxQueue = deps.maxQueue ?? 20_000;
  const authTtl = deps.authCacheTtlMs ?? 30_000;
  const authCache = new Map<string, { role: string | undefined; until: number }>();

  async function roleOf(header: string | undefined): Promise<string | undefined> {
    if (!header) return undefined;
    const hit = authCache.get(header);
    const now = Date.now();
    if (hit && hit.until > now) return hit.role;
    const role = await deps.authenticate(header);
    if (authCache.size > 10_000) authCache.clear();
    // Refusals are cached briefly, so a key created a moment ago works soon.
    authCache.set(header, { role, until: now + (role ? authTtl : Math.min(authTtl, 2_000)) });
    return role;
  }

  const server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true, requestTimeout: 30_000 }, (req, res) => {
    handle(req, res).catch((err) => {
      deps.onError?.(err);
      if (!res.headersSent) sendProblem(res, { status: 500, title: TITLES[500], cause: 'SYSTEM_FAILURE', detail: 'the charging function failed' });
      else res.destroy();
    });
  });
  server.headersTimeout = 31_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let kind: 'create' | 'update' | 'release';
    let ref = '';
    if (path === NCHF_BASE) kind = 'create';
    else if (path.startsWith(`${NCHF_BASE}/`)) {
      const rest = path.slice(NCHF_BASE.length + 1);
      const slash = rest.indexOf('/');
      const action = slash === -1 ? '' : rest.slice(slash + 1);
      ref = slash === -1 ? rest : decodeURIComponentSafe(rest.slice(0, slash));
      if ((action !== 'update' && action !== 'release') || ref === '' || ref.length > 128) {
        drain(req);
        return sendProblem(res, { status: 404, title: TITLES[404], cause: 'RESOURCE_URI_STRUCTURE_NOT_FOUND', detail: `no resource at ${path}` });
      }
      kind = action;
    } else {
      drain(req);
      return sendProblem(res, { status: 404, title: TITLES[404], cause: 'RESOURCE_URI_STRUCTURE_NOT_FOUND', detail: `no resource at ${path}` });
    }
    if (req.method !== 'POST') {
      drain(req);
      res.setHeader('Allow', 'POST');
      return sendProblem(res, { status: 405, title: TITLES[405], detail: `${req.method} is not allowed here; use POST` });
    }

    const role = await roleOf(req.headers.authorization);
    if (!role) {
      drain(req);
      res.setHeader('WWW-Authenticate', 'Bearer');
      return sendProblem(res, { status: 401, title: TITLES[401], detail: 'a valid API key is required: Authorization: Bearer <key>' });
    }
    if (!ALLOWED_ROLES.has(role)) {
      drain(req);
      return sendProblem(res, { status: 403, title: TITLES[403], detail: `the ${role} role may not use the charging API` });
    }

    const type = req.headers['content-type'];
    if (!type || !/^application\/json\s*(;|$)/i.test(type)) {
      drain(req);
      return sendProblem(res, { status: 415, title: TITLES[415], cause: 'UNSUPPORTED_MEDIA_TYPE', detail: 'the body must be application/json' });
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBody) {
      drain(req);
      return sendProblem(res, { status: 413, title: TITLES[413], detail: `the body is larger than ${maxBody} bytes` });
    }
    const raw = await readBody(req, maxBody);
    if (raw === null) return sendProblem(res, { status: 413, title: TITLES[413], detail: `the body is larger than ${maxBody} bytes` });
    // PostgreSQL's jsonb (the audit trail keeps the raw request) cannot hold NUL characters.
    if (raw.includes('\\u0000')) {
      return sendProblem(res, { status: 400, title: TITLES[400], cause: 'INVALID_MSG_FORMAT', detail: 'the body contains a NUL character (\\u0000), which is not accepted' });
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return sendProblem(res, { status: 400, title: TITLES[400], cause: 'INVALID_MSG_FORMAT', detail: 'the body is not valid JSON' });
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return sendProblem(res, { status: 400, title: TITLES[400], cause: 'INVALID_MSG_FORMAT', detail: 'the body must be a ChargingDataRequest object' });
    }
    const invalid = validate(body);
    if (invalid) {
      return sendProblem(res, { status: 400, title: TITLES[400], cause: invalid.cause, detail: 'the ChargingDataRequest is not valid', invalidParams: invalid.invalidParams });
    }
    const mapped = kind === 'create' ? mapCreate(body, mapping, raw) : mapUpdate(kind, ref, body, mapping, raw);
    if ('error' in mapped) {
      const e = mapped.error;
      return sendProblem(res, { status: e.status, title: TITLES[e.status] ?? 'Error', cause: e.cause, detail: e.detail, invalidParams: e.invalidParams });
    }
    if (deps.engine.stats().queued > maxQueue) {
      res.setHeader('Retry-After', '1');
      return sendProblem(res, { status: 503, title: TITLES[503], cause: 'NF_CONGESTION_RISK', detail: 'the charging function is overloaded' });
    }
    const answer = await deps.engine.charge(mapped.op);
    sendAnswer(req, res, answer);
  }

  return {
    server,
    listen: (port, host = '127.0.0.1') =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}

function sendAnswer(req: http.IncomingMessage, res: http.ServerResponse, answer: ChargingAnswer): void {
  if (answer.kind === 'problem') {
    const p = answer.problem;
    return sendProblem(res, { status: p.status, title: p.title, cause: p.cause, detail: p.detail });
  }
  if (answer.httpStatus === 204 || answer.body === null) {
    res.writeHead(204);
    res.end();
    return;
  }
  const json = JSON.stringify(answer.body);
  const headers: http.OutgoingHttpHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) };
  if (answer.httpStatus === 201) headers.Location = `http://${req.headers.host ?? 'localhost'}${NCHF_BASE}/${encodeURIComponent(answer.ref)}`;
  res.writeHead(answer.httpStatus, headers);
  res.end(json);
}

function sendProblem(res: http.ServerResponse, p: Problem): void {
  const body: Record<string, unknown> = { title: p.title, status: p.status };
  if (p.detail) body.detail = p.detail;
  if (p.cause) body.cause = p.cause;
  if (p.invalidParams && p.invalidParams.length > 0) body.invalidParams = p.invalidParams;
  const json = JSON.stringify(body);
  res.writeHead(p.status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function drain(req: http.IncomingMessage): void {
  req.resume();
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
