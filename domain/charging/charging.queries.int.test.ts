import crypto from 'node:crypto';
import { Pool } from 'pg';
import { createTestDatabase } from '../../test/support/services';
import { createChargingEngine, type ChargingEngine } from './charging-engine';
import { explainCharge, listOpenReservations, listUsage } from './charging.queries';
import { getBalances } from '../ledger/balances.queries';
import { fundWallet, seedAccount, seedBucket, seedLine, seedPlan } from './testing/fixtures';
import type { CreateOp, UpdateOp } from './charging.types';

describe('charging reads: balances, open reservations, usage, explain a charge', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: Pool;
  let engine: ChargingEngine;
  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new Pool({ connectionString: t.url, max: 4 });
    engine = createChargingEngine({ pool });
  });
  afterAll(async () => {
    await engine.close();
    await pool.end();
    await t.drop();
  });

  test('one line of a family: balances, its open session, its usage and why it cost what it cost', async () => {
    const planId = await seedPlan(t.db);
    const family = await seedAccount(t.db, { paymentType: 'postpaid' });
    const pool10 = await seedBucket(t.db, { accountId: family, subscriptionId: null, service: 'data', units: 10_000_000n, priority: 200 });
    const line = await seedLine(t.db, { planId, parentAccountId: family });
    const own = await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 2_000_000n, priority: 10 });
    await fundWallet(t.db, line.accountId, 1_000_000n);

    const ref = `q-${crypto.randomUUID()}`;
    const raw = { invocationSequenceNumber: 1, note: 'as sent' };
    const create: CreateOp = {
      kind: 'create', ref, sequenceNumber: 0, invocationTime: new Date(), raw: {}, context: { zone: 'home' }, nfConsumer: 'smf-1',
      units: [{ ratingGroup: 10, requested: 5_000_000n, used: [] }], subscriber: { kind: 'msisdn', value: line.msisdn }, subscriberIdentifier: `msisdn-${line.msisdn}`,
    };
    await engine.charge(create);
    const update: UpdateOp = {
      kind: 'update', ref, sequenceNumber: 1, invocationTime: new Date(), raw, context: {}, nfConsumer: 'smf-1',
      units: [{ ratingGroup: 10, requested: 5_000_000n, used: [{ units: 3_000_000n, localSequenceNumber: 1 }] }],
    };
    await engine.charge(update);

    const balances = await getBalances(t.db, { subscriberId: line.subscriberId });
    expect(balances.wallet).toMatchObject({ currency: 'EUR', balanceMicros: 1_000_000n, reservedMicros: 0n, availableMicros: 1_000_000n });
    expect(balances.buckets.map((b) => [b.id, b.shared, b.balanceUnits, b.reservedUnits])).toEqual([
      [own.id, false, 0n, 0n],
      [pool10.id, true, 9_000_000n, 5_000_000n],
    ]);
    const familyView = await getBalances(t.db, { billingAccountId: family });
    expect(familyView.buckets.map((b) => b.id)).toEqual([pool10.id]);

    const open = await listOpenReservations(t.db, { subscriberId: line.subscriberId });
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ chargingDataRef: ref, lastSequenceNumber: 1, nfConsumer: 'smf-1' });
    expect(open[0].reservations[0]).toMatchObject({ ratingGroup: 10, service: 'data', granted: 5_000_000n, holds: [{ account: pool10.id, kind: 'bucket', amount: 5_000_000n }] });

    const usage = await listUsage(t.db, { subscriberId: line.subscriberId, first: 1 });
    expect(usage.items).toHaveLength(1);
    expect(usage.items[0]).toMatchObject({ usedUnits: 3_000_000n, bucketUnits: 3_000_000n, amountMicros: 0n, service: 'data', msisdn: line.msisdn });
    expect(usage.nextCursor).toBeNull();

    const why = await explainCharge(t.db, usage.items[0].journalEntryId!);
    expect(why.entry).toMatchObject({ entryType: 'usage', actor: 'nf:smf-1', sourceRef: `chargingdata/${ref}/1` });
    expect(why.request).toEqual(raw);
    expect(why.lines[0]).toMatchObject({ usedUnits: '3000000', fromBuckets: [{ bucket: own.id, units: '2000000' }, { bucket: pool10.id, units: '1000000' }] });
    expect((why.lines[0] as { rating: { priceSource: string } }).rating.priceSource).toBe('base');
    expect(why.postings.map((p) => [p.kind, p.amount])).toEqual(expect.arrayContaining([['bucket', -2_000_000n], ['bucket', -1_000_000n], ['allowance_usage', 3_000_000n]]));
    expect(why.balances.find((b) => b.ledgerAccountId === own.id)).toMatchObject({ kind: 'bucket', before: 2_000_000n, after: 0n, code: expect.stringMatching(/^bucket:/) });
    expect(why.ratedUsage).toHaveLength(1);
    expect(why.answer).toMatchObject({ httpStatus: 200, body: { invocationSequenceNumber: 1 } });
    await expect(explainCharge(t.db, '999999999')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
