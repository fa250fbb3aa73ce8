import crypto from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine } from '../charging/charging-engine';
import { seedLine, seedPlan } from '../charging/testing/fixtures';
import { lanesAtDueQuantiles } from './billing-run.repository';
import { runBillingBatch } from './billing-run.service';
import { ALL_SUBSCRIPTIONS, FIRST_CURSOR, equalWidthLanes, type DueLane } from './billing-run.types';

/** New subscriptions take time-ordered ids (migrations 20261206130100/130200), so a run cuts its lanes
 * at quantiles of the due ids instead of at equal widths of the uuid space. */
describe('time-ordered ids and lanes cut at the due ids (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let planId: string;
  const DUE = '2099-01-01';

  beforeAll(async () => {
    t = await createTestDatabase();
    planId = await seedPlan(t.db);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const dueIn = async (lane: DueLane) => Number((await t.db('subscriptions')
    .where('state', 'active').andWhere('next_charge_on', '<=', DUE).andWhereBetween('id', [lane.fromId, lane.toId]).count({ n: '*' }))[0].n);
  const ascending = (ids: string[]) => expect([...ids].sort()).toEqual(ids);

  test('customers, billing accounts, subscriptions and invoices are numbered by uuid_v7(): version 7, in creation order, stamped with the time', async () => {
    const before = Date.now();
    const lines = [];
    for (let i = 0; i < 5; i++) lines.push(await seedLine(t.db, { planId }));
    const invoices = [];
    for (const l of lines) {
      const [invoice] = await t.db('invoices').insert({ billing_account_id: l.accountId, period_start: '2026-12-01', period_end: '2027-01-01', currency: 'EUR' }).returning('id');
      invoices.push(invoice.id as string);
    }
    const customerOf = new Map((await t.db('billing_accounts').whereIn('id', lines.map((l) => l.accountId)).select('id', 'customer_id')).map((a) => [a.id, a.customer_id as string]));
    const kinds = [lines.map((l) => l.accountId), lines.map((l) => l.subscriptionId), lines.map((l) => customerOf.get(l.accountId)!), invoices];
    for (const ids of kinds) {
      ascending(ids);
      for (const id of ids) {
        expect(id[14]).toBe('7');
        expect(['8', '9', 'a', 'b']).toContain(id[19]);
        const ms = parseInt(id.replace(/-/g, '').slice(0, 12), 16);
        expect(ms).toBeGreaterThanOrEqual(before);
        expect(ms).toBeLessThanOrEqual(Date.now());
      }
    }
  });

  test('lanes hold as many due subscriptions each, among time-ordered ids and random ones, and cover every one once', async () => {
    // 30 lines more with time-ordered ids, 12 whose subscription was renumbered at random (as rows
    // from before the migration are): the second kind spreads over the whole uuid space.
    for (let i = 0; i < 30; i++) await seedLine(t.db, { planId });
    for (let i = 0; i < 12; i++) {
      const line = await seedLine(t.db, { planId });
      const old = await t.db('subscriptions').where({ id: line.subscriptionId }).first();
      await t.db('subscriptions').where({ id: line.subscriptionId }).update({ state: 'ended', ended_at: new Date() });
      await t.db('subscriptions').insert({ ...old, id: crypto.randomUUID() });
    }
    const due = Number((await t.db('subscriptions').where('state', 'active').andWhere('next_charge_on', '<=', DUE).count({ n: '*' }))[0].n);
    expect(due).toBe(47);
    for (const count of [2, 3, 5]) {
      const lanes = await lanesAtDueQuantiles(t.db, { cycleDate: DUE, count });
      expect(lanes).toHaveLength(count);
      expect(lanes[0].fromId).toBe(ALL_SUBSCRIPTIONS.fromId);
      expect(lanes[count - 1].toId).toBe(ALL_SUBSCRIPTIONS.toId);
      const sizes = await Promise.all(lanes.map(dueIn));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(due);
      // The whole table is read when it is small: the cuts are exact quantiles.
      for (const n of sizes) expect(Math.abs(n - due / count)).toBeLessThanOrEqual(1);
    }
    // Equal widths would have put every time-ordered id in the first lane.
    const even = await Promise.all(equalWidthLanes(2).map(dueIn));
    expect(even[0]).toBeGreaterThanOrEqual(35);
  });

  test('from a sample of a larger table, the lanes still cover every due subscription once', async () => {
    await t.db.raw('ANALYZE subscriptions');
    const due = Number((await t.db('subscriptions').where('state', 'active').andWhere('next_charge_on', '<=', DUE).count({ n: '*' }))[0].n);
    for (let i = 0; i < 5; i++) {
      const lanes = await lanesAtDueQuantiles(t.db, { cycleDate: DUE, count: 2, sampleRows: 10 });
      expect(lanes[0].fromId).toBe(ALL_SUBSCRIPTIONS.fromId);
      expect(lanes[lanes.length - 1].toId).toBe(ALL_SUBSCRIPTIONS.toId);
      expect((await Promise.all(lanes.map(dueIn))).reduce((a, b) => a + b, 0)).toBe(due);
    }
  });

  test('nothing due: lanes of equal width; one lane: every id', async () => {
    expect(await lanesAtDueQuantiles(t.db, { cycleDate: '2000-01-01', count: 3 })).toEqual(equalWidthLanes(3));
    expect(await lanesAtDueQuantiles(t.db, { cycleDate: DUE, count: 1 })).toEqual([ALL_SUBSCRIPTIONS]);
    await expect(lanesAtDueQuantiles(t.db, { cycleDate: DUE, count: 0 })).rejects.toThrow(RangeError);
  });
});

/** Neighbours are renewed together (time-ordered ids): one statement updates every subscription and
 * payer wallet of a page, so those tables keep half of each page free (migration 20261206130300) and
 * every renewal is a HOT update — the new version on the row's own page, no new index entries. */
describe('a batch renews neighbouring rows in place (real PostgreSQL)', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await t?.drop();
  });

  const pagesOf = async (table: string, column: string, ids: string[]) => new Map((await t.db.raw(
    `SELECT ${column}::text AS id, (ctid::text::point)[0]::int AS page FROM ${table} WHERE ${column}::text = ANY(?)`, [ids],
  )).rows.map((r: { id: string; page: number }) => [r.id, r.page]));

  test('every subscription and wallet of a batch stays on its page, several pages of neighbours', async () => {
    const planId = await seedPlan(t.db, { paymentType: 'postpaid' });
    await t.db('plans').where({ id: planId }).update({ recurring_fee_minor: 500 });
    const lines = [];
    for (let i = 0; i < 90; i++) lines.push(await seedLine(t.db, { planId, paymentType: 'postpaid', creditLimitMinor: 10_000n }));
    const subscriptions = lines.map((l) => l.subscriptionId);
    const wallets = lines.map((l) => l.walletId);
    const before = { subscriptions: await pagesOf('subscriptions', 'id', subscriptions), wallets: await pagesOf('wallets', 'ledger_account_id', wallets) };
    // Neighbours: the lines fill several pages of each table.
    expect(new Set(before.subscriptions.values()).size).toBeGreaterThanOrEqual(2);
    expect(new Set(before.wallets.values()).size).toBeGreaterThanOrEqual(2);

    const engine = createChargingEngine({ pool });
    try {
      const cycleDate = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
      const r = await runBillingBatch({ db: t.db, engine }, { cycleDate, after: FIRST_CURSOR, limit: 500, graceDays: 3 });
      expect(r.charged).toBe(90);
    } finally {
      await engine.close();
    }
    const advanced = await t.db('subscriptions').whereIn('id', subscriptions).andWhere('current_period_start', '>', new Date()).count({ n: '*' });
    expect(Number(advanced[0].n)).toBe(90);
    expect(await pagesOf('subscriptions', 'id', subscriptions)).toEqual(before.subscriptions);
    expect(await pagesOf('wallets', 'ledger_account_id', wallets)).toEqual(before.wallets);
  });
});
