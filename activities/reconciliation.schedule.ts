/** The monthly reconciliation Schedule (created idempotently when the worker or `npm start` starts)
 * and the demo partner `npm start` sets up. */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { Knex } from 'knex';
import { createPartner, findPartner, rateCardToRows } from '../domain/reconciliation/partners';
import { SAMPLE_WHOLESALE_RATE_CARD } from '../domain/reconciliation/wholesale-file.generator';
import { RECONCILIATION_SCHEDULE_ID } from '../workflows/reconciliation.messages';

/** On the 3rd of every month at 02:00 UTC (MNO files arrive in the first days), reconcile the month before. */
export async function ensureReconciliationSchedule(client: Client, taskQueue: string): Promise<'created' | 'exists'> {
  try {
    await client.schedule.create({
      scheduleId: RECONCILIATION_SCHEDULE_ID,
      spec: { calendars: [{ dayOfMonth: 3, hour: 2, minute: 0 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconciliationMonthlyWorkflow',
        workflowId: 'reconciliation-monthly',
        taskQueue,
        args: [{ actor: 'schedule' }],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '7 days' },
      memo: { description: 'Monthly MNO wholesale reconciliation of the previous month, per partner' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}

export const DEMO_PARTNER_CODE = 'demo-mno';

/** The demo host MNO (canonical CSV layout, sample EUR rate card). */
export async function ensureDemoPartner(db: Knex): Promise<boolean> {
  if (await findPartner(db, DEMO_PARTNER_CODE)) return false;
  await createPartner(
    db,
    { code: DEMO_PARTNER_CODE, name: 'Demo Host MNO', currency: 'EUR', rateCard: rateCardToRows(SAMPLE_WHOLESALE_RATE_CARD), effectiveFrom: '2020-01-01' },
    'npm-start',
  );
  return true;
}

/** For `worker.ts`: its own short-lived client connection. */
export async function ensureReconciliationScheduleAt(address: string, namespace: string, taskQueue: string): Promise<'created' | 'exists'> {
  const { Client, Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address });
  try {
    return await ensureReconciliationSchedule(new Client({ connection, namespace }), taskQueue);
  } finally {
    await connection.close();
  }
}
