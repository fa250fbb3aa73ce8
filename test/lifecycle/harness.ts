/** A whole lifecycle stack for one test file: database, worker, the real API listening on loopback
 * (so the SM-DP+ simulator can post its notifications to it), the simulator, and the ES2+ client. */
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { createTestDatabase } from '../support/services';
import { startTestWorker } from '../support/temporal';
import { buildTestApi } from '../api/support';
import { createSmdpPlusSimulator, type SmdpPlusSimulator } from '../../simulators/smdp-plus';
import { Es2PlusClient } from '../../domain/sims/es2plus.client';
import { ES2PLUS_NOTIFICATION_PATH } from '../../api/es2plus/notifications.router';
import { openWallet } from '../../domain/ledger/ledger.repository';
import { addMsisdns, importSimBatch, seedEsimInventory } from '../../domain/sims/inventory.repository';
import { withLuhn } from '../../domain/sims/inventory';

export async function startLifecycleStack() {
  const t = await createTestDatabase();
  const sim: SmdpPlusSimulator = await createSmdpPlusSimulator({ autoDevice: { delayMs: 5 }, deviceStepDelayMs: 2, adoptUnknownIccids: true, notificationRetry: { attempts: 5, backoffMs: 50 } });
  const es2plus = new Es2PlusClient({ baseUrl: sim.url, functionRequesterIdentifier: 'mvno-bss-test', timeoutMs: 2_000 });
  const temporal = await startTestWorker(t.db, { es2plus });
  const api = await buildTestApi(t.db, temporal.client, temporal.taskQueue);
  const server = http.createServer(api.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sim.setNotificationUrl(`${apiUrl}${ES2PLUS_NOTIFICATION_PATH}`);
  return {
    t, db: t.db, sim, es2plus, temporal, api, apiUrl,
    async stop() {
      await sim.close();
      es2plus.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await temporal.stop();
      await t.drop();
    },
  };
}

let n = 0;
const uniq = () => `${process.pid % 1000}${(n++).toString().padStart(4, '0')}${crypto.randomInt(100, 999)}`;

export async function seedPlanWithFee(db: Knex, feeMinor: number, code = `fee-${uniq()}`): Promise<string> {
  await db('plans').insert({
    code, name: `Plan ${code}`, payment_type: 'prepaid', category: 'standard', currency: 'EUR', recurring_fee_minor: feeMinor,
    billing_period_unit: 'month', billing_period_count: 1, tariff: JSON.stringify({}),
  });
  return code;
}

export async function seedAccount(db: Knex): Promise<string> {
  const [customer] = await db('customers').insert({ kind: 'individual', name: 'Lifecycle test' }).returning('id');
  const [account] = await db('billing_accounts').insert({ customer_id: customer.id, payment_type: 'prepaid', currency: 'EUR', credit_limit_minor: 0 }).returning('id');
  await openWallet(db, { billingAccountId: account.id, currency: 'EUR', creditLimitMinor: 0n });
  return account.id;
}

export async function seedNumbers(db: Knex, count: number): Promise<string[]> {
  const base = crypto.randomInt(10_000_000, 99_999_999);
  const numbers = Array.from({ length: count }, (_, i) => `4917${String(base + i).padStart(8, '0')}`);
  await addMsisdns(db, numbers);
  return numbers;
}

export async function seedPhysicalSims(db: Knex, count: number): Promise<string[]> {
  const base = crypto.randomInt(1e8, 9e8);
  const rows = Array.from({ length: count }, (_, i) => {
    const serial = `${base}${String(i).padStart(6, '0')}`;
    return `${withLuhn(`8949${serial}`)},26201${serial.slice(-10)},1234,12345678,hsm:test/${serial}`;
  });
  const report = await importSimBatch(db, { csv: `iccid,imsi,pin1,puk1,key_reference\n${rows.join('\n')}\n`, batchRef: `test-${uniq()}`, form: 'physical', actor: 'test' });
  if (report.rejected.length) throw new Error(JSON.stringify(report.rejected));
  return rows.map((r) => r.split(',')[0]);
}

export { seedEsimInventory };

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`not as expected after ${timeoutMs} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
