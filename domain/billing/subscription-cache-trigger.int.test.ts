import { Client } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { seedLine, seedPlan } from '../charging/testing/fixtures';

/** The billing run's claim sets `state` on every subscription it renews; the charging cache is told
 * only when a watched column really changes (migration 20261122080200). */
test('a subscription update notifies charging_cache only when subscriber, plan or state change', async () => {
  const t = await createTestDatabase();
  const listener = new Client({ connectionString: t.url });
  try {
    const planId = await seedPlan(t.db);
    const line = await seedLine(t.db, { planId });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(String(n.payload)));
    await listener.query('LISTEN charging_cache');
    const settle = async () => listener.query('SELECT 1');

    await t.db.raw(`UPDATE subscriptions SET state = state, next_charge_on = next_charge_on + 30 WHERE id = ?`, [line.subscriptionId]);
    await settle();
    expect(heard).toEqual([]);

    await t.db('subscriptions').where({ id: line.subscriptionId }).update({ plan_id: await seedPlan(t.db) });
    await settle();
    // OLD and NEW name the same subscriber: PostgreSQL folds identical notifications of a transaction.
    expect(heard).toEqual([`subscriber:${line.subscriberId}`]);
  } finally {
    await listener.end().catch(() => undefined);
    await t.drop();
  }
});
