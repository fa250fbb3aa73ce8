import { createTestDatabase } from '../test/support/services';
import { createPgPool } from './database';

/** A server that drops an idle pooled connection (restart, shutdown, pg_terminate_backend) must not
 * end the process: `npm start` crashed on Ctrl-C when PostgreSQL stopped before a pool without an
 * 'error' listener had closed its idle clients. */
describe('createPgPool (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    t = await createTestDatabase({ empty: true });
  });
  afterAll(async () => {
    await t?.drop();
  });

  const dropIdleClients = (applicationName: string) =>
    t.db.raw('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = ?', [applicationName]);

  test('an idle client dropped by the server is reported and replaced, on a knex database or a URL', async () => {
    const reported: Error[] = [];
    const pool = createPgPool(t.db, { max: 1, applicationName: 'pool-idle-reported', onIdleError: (err) => reported.push(err) });
    try {
      await pool.query('SELECT 1');
      expect((await dropIdleClients('pool-idle-reported')).rows[0].n).toBe(1);
      for (let i = 0; i < 50 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(reported).toHaveLength(1);
      expect(reported[0].message).toMatch(/terminating connection/);
      expect((await pool.query('SELECT 2 AS two')).rows[0].two).toBe(2);
    } finally {
      await pool.end();
    }
  });

  test('without a reporter the drop is still survived (no unhandled error event)', async () => {
    const pool = createPgPool(t.url, { max: 1, applicationName: 'pool-idle-silent' });
    try {
      await pool.query('SELECT 1');
      expect((await dropIdleClients('pool-idle-silent')).rows[0].n).toBe(1);
      for (let i = 0; i < 50 && pool.totalCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(pool.totalCount).toBe(0);
      expect((await pool.query('SELECT 3 AS three')).rows[0].three).toBe(3);
    } finally {
      await pool.end();
    }
  });
});
