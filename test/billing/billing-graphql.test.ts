/** The billing and payments GraphQL surface end to end through the real Express app, worker and
 * database: storefront top-ups (success, decline as a userError), vouchers, balances and buckets,
 * invoices with credit notes, the readable HTML and the PDF, and who may do what. */
import crypto from 'node:crypto';
import request from 'supertest';
import { createTestDatabase } from '../support/services';
import { startBillingWorker } from './support';
import { buildTestApi } from '../api/support';
import { seedAccount, seedBucket, seedLine, seedPlan } from '../../domain/charging/testing/fixtures';
import { SandboxPaymentGateway } from '../../domain/payments';
import { setApiPaymentGateway } from '../../api/graphql/payments.schema';
import { addInvoiceLine, issueInvoice, openInvoiceFor } from '../../domain/billing/invoices.repository';
import { closeSharedEngine } from '../../domain/payments/shared-engine';
import { verifyBalances } from '../../domain/ledger/ledger-verify';
import { pdfTextOf } from '../../domain/billing/testing/pdf-text';

jest.setTimeout(120_000);

describe('billing GraphQL', () => {
  let t: Awaited<ReturnType<typeof createTestDatabase>>;
  let w: Awaited<ReturnType<typeof startBillingWorker>>;
  let api: Awaited<ReturnType<typeof buildTestApi>>;
  const gateway = new SandboxPaymentGateway();

  beforeAll(async () => {
    t = await createTestDatabase();
    w = await startBillingWorker(t.db, { paymentGateway: gateway });
    setApiPaymentGateway(gateway);
    api = await buildTestApi(t.db, w.client, w.taskQueue);
  });
  afterAll(async () => {
    setApiPaymentGateway(undefined);
    await w?.stop();
    await closeSharedEngine(t.db);
    await t?.drop();
  });
  afterEach(async () => {
    expect((await verifyBalances(t.db)).problems).toEqual([]);
  });

  const addCard = (accountId: string, token: string) => api.gql('storefront', `mutation($i: PaymentMethodAddInput!) { paymentMethodAdd(input: $i) { paymentMethod { id last4 } userErrors { code message } } }`,
    { i: { billingAccountId: accountId, paymentMethodToken: token } });
  const topUp = (accountId: string, amount: string) => api.gql('storefront', `mutation($i: BalanceTopUpInput!) { balanceTopUp(input: $i) { topUp { status amount { amount currency } workflowId } userErrors { field code message } } }`,
    { i: { billingAccountId: accountId, amount, idempotencyKey: crypto.randomUUID() } });

  it('storefront tops up; a declined card is a userError; support sees balances and buckets', async () => {
    const plan = await seedPlan(t.db);
    const line = await seedLine(t.db, { planId: plan });
    await seedBucket(t.db, { accountId: line.accountId, subscriptionId: line.subscriptionId, service: 'data', units: 1_000_000n });
    expect((await addCard(line.accountId, 'pm_card_visa')).body.data.paymentMethodAdd.paymentMethod.last4).toBe('4242');
    const ok = await topUp(line.accountId, '1500');
    expect(ok.body.data.balanceTopUp).toMatchObject({ topUp: { status: 'credited', amount: { amount: '1500', currency: 'EUR' } }, userErrors: [] });

    const declinedAccount = await seedAccount(t.db);
    await addCard(declinedAccount, 'pm_card_chargeDeclined');
    const declined = await topUp(declinedAccount, '1500');
    expect(declined.body.data.balanceTopUp.topUp).toBeNull();
    expect(declined.body.data.balanceTopUp.userErrors[0]).toMatchObject({ code: 'PAYMENT_DECLINED', message: 'the payment was declined: Your card was declined.' });

    const subs = await api.gql('support', `query($s: ID) { subscriptions(subscriberId: $s) { planCode balance { amount } buckets { service initialUnits usedPercent } } }`, { s: line.subscriberId });
    expect(subs.body.data.subscriptions[0]).toMatchObject({ balance: { amount: '1500' }, buckets: [{ service: 'data', initialUnits: '1000000', usedPercent: 0 }] });
    expect((await topUp(line.accountId, '100')).status).toBe(200);
    const forbidden = await api.gql('support', `mutation($i: BalanceTopUpInput!) { balanceTopUp(input: $i) { userErrors { code } } }`,
      { i: { billingAccountId: line.accountId, amount: '1', idempotencyKey: crypto.randomUUID() } });
    expect(forbidden.body.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('finance creates vouchers; a storefront redeems one once', async () => {
    const account = await seedAccount(t.db);
    const batch = await api.gql('finance', `mutation($i: VoucherBatchCreateInput!) { voucherBatchCreate(input: $i) { batch { count pins { serial pin } } userErrors { code } } }`,
      { i: { count: 2, amount: '1000', currency: 'EUR', expiresAt: new Date(Date.now() + 86_400_000).toISOString() } });
    const pin = batch.body.data.voucherBatchCreate.batch.pins[0].pin;
    const redeem = () => api.gql('storefront', `mutation($i: VoucherRedeemInput!) { voucherRedeem(input: $i) { redemption { amount { amount } balance { amount } } userErrors { code } } }`,
      { i: { billingAccountId: account, pin } });
    expect((await redeem()).body.data.voucherRedeem.redemption).toEqual({ amount: { amount: '1000' }, balance: { amount: '1000' } });
    expect((await redeem()).body.data.voucherRedeem.userErrors[0].code).toBe('VOUCHER_ALREADY_REDEEMED');
  });

  it('finance reads invoices, issues credit notes and opens the readable invoice', async () => {
    const account = await seedAccount(t.db, { paymentType: 'postpaid', creditLimitMinor: 10_000n });
    await addInvoiceLine(t.db, { billingAccountId: account, asOf: '2026-05-03', kind: 'one_off', description: 'Roaming pack', amountMinor: 2_000n, sourceRef: 'pack' });
    const inv = await issueInvoice(t.db, (await openInvoiceFor(t.db, account, '2026-05-03')).id, { asOf: '2026-06-01' });
    const list = await api.gql('finance', `query($a: ID) { invoices(billingAccountId: $a) { id number total { amount } htmlUrl pdfUrl lines { kind amountMinor } } }`, { a: account });
    expect(list.body.data.invoices[0]).toMatchObject({ number: inv.number, total: { amount: '2380' }, htmlUrl: `/invoices/${inv.id}.html`, pdfUrl: `/invoices/${inv.id}.pdf` });
    const cn = await api.gql('finance', `mutation($i: CreditNoteCreateInput!) { creditNoteCreate(input: $i) { creditNote { number amountMinor } userErrors { code } } }`,
      { i: { invoiceId: inv.id, amount: '380', reason: 'Goodwill after outage', idempotencyKey: crypto.randomUUID() } });
    expect(cn.body.data.creditNoteCreate.creditNote.number).toMatch(/^CN-/);
    const html = await request(api.app).get(`/invoices/${inv.id}.html`).set('Authorization', `Bearer ${api.keys.finance}`);
    expect(html.status).toBe(200);
    expect(html.text).toContain('Roaming pack');
    expect(html.text).toContain(inv.number!);
    expect((await request(api.app).get(`/invoices/${inv.id}.html`).set('Authorization', `Bearer ${api.keys.storefront}`)).status).toBe(403);
    expect((await request(api.app).get(`/invoices/${inv.id}.html`)).status).toBe(401);

    const pdfUrl: string = list.body.data.invoices[0].pdfUrl;
    const pdf = await request(api.app).get(pdfUrl).set('Authorization', `Bearer ${api.keys.support}`).buffer(true)
      .parse((res, done) => { const chunks: Buffer[] = []; res.on('data', (c: Buffer) => chunks.push(c)); res.on('end', () => done(null, Buffer.concat(chunks))); });
    expect(pdf.status).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    const bytes = pdf.body as Buffer;
    expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const text = pdfTextOf(bytes);
    for (const s of [inv.number!, 'Roaming pack', 'One-off charges', 'Tax (19.00 %)', '23.80 EUR', 'Credit note CN-', '-3.80 EUR', 'Amount due', '20.00 EUR']) expect(text).toContain(s);
    expect((await request(api.app).get(pdfUrl)).status).toBe(401);
    expect((await request(api.app).get(pdfUrl).set('Authorization', `Bearer ${api.keys.storefront}`)).status).toBe(403);
    expect((await request(api.app).get('/invoices/not-an-id.pdf').set('Authorization', `Bearer ${api.keys.finance}`)).status).toBe(404);
  });
});
