import crypto from 'node:crypto';
import { fundWallet, seedAccount, seedBucket, seedLine, seedPlan, type Line } from '../../domain/charging/testing/fixtures';
import type { CreateOp, UpdateOp } from '../../domain/charging/charging.types';
import type { BucketView } from '../../domain/ledger/buckets.repository';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { useApiTestStack } from './support';

const EUR = 1_000_000n;
const MB = 1_000_000n;

const LINE = `query($id: ID!, $first: Int, $after: String, $service: UsageService, $from: DateTime) { subscriber(id: $id) {
  wallet { currency balance { amount currency } reserved { amount } available { amount } creditLimit { amount currency } balanceMicros reservedMicros availableMicros }
  buckets { id service unit scope priority initialUnits balanceUnits reservedUnits availableUnits rollover validFrom validUntil billingAccountId subscriptionId }
  openReservations(first: 10) { edges { cursor node { chargingDataRef nfConsumer lastSequenceNumber expiresAt reservations {
    ratingGroup service zone grantedUnits usedUnits rate { priceMicros perUnits } holds { ledgerAccountId kind amount } } } } pageInfo { hasNextPage } }
  usage(first: $first, after: $after, service: $service, from: $from) {
    edges { cursor node { id service usedUnits bucketUnits pricedUnits amount { amount currency } amountMicros msisdn journalEntryId
      journalEntry { id entryType actor sourceRef } } }
    pageInfo { hasNextPage hasPreviousPage endCursor } }
} }`;

const EXPLAIN = `query($id: ID!) { chargeExplain(journalEntryId: $id) {
  entry { id entryType actor reason sourceRef }
  request lines answer
  postings { ledgerAccountId accountCode accountKind unit amount }
  balances { ledgerAccountId accountCode accountKind before after }
  ratedUsage { id usedUnits }
} }`;

const ADJUST = `mutation($input: BalanceAdjustInput!) { balanceAdjust(input: $input) {
  adjustment { journalEntryId billingAccountId amount { amount currency } reason replayed
    journalEntry { id entryType actor reason sourceRef } wallet { balance { amount currency } balanceMicros } }
  userErrors { field message code } } }`;

describe('charging over GraphQL: balances, reservations, usage, explanations, adjustments', () => {
  const stack = useApiTestStack();
  let family: string;
  let line: Line;
  let pool: BucketView;
  let own: BucketView;
  let ref: string;

  beforeAll(async () => {
    const planId = await seedPlan(stack.t.db);
    family = await seedAccount(stack.t.db, { paymentType: 'postpaid' });
    pool = await seedBucket(stack.t.db, { accountId: family, subscriptionId: null, service: 'data', units: 10n * MB, priority: 200 });
    line = await seedLine(stack.t.db, { planId, parentAccountId: family });
    own = await seedBucket(stack.t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 2n * MB, priority: 10 });
    await fundWallet(stack.t.db, line.accountId, 3n * EUR);
    // A data session: 5 MB granted, then two reports of 1.5 MB each (two rated usage records).
    ref = `api-${crypto.randomUUID()}`;
    const create: CreateOp = {
      kind: 'create', ref, sequenceNumber: 0, invocationTime: new Date(), raw: {}, context: { zone: 'home' }, nfConsumer: 'smf-1',
      units: [{ ratingGroup: 10, requested: 5n * MB, used: [] }], subscriber: { kind: 'msisdn', value: line.msisdn }, subscriberIdentifier: `msisdn-${line.msisdn}`,
    };
    await stack.engine.charge(create);
    for (const seq of [1, 2]) {
      const update: UpdateOp = {
        kind: 'update', ref, sequenceNumber: seq, invocationTime: new Date(), raw: { invocationSequenceNumber: seq, note: 'as sent' }, context: {}, nfConsumer: 'smf-1',
        units: [{ ratingGroup: 10, requested: 5n * MB, used: [{ units: 1_500_000n, localSequenceNumber: seq }] }],
      };
      await stack.engine.charge(update);
    }
  });

  test('a line shows its wallet and every bucket it draws from, in consumption order, with scope', async () => {
    const res = await stack.api.gql('support', LINE, { id: line.subscriberId, first: 10 });
    expect(res.body.errors).toBeUndefined();
    const s = res.body.data.subscriber;
    expect(s.wallet).toEqual({
      currency: 'EUR', balance: { amount: '300', currency: 'EUR' }, reserved: { amount: '0' }, available: { amount: '300' },
      creditLimit: { amount: '0', currency: 'EUR' }, balanceMicros: '3000000', reservedMicros: '0', availableMicros: '3000000',
    });
    // 3 MB used: 2 MB from the line's own bucket, 1 MB from the family pool, which now holds the new 5 MB grant.
    expect(s.buckets).toEqual([
      expect.objectContaining({ id: own.id, scope: 'subscription', priority: 10, initialUnits: '2000000', balanceUnits: '0', reservedUnits: '0', subscriptionId: line.subscriptionId, service: 'data', unit: 'bytes', rollover: false }),
      expect.objectContaining({ id: pool.id, scope: 'shared_pool', priority: 200, initialUnits: '10000000', balanceUnits: '9000000', reservedUnits: '5000000', availableUnits: '4000000', billingAccountId: family, subscriptionId: null }),
    ]);
    expect(new Date(s.buckets[0].validUntil).getTime()).toBeGreaterThan(Date.now());
    const account = await stack.api.gql('finance', `query($id: ID!) { billingAccount(id: $id) { buckets { id scope } openReservations { edges { node { chargingDataRef subscriberId } } } } }`, { id: family });
    expect(account.body.data.billingAccount.buckets).toEqual([{ id: pool.id, scope: 'shared_pool' }]);
    expect(account.body.data.billingAccount.openReservations.edges).toEqual([]); // the session is on the line's own account
    const lineAccount = await stack.api.gql('integrator', `query($id: ID!) { billingAccount(id: $id) { wallet { reserved { amount } creditLimit { amount } } buckets { id } openReservations { edges { node { chargingDataRef } } } } }`, { id: line.accountId });
    expect(lineAccount.body.data.billingAccount).toEqual({
      wallet: { reserved: { amount: '0' }, creditLimit: { amount: '0' } }, buckets: [{ id: own.id }, { id: pool.id }],
      openReservations: { edges: [{ node: { chargingDataRef: ref } }] },
    });
  });

  test('open reservations show the grant and the balances it is held on', async () => {
    const res = await stack.api.gql('integrator', LINE, { id: line.subscriberId });
    const open = res.body.data.subscriber.openReservations;
    expect(open.pageInfo.hasNextPage).toBe(false);
    expect(open.edges).toHaveLength(1);
    expect(open.edges[0].node).toMatchObject({
      chargingDataRef: ref, nfConsumer: 'smf-1', lastSequenceNumber: '2',
      reservations: [{ ratingGroup: '10', service: 'data', zone: 'home', grantedUnits: '5000000', usedUnits: '3000000', holds: [{ ledgerAccountId: pool.id, kind: 'bucket', amount: '5000000' }] }],
    });
    expect(new Date(open.edges[0].node.expiresAt).getTime()).toBeGreaterThan(Date.now());
  });

  test('usage pages newest first, filters by service and time, and links each record to its journal entry', async () => {
    const first = await stack.api.gql('support', LINE, { id: line.subscriberId, first: 1 });
    const page1 = first.body.data.subscriber.usage;
    expect(page1.edges).toHaveLength(1);
    expect(page1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const newest = page1.edges[0].node;
    expect(newest).toMatchObject({ service: 'data', usedUnits: '1500000', bucketUnits: '1500000', pricedUnits: '0', amount: { amount: '0', currency: 'EUR' }, msisdn: line.msisdn });
    expect(newest.journalEntry).toEqual({ id: newest.journalEntryId, entryType: 'usage', actor: 'nf:smf-1', sourceRef: `chargingdata/${ref}/2` });

    const second = await stack.api.gql('support', LINE, { id: line.subscriberId, first: 5, after: page1.pageInfo.endCursor });
    const page2 = second.body.data.subscriber.usage;
    expect(page2.edges.map((e: { node: { journalEntry: { sourceRef: string } } }) => e.node.journalEntry.sourceRef)).toEqual([`chargingdata/${ref}/1`]);
    expect(page2.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });

    const voice = await stack.api.gql('support', LINE, { id: line.subscriberId, service: 'voice' });
    expect(voice.body.data.subscriber.usage.edges).toEqual([]);
    const later = await stack.api.gql('support', LINE, { id: line.subscriberId, from: new Date(Date.now() + 60_000).toISOString() });
    expect(later.body.data.subscriber.usage.edges).toEqual([]);
    const data = await stack.api.gql('support', LINE, { id: line.subscriberId, service: 'data', from: new Date(Date.now() - 3_600_000).toISOString() });
    expect(data.body.data.subscriber.usage.edges).toHaveLength(2);

    const bad = await stack.api.gql('support', LINE, { id: line.subscriberId, after: 'not-a-cursor' });
    expect(bad.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const backwards = await stack.api.gql('support', `query($id: ID!) { subscriber(id: $id) { usage(last: 1) { edges { cursor } } } }`, { id: line.subscriberId });
    expect(backwards.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  test('chargeExplain: raw request → rating decision → buckets → postings, balances before and after', async () => {
    const usage = await stack.api.gql('finance', LINE, { id: line.subscriberId, first: 1 });
    const entryId = usage.body.data.subscriber.usage.edges[0].node.journalEntryId;
    const res = await stack.api.gql('finance', EXPLAIN, { id: entryId });
    expect(res.body.errors).toBeUndefined();
    const x = res.body.data.chargeExplain;
    expect(x.entry).toMatchObject({ id: entryId, entryType: 'usage', actor: 'nf:smf-1', sourceRef: `chargingdata/${ref}/2` });
    expect(x.request).toEqual({ invocationSequenceNumber: 2, note: 'as sent' });
    // Own bucket first (priority 10): its last 0.5 MB, then 1 MB from the family pool.
    expect(x.lines[0]).toMatchObject({ usedUnits: '1500000', fromBuckets: [{ bucket: own.id, units: '500000' }, { bucket: pool.id, units: '1000000' }] });
    expect(x.lines[0].rating).toBeDefined();
    expect(x.postings).toEqual(expect.arrayContaining([
      expect.objectContaining({ ledgerAccountId: own.id, accountKind: 'bucket', unit: 'bytes', amount: '-500000' }),
      expect.objectContaining({ ledgerAccountId: pool.id, accountKind: 'bucket', unit: 'bytes', amount: '-1000000' }),
      expect.objectContaining({ accountCode: 'allowance_usage:bytes', amount: '1500000' }),
    ]));
    expect(x.balances).toEqual(expect.arrayContaining([
      expect.objectContaining({ ledgerAccountId: own.id, accountKind: 'bucket', before: '500000', after: '0', accountCode: expect.stringMatching(/^bucket:/) }),
      expect.objectContaining({ ledgerAccountId: pool.id, accountKind: 'bucket', before: '10000000', after: '9000000' }),
    ]));
    expect(x.ratedUsage).toEqual([expect.objectContaining({ usedUnits: '1500000' })]);
    expect(x.answer).toMatchObject({ httpStatus: 200 });

    const missing = await stack.api.gql('support', EXPLAIN, { id: '999999999' });
    expect(missing.body).toEqual({ data: { chargeExplain: null } });
    const nonsense = await stack.api.gql('support', EXPLAIN, { id: '99999999999999999999999' });
    expect(nonsense.body).toEqual({ data: { chargeExplain: null } });
  });

  test('balanceAdjust validates, names the field, and refuses what it cannot do', async () => {
    const adjust = async (input: Record<string, unknown>) => (await stack.api.gql('support', ADJUST, { input })).body.data.balanceAdjust;
    const base = { billingAccountId: line.accountId, amount: '250', currency: 'EUR', reason: 'goodwill: outage 12 May', idempotencyKey: `adj-${crypto.randomUUID()}` };
    const invalid = await adjust({ ...base, billingAccountId: 'nope', amount: '0', currency: 'eur', reason: '   ', idempotencyKey: 'short' });
    expect(invalid.adjustment).toBeNull();
    expect(invalid.userErrors.map((e: { field: string[] }) => e.field.join('.')).sort()).toEqual(['input.amount', 'input.billingAccountId', 'input.currency', 'input.idempotencyKey', 'input.reason']);
    expect((await adjust({ ...base, currency: 'USD' })).userErrors).toEqual([expect.objectContaining({ field: ['input', 'currency'], code: 'CURRENCY_MISMATCH' })]);
    expect((await adjust({ ...base, billingAccountId: crypto.randomUUID() })).userErrors).toEqual([expect.objectContaining({ field: ['input', 'billingAccountId'], code: 'ACCOUNT_NOT_FOUND' })]);
    expect((await adjust({ ...base, amount: '-100000' })).userErrors).toEqual([expect.objectContaining({ field: ['input', 'amount'], code: 'INSUFFICIENT_FUNDS' })]);
    expect(await stack.t.db('journal_entries').where({ entry_type: 'adjustment' })).toHaveLength(0);
  });

  test('balanceAdjust credits once per idempotency key, through the ledger, with actor, role and reason', async () => {
    const before = await stack.t.db('wallets').where({ billing_account_id: line.accountId }).first('balance_micros');
    const input = { billingAccountId: line.accountId, amount: '250', currency: 'EUR', reason: '  goodwill: outage 12 May ', idempotencyKey: `adj-${crypto.randomUUID()}` };
    const [a, b] = await Promise.all([stack.api.gql('support', ADJUST, { input }), stack.api.gql('support', ADJUST, { input })]);
    const c = await stack.api.gql('support', ADJUST, { input });
    const results = [a, b, c].map((r) => r.body.data.balanceAdjust);
    for (const r of results) expect(r.userErrors).toEqual([]);
    const ids = new Set(results.map((r) => r.adjustment.journalEntryId));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.adjustment.replayed)).toHaveLength(1);
    expect(results[2].adjustment).toMatchObject({
      billingAccountId: line.accountId, amount: { amount: '250', currency: 'EUR' }, reason: 'goodwill: outage 12 May', replayed: true,
      journalEntry: { entryType: 'adjustment', actor: 'test:support', reason: 'goodwill: outage 12 May', sourceRef: `adjustment:${input.idempotencyKey}` },
    });
    const after = await stack.t.db('wallets').where({ billing_account_id: line.accountId }).first('balance_micros');
    expect(BigInt(after.balance_micros) - BigInt(before.balance_micros)).toBe(2_500_000n);
    expect(results[2].adjustment.wallet.balanceMicros).toBe(String(after.balance_micros));

    const entry = await stack.t.db('journal_entries').where({ id: [...ids][0] }).first();
    expect(entry.details).toMatchObject({ kind: 'wallet', amountMicros: '2500000', currency: 'EUR', role: 'support', requested: { amountMinor: '250', currency: 'EUR' } });
    const postings = await stack.t.db('postings as p').join('ledger_accounts as a', 'a.id', 'p.ledger_account_id').where('p.journal_entry_id', entry.id).select('a.kind', 'p.amount');
    expect(postings.map((p) => [p.kind, String(p.amount)]).sort()).toEqual([['adjustments', '-2500000'], ['wallet', '2500000']]);

    const reused = await stack.api.gql('finance', ADJUST, { input: { ...input, amount: '-100' } });
    expect(reused.body.data.balanceAdjust.userErrors).toEqual([expect.objectContaining({ field: ['input', 'idempotencyKey'], code: 'IDEMPOTENCY_KEY_REUSED' })]);

    const debit = await stack.api.gql('finance', ADJUST, { input: { ...input, amount: '-100', reason: 'duplicate refund reversed', idempotencyKey: `adj-${crypto.randomUUID()}` } });
    expect(debit.body.data.balanceAdjust.adjustment).toMatchObject({ amount: { amount: '-100' }, replayed: false, journalEntry: { actor: 'test:finance' } });
    const explained = await stack.api.gql('support', EXPLAIN, { id: debit.body.data.balanceAdjust.adjustment.journalEntryId });
    expect(explained.body.data.chargeExplain.balances).toEqual([expect.objectContaining({ accountKind: 'wallet', before: '5500000', after: '4500000' })]);

    const report = await verifyBalances(stack.t.db);
    expect(report.problems).toEqual([]);
  });

  test('only support, finance and admin adjust balances', async () => {
    const input = { billingAccountId: line.accountId, amount: '1', currency: 'EUR', reason: 'role check', idempotencyKey: `adj-${crypto.randomUUID()}` };
    for (const role of ['integrator', 'storefront', 'network'] as const) {
      const res = await stack.api.gql(role, ADJUST, { input });
      expect(res.body.errors[0].extensions.code).toBe('FORBIDDEN');
    }
    const admin = await stack.api.gql('admin', ADJUST, { input });
    expect(admin.body.data.balanceAdjust.adjustment).toMatchObject({ replayed: false, journalEntry: { actor: 'test:admin' } });
    expect(await stack.t.db('journal_entries').where({ source_ref: `adjustment:${input.idempotencyKey}` })).toHaveLength(1);
  });
});
