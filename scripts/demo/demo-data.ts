import crypto from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { Knex } from 'knex';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';
import { TariffSchema } from '../../domain/charging/tariff.types';
import { createPlan, findPlanByCode } from '../../domain/catalog/catalog.repository';
import { planCreateInputSchema } from '../../domain/catalog/plan';
import { createCustomer } from '../../domain/customers/customers.repository';
import { customerCreateInputSchema } from '../../domain/customers/customer';
import { subscriberActivateUpdate, subscriberRegisteredUpdate, subscriberWorkflowId } from '../../workflows/subscriber.messages';

const GB = 1_000_000_000n;
const MINUTES = 60n;

/** The demo MVNO's catalog: one plan of each kind the design names. */
const DEMO_PLANS = [
  { code: 'prepaid-basic', name: 'Prepaid Basic', paymentType: 'prepaid', category: 'standard', recurringFeeMinor: 1000n,
    allowances: [{ service: 'data', units: 5n * GB }, { service: 'voice', units: 300n * MINUTES }, { service: 'sms', units: 100n }] },
  { code: 'postpaid-unlimited', name: 'Postpaid Unlimited', paymentType: 'postpaid', category: 'standard', recurringFeeMinor: 2500n,
    allowances: [{ service: 'data', units: 50n * GB }, { service: 'voice', units: 3000n * MINUTES }, { service: 'sms', units: 1000n }] },
  { code: 'hybrid-flex', name: 'Hybrid Flex', paymentType: 'hybrid', category: 'standard', recurringFeeMinor: 1500n,
    allowances: [{ service: 'data', units: 10n * GB, rollover: true }, { service: 'voice', units: 600n * MINUTES }] },
  { code: 'data-only-20', name: 'Data Only 20 GB', paymentType: 'prepaid', category: 'data_only', recurringFeeMinor: 1200n,
    allowances: [{ service: 'data', units: 20n * GB }] },
  { code: 'family-share', name: 'Family Share 100 GB', paymentType: 'postpaid', category: 'family', recurringFeeMinor: 4000n,
    allowances: [{ service: 'data', units: 100n * GB, shared: true }, { service: 'voice', units: 6000n * MINUTES, shared: true }] },
  { code: 'promo-summer', name: 'Summer Promo 10 GB', paymentType: 'prepaid', category: 'promotional', recurringFeeMinor: 500n,
    allowances: [{ service: 'data', units: 10n * GB }], availableFrom: new Date('2026-06-01T00:00:00Z'), availableUntil: new Date('2027-09-01T00:00:00Z') },
] as const;

const DEMO_CUSTOMERS = [
  { externalRef: 'demo-alice', name: 'Alice Demo', email: 'alice@example.com', account: { paymentType: 'prepaid', currency: 'EUR' },
    lines: [{ msisdn: '4915100000001', planCode: 'prepaid-basic' }] },
  { externalRef: 'demo-bob', name: 'Bob Demo', email: 'bob@example.com', account: { paymentType: 'postpaid', currency: 'EUR', creditLimitMinor: 10000n },
    lines: [{ msisdn: '4915100000002', planCode: 'postpaid-unlimited' }] },
  { externalRef: 'demo-carter-family', name: 'Carter Family', email: 'carter@example.com', account: { paymentType: 'postpaid', currency: 'EUR', creditLimitMinor: 20000n },
    lines: [{ msisdn: '4915100000003', planCode: 'family-share' }, { msisdn: '4915100000004', planCode: 'family-share' }] },
  { externalRef: 'demo-dana', name: 'Dana Demo', account: { paymentType: 'hybrid', currency: 'EUR', creditLimitMinor: 2000n },
    lines: [{ msisdn: '4915100000005', planCode: 'hybrid-flex' }] },
] as const;

/** Catalog, customers, a number range and SIM stock. Idempotent: a second run adds nothing. */
export async function seedDemoData(db: Knex): Promise<{ plans: number; customers: number }> {
  const planSchema = planCreateInputSchema(TariffSchema);
  let plans = 0;
  for (const plan of DEMO_PLANS) {
    if (await findPlanByCode(db, plan.code)) continue;
    await createPlan(db, planSchema.parse({ ...plan, currency: 'EUR', tariff: PREPAID_EXAMPLE_TARIFF }));
    plans++;
  }
  let customers = 0;
  for (const c of DEMO_CUSTOMERS) {
    if (await db('customers').where({ external_ref: c.externalRef }).first()) continue;
    await createCustomer(db, customerCreateInputSchema.parse({ ...c, lines: undefined }));
    customers++;
  }
  const numbers = Array.from({ length: 100 }, (_, i) => ({ msisdn: `49151000${String(i + 100).padStart(5, '0')}` }));
  await db('msisdns').insert(numbers).onConflict('msisdn').ignore();
  const sims = Array.from({ length: 50 }, (_, i) => ({
    iccid: `8949000000000${String(i).padStart(6, '0')}`,
    imsi: `26201000${String(i).padStart(7, '0')}`,
    form: i % 2 === 0 ? 'physical' : 'esim',
    batch_ref: 'demo-batch-1',
    key_reference: `hsm:demo-batch-1/${i}`,
  }));
  await db('sims').insert(sims).onConflict('iccid').ignore();
  return { plans, customers };
}

/** Deterministic ids make the demo lines' workflows idempotent across restarts. */
function demoSubscriberId(msisdn: string): string {
  const h = crypto.createHash('sha256').update(`demo-line:${msisdn}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Lines go through their lifecycle workflows like any other (the worker must be running). */
export async function seedDemoLines(db: Knex, temporal: Client, taskQueue: string): Promise<number> {
  let created = 0;
  for (const c of DEMO_CUSTOMERS) {
    const account = await db('billing_accounts').join('customers', 'customers.id', 'billing_accounts.customer_id').where('customers.external_ref', c.externalRef).first('billing_accounts.id');
    if (!account) continue;
    for (const line of c.lines) {
      const subscriberId = demoSubscriberId(line.msisdn);
      if (await db('subscribers').where({ id: subscriberId }).first()) continue;
      const workflowId = subscriberWorkflowId(subscriberId);
      const snapshot = await temporal.workflow.executeUpdateWithStart(subscriberRegisteredUpdate, {
        startWorkflowOperation: new WithStartWorkflowOperation('subscriberWorkflow', {
          workflowId, taskQueue, workflowIdConflictPolicy: 'USE_EXISTING',
          args: [{ subscriberId, billingAccountId: account.id, msisdn: line.msisdn, planCode: line.planCode, actor: 'demo-seed' }],
        }),
      });
      if (snapshot.state === 'pending') {
        await temporal.workflow.getHandle(workflowId).executeUpdate(subscriberActivateUpdate, { args: [{ actor: 'demo-seed' }] });
      }
      created++;
    }
  }
  return created;
}
