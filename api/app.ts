import express, { type Request, type Response, type NextFunction } from 'express';
import { createYoga, type Plugin } from 'graphql-yoga';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { apiKeyFromHeaders } from '../domain/access/api-key';
import type { Role } from '../domain/access/roles';
import type { Config } from '../platform/config';
import { databaseReachable } from '../platform/database';
import type { Logger } from '../platform/logger';
import type { Metrics } from '../platform/metrics';
import { buildSchema } from './graphql/schema';
import { createReconciliationRouter } from './graphql/reconciliation.schema';
import type { GraphQLContext } from './graphql/builder';
import { createEs2PlusNotificationRouter } from './es2plus/notifications.router';
import { createPaymentWebhookRouter } from './webhooks/payments.router';
import { createInvoiceDocumentRouter } from './graphql/billing.schema';
import { processPaymentGateway, type PaymentGateway } from '../domain/payments';
import type { ChargingEngine } from '../domain/charging/charging-engine';
import { sharedEngineFor } from '../domain/payments/shared-engine';

export interface AppDependencies {
  config: Config;
  db: Knex;
  temporal: Client;
  logger: Logger;
  metrics: Metrics;
  /** Resolves an API key to its role (cached lookup of the key's hash). */
  resolveApiKey: (key: string) => Promise<{ role: Role; actor: string } | undefined>;
  /** Gateways whose webhooks `POST /webhooks/payments/<name>` accepts (default: the one the environment configures). */
  paymentGateways?: Record<string, PaymentGateway>;
  /** Wallet movements the API makes (balance adjustments) go through it; the caller owns and closes
   * it. Default: the database's shared engine (`domain/payments/shared-engine.ts`). */
  chargingEngine?: ChargingEngine;
}

interface AuthenticatedRequest extends Request {
  auth?: { role: Role; actor: string };
}

function graphqlError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** Yoga answers 200 to a document that does not parse or validate when the client accepts plain
 * JSON; such a request is the client's error, so it gets 400 whatever it accepts. */
const invalidDocumentIsBadRequest: Plugin = {
  onResultProcess({ result }) {
    if (Array.isArray(result) || !result || typeof result !== 'object' || !('errors' in result)) return;
    const r = result as { data?: unknown; errors?: readonly { extensions?: { http?: { spec?: boolean; status?: number } } }[]; extensions?: Record<string, unknown> };
    if (r.data == null && r.errors?.some((e) => e.extensions?.http?.spec && e.extensions.http.status === 400)) {
      r.extensions = { ...r.extensions, http: { status: 400 } };
    }
  },
};

function parseByteSize(size: string): number {
  const m = /^(\d+)\s*(b|kb|mb)?$/i.exec(size.trim());
  if (!m) throw new Error(`REQUEST_BODY_LIMIT: cannot read "${size}" (use e.g. 100kb)`);
  return Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb']);
}

export function createApp(deps: AppDependencies) {
  const { config, db, temporal, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');

  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer({ route: req.path === '/graphql' ? 'graphql' : req.path });
    res.on('finish', () => {
      end();
      metrics.httpRequests.inc({ route: req.path === '/graphql' ? 'graphql' : req.path, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [database, temporalOk] = await Promise.all([
      databaseReachable(db),
      temporal.connection.workflowService
        .getSystemInfo({})
        .then(() => true)
        .catch(() => false),
    ]);
    res.status(database && temporalOk ? 200 : 503).json({ status: database && temporalOk ? 'ready' : 'not ready', database, temporal: temporalOk });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const chargingEngine = () => deps.chargingEngine ?? sharedEngineFor(db);

  const graphiql = !config.production;
  const authenticate = async (req: AuthenticatedRequest, res: Response, next: NextFunction) => {
    // GraphiQL's page itself carries no key; its requests do (set the header in its editor).
    if (graphiql && req.method === 'GET' && req.accepts(['html', 'json']) === 'html') return next();
    const key = apiKeyFromHeaders(req.headers);
    if (!key) return graphqlError(res, 401, 'UNAUTHENTICATED', 'an API key is required: send `Authorization: Bearer <key>`');
    try {
      const auth = await deps.resolveApiKey(key);
      if (!auth) return graphqlError(res, 401, 'UNAUTHENTICATED', 'unknown or revoked API key');
      req.auth = auth;
      next();
    } catch (err) {
      next(err);
    }
  };

  const plugins: Plugin[] = [
    EnvelopArmorPlugin({
      maxDepth: { n: config.api.maxDepth },
      costLimit: { maxCost: config.api.maxCost },
      maxAliases: { n: 20 },
      maxDirectives: { n: 20 },
      maxTokens: { n: 2000 },
      blockFieldSuggestion: { enabled: config.production },
    }) as Plugin,
  ];
  plugins.push(invalidDocumentIsBadRequest);
  if (config.production) plugins.push(useDisableIntrospection());

  const yoga = createYoga<{ req: AuthenticatedRequest; res: Response }, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    graphiql: graphiql ? { title: 'mvno-bss', headers: JSON.stringify({ Authorization: 'Bearer <your API key>' }) } : false,
    landingPage: false,
    // Unexpected errors are masked to "Unexpected error." and logged; GraphQLErrors we raise pass through.
    maskedErrors: { isDev: false },
    logging: {
      debug: () => undefined,
      info: () => undefined,
      warn: (...args: unknown[]) => logger.warn({ args }, 'graphql'),
      error: (...args: unknown[]) => logger.error({ err: args[0] }, 'graphql error'),
    },
    plugins,
    context: ({ req }) => ({
      role: req.auth!.role,
      actor: req.auth!.actor,
      db,
      temporal,
      config,
      chargingEngine,
    }),
  });

  const bodyLimitBytes = parseByteSize(config.api.bodyLimit);
  // Yoga reads the body itself, so the size limit is enforced on the declared length.
  const limitBody = (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST') return next();
    const length = Number(req.headers['content-length']);
    if (!req.headers['content-length'] || Number.isNaN(length)) return graphqlError(res, 411, 'LENGTH_REQUIRED', 'send a Content-Length header');
    if (length > bodyLimitBytes) return graphqlError(res, 413, 'PAYLOAD_TOO_LARGE', `request body is over ${config.api.bodyLimit}`);
    next();
  };
  app.use('/reconciliation', createReconciliationRouter({ db: deps.db, resolveApiKey: deps.resolveApiKey }));
  // Payment gateway → us: signed events on the raw body, applied once per event id
  // (mounted before any router that parses bodies).
  const gateways = deps.paymentGateways ?? (() => { const g = processPaymentGateway(); return { [g.name]: g }; })();
  app.use(createPaymentWebhookRouter({ db, logger, gateways }));
  // Readable invoices (HTML, printable to PDF) for finance and support API keys.
  app.use(createInvoiceDocumentRouter({ db, resolveApiKey: deps.resolveApiKey }));

  app.use('/graphql', limitBody, authenticate, yoga as unknown as express.RequestHandler);
  // SM-DP+ → Operator (ES2+ HandleDownloadProgressInfo): signals the eSIM order workflows.
  app.use(createEs2PlusNotificationRouter({ db, temporal, logger, allowedRequesters: config.smdp.allowedRequesters }));

  app.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    logger.error({ err }, 'unhandled API error');
    graphqlError(res, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
  });
  return app;
}
