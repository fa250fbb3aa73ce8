/**
 * `POST /webhooks/payments/<gateway>`: inbound payment gateway events. The body is read raw (the
 * signature is over the exact bytes), verified by the gateway implementation (signature, staleness),
 * and applied once per event id. Answers: 200 applied or already applied (the gateway stops
 * retrying), 400 forged / tampered / stale / not an event (nothing is recorded), 404 unknown gateway.
 */
import express, { type Request, type Response } from 'express';
import type { Knex } from 'knex';
import { WebhookPayloadError, WebhookSignatureError, WebhookStaleError, type PaymentGateway } from '../../domain/payments/payment-gateway';
import { applyWebhookEvent } from '../../domain/payments/webhook-events.repository';
import type { Logger } from '../../platform/logger';

export function createPaymentWebhookRouter(deps: { db: Knex; logger: Logger; gateways: Record<string, PaymentGateway> }): express.Router {
  const router = express.Router();
  router.post('/webhooks/payments/:gateway', express.raw({ type: () => true, limit: '256kb' }), async (req: Request, res: Response) => {
    const name = String(req.params.gateway);
    const gateway = Object.prototype.hasOwnProperty.call(deps.gateways, name) ? deps.gateways[name] : undefined;
    if (!gateway) return res.status(404).json({ error: 'unknown_gateway' });
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event;
    try {
      event = await gateway.verifyWebhook(body, req.headers);
    } catch (err) {
      if (err instanceof WebhookStaleError) return res.status(400).json({ error: 'stale_event', message: err.message });
      if (err instanceof WebhookSignatureError) return res.status(400).json({ error: 'invalid_signature' });
      if (err instanceof WebhookPayloadError) return res.status(400).json({ error: 'invalid_payload' });
      throw err;
    }
    const outcome = await applyWebhookEvent(deps.db, gateway.name, event);
    deps.logger.info({ gateway: name, eventId: event.id, type: event.type, outcome }, 'payment webhook');
    return res.status(200).json({ received: true, outcome });
  });
  return router;
}
