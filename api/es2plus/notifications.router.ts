/** The Operator side of ES2+ (SGP.22 §5.3.5): `POST /gsma/rsp2/es2plus/handleDownloadProgressInfo`.
 * The SM-DP+ tells us how a profile download is going; we find the ICCID's eSIM order and signal its
 * workflow (`esim-order:<id>`), which deduplicates on the notification's functionCallIdentifier. In
 * production this path sits behind mutual TLS (the SM-DP+'s client certificate); the requester
 * identities accepted can be limited with SMDP_ALLOWED_REQUESTERS. */
import express, { type Request, type Response } from 'express';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Knex } from 'knex';
import { handleDownloadProgressInfoRequest } from '../../domain/sims/es2plus.notifications';
import { es2PlusPath, ES2PLUS_ADMIN_PROTOCOL, ES2PLUS_ADMIN_PROTOCOL_HEADER } from '../../domain/sims/es2plus.types';
import { findEsimOrderByIccid } from '../../domain/sims/esim-orders.repository';
import type { Logger } from '../../platform/logger';
import { downloadProgressSignal, esimOrderWorkflowId } from '../../workflows/esim-order.messages';

export const ES2PLUS_NOTIFICATION_PATH = es2PlusPath('handleDownloadProgressInfo');

export function createEs2PlusNotificationRouter(deps: { db: Knex; temporal: Client; logger: Logger; allowedRequesters?: readonly string[] }) {
  const router = express.Router();
  router.post(ES2PLUS_NOTIFICATION_PATH, express.json({ limit: '64kb', type: () => true }), async (req: Request, res: Response) => {
    res.setHeader(ES2PLUS_ADMIN_PROTOCOL_HEADER, ES2PLUS_ADMIN_PROTOCOL);
    const answer = await handleDownloadProgressInfoRequest(
      req.body,
      async (n) => {
        const order = await findEsimOrderByIccid(deps.db, n.iccid);
        if (!order) {
          // Nothing of ours waits for it (an order placed elsewhere): answered, so it is not retried.
          deps.logger.warn({ iccid: n.iccid, point: n.notificationPointId }, 'ES2+ notification for an ICCID without an order');
          return;
        }
        try {
          await deps.temporal.workflow.getHandle(esimOrderWorkflowId(order.id)).signal(downloadProgressSignal, {
            functionCallIdentifier: n.functionCallIdentifier,
            notificationPointId: n.notificationPointId,
            status: n.status,
            timestamp: n.timestamp,
            ...(n.eid ? { eid: n.eid } : {}),
            ...(n.statusCodeData ? { subjectCode: n.statusCodeData.subjectCode, reasonCode: n.statusCodeData.reasonCode, message: n.statusCodeData.message } : {}),
          });
        } catch (err) {
          // The order is over (completed or compensated): a late notification changes nothing.
          if (err instanceof WorkflowNotFoundError) return;
          throw err;
        }
      },
      { allowedRequesters: deps.allowedRequesters },
    );
    if (answer.body === undefined) res.status(answer.httpStatus).end();
    else res.status(answer.httpStatus).json(answer.body);
  });
  router.use(ES2PLUS_NOTIFICATION_PATH, (err: Error & { type?: string }, _req: Request, res: Response, next: (e?: unknown) => void) => {
    if (err.type === 'entity.parse.failed') return res.status(400).json({ message: 'the body is not JSON' });
    next(err);
  });
  return router;
}
