/**
 * The notification loop the worker process runs beside the Temporal worker: consume the charging
 * outbox (usage alerts, low balance, auto top-up requests → `auto-top-up:<account>:<event>`),
 * deliver due webhooks, and send SMS through the channel. Each step is safe to run in several
 * processes at once (SKIP LOCKED claims, unique keys).
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import type { Logger } from '../platform/logger';
import { consumeBalanceEvents } from '../domain/notifications/balance-events.consumer';
import { deliverDueWebhooks, sendChannelMessages } from '../domain/notifications/dispatcher';
import { RecordingChannel, type NotificationChannel } from '../domain/notifications/channels';
import { autoTopUpWorkflowId } from '../workflows/auto-top-up.workflow';

export interface NotificationLoopOptions {
  db: Knex;
  logger: Logger;
  temporal: Client;
  taskQueue: string;
  channel?: NotificationChannel;
  intervalMs?: number;
}

export async function notificationTick(o: NotificationLoopOptions, state: { channelCursor: string }): Promise<void> {
  for (;;) {
    const { published, autoTopUps } = await consumeBalanceEvents(o.db);
    for (const r of autoTopUps) {
      try {
        await o.temporal.workflow.start('autoTopUpWorkflow', {
          workflowId: autoTopUpWorkflowId(r.billingAccountId, r.eventId), taskQueue: o.taskQueue, args: [{ billingAccountId: r.billingAccountId, eventId: r.eventId }],
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) o.logger.error({ err, ...r }, 'auto top-up could not be started');
      }
    }
    if (published < 1000) break;
  }
  await deliverDueWebhooks(o.db);
  state.channelCursor = await sendChannelMessages(o.db, o.channel ?? new RecordingChannel(o.db), state.channelCursor);
}

export function startNotificationLoop(o: NotificationLoopOptions): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const state = { channelCursor: '' };
  const loop = async () => {
    if (!state.channelCursor) {
      const last = await o.db('notification_messages').max('event_id as id').first();
      state.channelCursor = String(last?.id ?? 0);
    }
    while (!stopped) {
      running = notificationTick(o, state).catch((err) => o.logger.error({ err }, 'notification loop'));
      await running;
      await new Promise((r) => setTimeout(r, o.intervalMs ?? 2000));
    }
  };
  void loop();
  return {
    async stop() {
      stopped = true;
      await running;
    },
  };
}
