import request from 'supertest';
import { Client, Connection } from '@temporalio/client';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';
import { testServices } from '../support/services';
import { createApiKey, revokeApiKey } from '../../domain/access/api-keys.repository';
import { buildTestApi, useApiTestStack } from './support';

const CUSTOMER_CREATE = `mutation($input: CustomerCreateInput!) { customerCreate(input: $input) {
  customer { id name } billingAccount { id paymentType wallet { balance { amount currency } available { amount } } }
  userErrors { field message code } } }`;
const PLAN_CREATE = `mutation($input: PlanCreateInput!) { planCreate(input: $input) {
  plan { id code allowances { service units shared } recurringFee { amount currency } } userErrors { field message code } } }`;
const SUBSCRIBER_CREATE = `mutation($input: SubscriberCreateInput!) { subscriberCreate(input: $input) {
  subscriber { id msisdn state planCode workflowId lifecycle { action from to } } userErrors { field message code } } }`;

describe('GraphQL API over real PostgreSQL and Temporal', () => {
  const stack = useApiTestStack();

  describe('authentication', () => {
    test('no key → 401', async () => {
      const res = await stack.api.gql(null, '{ plans { edges { node { code } } } }');
      expect(res.status).toBe(401);
      expect(res.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    });
    test('unknown key → 401', async () => {
      const res = await request(stack.api.app).post('/graphql').set('Authorization', 'Bearer mvno_not-a-key').send({ query: '{ __typename }' });
      expect(res.status).toBe(401);
    });
    test('a revoked key → 401', async () => {
      const { key, record } = await createApiKey(stack.t.db, { name: 'soon revoked', role: 'admin' });
      await revokeApiKey(stack.t.db, record.id);
      const res = await request(stack.api.app).post('/graphql').set('X-Api-Key', key).send({ query: '{ __typename }' });
      expect(res.status).toBe(401);
    });
  });

  describe('hardening', () => {
    test('malformed GraphQL → 400', async () => {
      const res = await stack.api.gql('admin', '{ plans( ');
      expect(res.status).toBe(400);
      expect(res.body.errors[0].message).toMatch(/Syntax Error/);
    });
    test('queries deeper than the limit are refused', async () => {
      const strict = await buildTestApi(stack.t.db, stack.temporal.client, stack.temporal.taskQueue, { GRAPHQL_MAX_DEPTH: '5' });
      const thrifty = await buildTestApi(stack.t.db, stack.temporal.client, stack.temporal.taskQueue, { GRAPHQL_MAX_COST: '100' });
      const deep = '{ customers { edges { node { billingAccounts { edges { node { wallet { balance { amount } } } } } } } } }';
      const res = await strict.gql('admin', deep);
      expect(res.body.data).toBeUndefined();
      expect(res.body.errors.map((e: { message: string }) => e.message).join(' ')).toMatch(/depth/i);
      const costly = await thrifty.gql('admin', deep);
      expect(costly.body.errors?.map((e: { message: string }) => e.message).join(' ')).toMatch(/cost/i);
    });
    test('a body over the size limit → 413', async () => {
      const res = await stack.api.gql('admin', `{ __typename } # ${'x'.repeat(200_000)}`);
      expect(res.status).toBe(413);
    });
    test('an invalid cursor is the caller error, not a fault', async () => {
      const res = await stack.api.gql('admin', '{ customers(after: "nope") { edges { cursor } } }');
      expect(res.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    });
    test('unexpected errors are masked', async () => {
      const connection = await Connection.connect({ address: testServices().temporalAddress });
      const closedClient = new Client({ connection });
      await connection.close();
      const broken = await buildTestApi(stack.t.db, closedClient, stack.temporal.taskQueue);
      const sub = await stack.t.db('subscribers').first('id');
      const id = sub?.id ?? '00000000-0000-4000-8000-000000000000';
      await stack.t.db('customers').insert({ kind: 'individual', name: 'mask' });
      const res = await broken.gql('admin', `mutation { subscriberCreate(input: { billingAccountId: "${id}", planCode: "x", msisdn: "4915100009999" }) { userErrors { code } } }`);
      const masked = await broken.gql('admin', `{ subscribers(first: 1) { edges { node { lifecycle { action } } } } }`);
      expect(res.status).toBe(200);
      if (masked.body.errors) expect(masked.body.errors[0].message).toBe('Unexpected error.');
    });
    test('production mode: no introspection and no GraphiQL', async () => {
      const prod = await buildTestApi(stack.t.db, stack.temporal.client, stack.temporal.taskQueue, { NODE_ENV: 'production' });
      const introspection = await prod.gql('admin', '{ __schema { types { name } } }');
      expect(introspection.body.errors?.[0]?.message).toMatch(/introspection/i);
      const page = await request(prod.app).get('/graphql').set('Accept', 'text/html');
      expect(page.status).toBe(401);
      const dev = await request(stack.api.app).get('/graphql').set('Accept', 'text/html');
      expect(dev.status).toBe(200);
      expect(dev.text).toMatch(/graphiql/i);
    });
  });

  describe('health and metrics', () => {
    test('/healthz, /readyz and /metrics answer', async () => {
      expect((await request(stack.api.app).get('/healthz')).status).toBe(200);
      const ready = await request(stack.api.app).get('/readyz');
      expect(ready.body).toEqual({ status: 'ready', database: true, temporal: true });
      const metrics = await request(stack.api.app).get('/metrics');
      expect(metrics.text).toMatch(/http_requests_total/);
    });
  });

  describe('catalog, customers and lines end to end', () => {
    let accountId: string;
    test('planCreate validates and names the field', async () => {
      const bad = await stack.api.gql('admin', PLAN_CREATE, {
        input: { code: 'Bad Code', name: '', paymentType: 'prepaid', currency: 'eur', recurringFeeMinor: '-1', tariff: { nope: true } },
      });
      const fields = bad.body.data.planCreate.userErrors.map((e: { field: string[] }) => e.field.join('.'));
      expect(fields).toEqual(expect.arrayContaining(['input.code', 'input.name', 'input.currency', 'input.recurringFeeMinor']));
      expect(fields.some((f: string) => f.startsWith('input.tariff'))).toBe(true);
      expect(await stack.t.db('plans').where({ code: 'Bad Code' })).toHaveLength(0);
    });

    test('planCreate creates a family plan with a shared pool', async () => {
      const res = await stack.api.gql('admin', PLAN_CREATE, {
        input: {
          code: 'family-test', name: 'Family', paymentType: 'postpaid', category: 'family', currency: 'EUR', recurringFeeMinor: '4000',
          allowances: [{ service: 'data', units: '100000000000', shared: true }], tariff: PREPAID_EXAMPLE_TARIFF,
        },
      });
      expect(res.body.data.planCreate.userErrors).toEqual([]);
      expect(res.body.data.planCreate.plan).toMatchObject({ code: 'family-test', recurringFee: { amount: '4000', currency: 'EUR' }, allowances: [{ service: 'data', units: '100000000000', shared: true }] });
      const again = await stack.api.gql('admin', PLAN_CREATE, { input: { code: 'family-test', name: 'x', paymentType: 'prepaid', currency: 'EUR', recurringFeeMinor: '0', tariff: PREPAID_EXAMPLE_TARIFF } });
      expect(again.body.data.planCreate.userErrors).toEqual([expect.objectContaining({ field: ['input', 'code'], code: 'TAKEN' })]);
    });

    test('customerCreate creates customer, account and wallet; bad input names the field', async () => {
      const bad = await stack.api.gql('integrator', CUSTOMER_CREATE, { input: { name: ' ', email: 'nope', account: { paymentType: 'prepaid', currency: 'EUR', creditLimitMinor: '100' } } });
      expect(bad.body.data.customerCreate.userErrors.map((e: { field: string[] }) => e.field.join('.'))).toEqual(
        expect.arrayContaining(['input.name', 'input.email', 'input.account.creditLimitMinor']),
      );
      const res = await stack.api.gql('integrator', CUSTOMER_CREATE, { input: { name: 'Grace', account: { paymentType: 'postpaid', currency: 'EUR', creditLimitMinor: '5000' } } });
      expect(res.body.data.customerCreate.userErrors).toEqual([]);
      expect(res.body.data.customerCreate.billingAccount).toMatchObject({ paymentType: 'postpaid', wallet: { balance: { amount: '0', currency: 'EUR' }, available: { amount: '5000' } } });
      accountId = res.body.data.customerCreate.billingAccount.id;
    });

    test('subscriberCreate runs the lifecycle workflow, which writes the line to PostgreSQL', async () => {
      const res = await stack.api.gql('storefront', SUBSCRIBER_CREATE, { input: { billingAccountId: accountId, planCode: 'family-test', msisdn: '4915112345678', idempotencyKey: 'order-0001' } });
      expect(res.body.data.subscriberCreate.userErrors).toEqual([]);
      const line = res.body.data.subscriberCreate.subscriber;
      expect(line).toMatchObject({ msisdn: '4915112345678', state: 'active', planCode: 'family-test', workflowId: `subscriber:${line.id}` });
      expect(line.lifecycle.map((h: { action: string }) => h.action)).toEqual(['register', 'activate']);
      const row = await stack.t.db('subscribers').where({ id: line.id }).first();
      expect(row).toMatchObject({ state: 'active', msisdn: '4915112345678' });
      expect(await stack.t.db('subscriptions').where({ subscriber_id: line.id, state: 'active' })).toHaveLength(1);
      expect((await stack.t.db('subscriber_transitions').where({ subscriber_id: line.id })).map((r) => r.action).sort()).toEqual(['activate', 'register']);

      const description = await stack.temporal.client.workflow.getHandle(line.workflowId).describe();
      expect(description.searchAttributes).toMatchObject({ Msisdn: ['4915112345678'], SubscriberId: [line.id], PlanCode: ['family-test'], LifecycleState: ['active'] });

      // A retried order with the same idempotency key gets the same line, not a second one.
      const retry = await stack.api.gql('storefront', SUBSCRIBER_CREATE, { input: { billingAccountId: accountId, planCode: 'family-test', msisdn: '4915112345678', idempotencyKey: 'order-0001' } });
      expect(retry.body.data.subscriberCreate.subscriber.id).toBe(line.id);
      expect(await stack.t.db('subscribers').where({ msisdn: '4915112345678' })).toHaveLength(1);
    });

    test('a number already in use is refused in userErrors and nothing is written', async () => {
      const before = await stack.t.db('subscribers').count<{ count: string }[]>('* as count');
      const res = await stack.api.gql('integrator', SUBSCRIBER_CREATE, { input: { billingAccountId: accountId, planCode: 'family-test', msisdn: '4915112345678' } });
      expect(res.body.data.subscriberCreate.userErrors).toEqual([expect.objectContaining({ code: 'MSISDN_TAKEN', field: ['input', 'msisdn'] })]);
      const after = await stack.t.db('subscribers').count<{ count: string }[]>('* as count');
      expect(after[0].count).toBe(before[0].count);
    });

    test('unknown plan and malformed MSISDN are named', async () => {
      const res = await stack.api.gql('integrator', SUBSCRIBER_CREATE, { input: { billingAccountId: accountId, planCode: 'no-such-plan', msisdn: '+49 151' } });
      expect(res.body.data.subscriberCreate.userErrors).toEqual([expect.objectContaining({ field: ['input', 'msisdn'] })]);
      const res2 = await stack.api.gql('integrator', SUBSCRIBER_CREATE, { input: { billingAccountId: accountId, planCode: 'no-such-plan', msisdn: '4915100000042' } });
      expect(res2.body.data.subscriberCreate.userErrors).toEqual([expect.objectContaining({ code: 'PLAN_NOT_FOUND', field: ['input', 'planCode'] })]);
    });

    test('customers, accounts and subscribers page as Relay connections', async () => {
      const res = await stack.api.gql('support', '{ customers(first: 1) { edges { cursor node { id billingAccounts(first: 5) { edges { node { id } } } } } pageInfo { hasNextPage endCursor } } subscribers(first: 10, state: active) { edges { node { msisdn } } } }');
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.customers.edges).toHaveLength(1);
      expect(res.body.data.subscribers.edges.map((e: { node: { msisdn: string } }) => e.node.msisdn)).toContain('4915112345678');
    });
  });
});
