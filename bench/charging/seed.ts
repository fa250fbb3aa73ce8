/**
 * Bulk load for the charging benchmark: N subscribers with realistic balances, written set-based
 * (one INSERT … SELECT FROM generate_series per table and chunk), every balance funded by a
 * journal entry so the ledger check holds from the start.
 *
 * Population (N = 100,000 by default):
 *  - 80 % individual lines on their own billing account: 70 % prepaid (wallet 0–20 EUR, 5 % empty),
 *    30 % postpaid (credit limit 50 EUR);
 *  - 20 % family members: families of 4, each member on a prepaid child account (wallet 0–5 EUR)
 *    under a postpaid family parent account that holds a shared 20 GB data pool.
 * Buckets per line: data 1–5 GB (a fifth of prepaid lines only 10–50 MB, so they spill to the
 * wallet), voice 300 min and 100 SMS on every other line.
 * Identifiers: IMSI 262<run><i:10>, MSISDN 49<run><i:9>, so runs against a shared database do not collide.
 */
import type { Client } from 'pg';
import { PREPAID_EXAMPLE_TARIFF } from '../../domain/charging/tariff.example';

export interface Population {
  run: string; // two digits
  subscribers: number;
  individuals: number;
  families: number;
}

export function population(subscribers: number, run: string): Population {
  const families = Math.floor((subscribers * 0.2) / 4);
  return { run, subscribers, individuals: subscribers - families * 4, families };
}

export const imsiOf = (p: Population, i: number) => `262${p.run}${String(i).padStart(10, '0')}`;
export const msisdnOf = (p: Population, i: number) => `49${p.run}${String(i).padStart(9, '0')}`;

export async function seedPopulation(client: Client, p: Population, log: (m: string) => void): Promise<void> {
  const r = p.run;
  const N = p.subscribers;
  const I = p.individuals;
  const F = p.families;
  const q = async (label: string, sql: string, values: unknown[] = []) => {
    const t0 = Date.now();
    const res = await client.query(sql, values);
    log(`  ${label}: ${res.rowCount ?? 0} rows, ${Date.now() - t0} ms`);
  };
  const tariff = JSON.stringify(PREPAID_EXAMPLE_TARIFF);
  await q('plans', `
    INSERT INTO plans (id, code, name, payment_type, category, currency, recurring_fee_minor, billing_period_unit, tariff)
    VALUES (md5($1 || ':plan:prepaid')::uuid, 'bench-' || $1 || '-prepaid', 'Bench prepaid', 'prepaid', 'standard', 'EUR', 0, 'month', $2::jsonb),
           (md5($1 || ':plan:postpaid')::uuid, 'bench-' || $1 || '-postpaid', 'Bench postpaid', 'postpaid', 'standard', 'EUR', 2500, 'month', $2::jsonb),
           (md5($1 || ':plan:family')::uuid, 'bench-' || $1 || '-family', 'Bench family', 'prepaid', 'family', 'EUR', 1000, 'month', $2::jsonb)
    ON CONFLICT (code) DO NOTHING`, [r, tariff]);

  // Accounts: individuals a = 1..I, family parents a = I+1..I+F, children a = I+F+1..N+F (child of member i = a - F).
  await q('customers', `
    INSERT INTO customers (id, kind, name)
    SELECT md5($1 || ':cust:' || a)::uuid, 'individual', 'Bench customer ' || a FROM generate_series(1, $2::int + $3::int) a`, [r, I, F]);
  await q('billing accounts (individual, parent)', `
    INSERT INTO billing_accounts (id, customer_id, payment_type, currency, credit_limit_minor)
    SELECT md5($1 || ':acct:' || a)::uuid, md5($1 || ':cust:' || a)::uuid,
           CASE WHEN a > $2 OR a % 10 >= 7 THEN 'postpaid' ELSE 'prepaid' END, 'EUR',
           CASE WHEN a > $2 THEN 10000 WHEN a % 10 >= 7 THEN 5000 ELSE 0 END
      FROM generate_series(1, $2::int + $3::int) a`, [r, I, F]);
  await q('billing accounts (family children)', `
    INSERT INTO billing_accounts (id, customer_id, parent_account_id, payment_type, currency, credit_limit_minor)
    SELECT md5($1 || ':acct:' || a)::uuid, md5($1 || ':cust:' || ($2 + 1 + (a - $2 - $3 - 1) / 4))::uuid,
           md5($1 || ':acct:' || ($2 + 1 + (a - $2 - $3 - 1) / 4))::uuid, 'prepaid', 'EUR', 0
      FROM generate_series($2::int + $3::int + 1, $4::int + $3::int) a`, [r, I, F, N]);
  await q('wallet ledger accounts', `
    INSERT INTO ledger_accounts (code, kind, unit, billing_account_id)
    SELECT 'wallet:' || md5($1 || ':acct:' || a)::uuid, 'wallet', 'EUR', md5($1 || ':acct:' || a)::uuid
      FROM generate_series(1, $2::int + $3::int) a`, [r, N, F]);
  await client.query(`INSERT INTO ledger_accounts (code, kind, unit) VALUES ('gateway_cash:EUR', 'gateway_cash', 'EUR') ON CONFLICT (code) DO NOTHING`);
  // Prepaid wallets 0–20 EUR (5 % empty), children 0–5 EUR, postpaid 0 (they use the credit limit).
  const balance = `CASE WHEN a > $2::int + $3::int THEN ((a * 7919) % 500) * 10000
                        WHEN a > $2 OR a % 10 >= 7 THEN 0
                        WHEN a % 20 = 3 THEN 0
                        ELSE ((a * 7919) % 2000) * 10000 + 10000 END`;
  await q('wallets', `
    INSERT INTO wallets (ledger_account_id, billing_account_id, currency, balance_micros, credit_limit_micros)
    SELECT la.id, ba.id, 'EUR', ${balance}, ba.credit_limit_minor * 10000
      FROM generate_series(1, $4::int + $3::int) a
      JOIN billing_accounts ba ON ba.id = md5($1 || ':acct:' || a)::uuid
      JOIN ledger_accounts la ON la.code = 'wallet:' || ba.id`, [r, I, F, N]);
  await q('top-up journal entries', `
    INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, details, occurred_at)
    SELECT 'top_up', 'bench-seed', 'bench:' || $1 || ':topup:' || w.ledger_account_id, 'bench',
           jsonb_build_object('kind', 'wallet', 'amountMicros', w.balance_micros::text), now()
      FROM wallets w JOIN billing_accounts ba ON ba.id = w.billing_account_id
     WHERE w.balance_micros > 0 AND ba.customer_id IN (SELECT md5($1 || ':cust:' || c)::uuid FROM generate_series(1, $2::int) c)`, [r, I + F]);
  await q('top-up postings', `
    INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
    SELECT e.id, x.account, 'EUR', x.amount
      FROM journal_entries e
      JOIN wallets w ON e.idempotency_key = 'bench:' || $1 || ':topup:' || w.ledger_account_id
      CROSS JOIN LATERAL (VALUES (w.ledger_account_id, w.balance_micros),
                                 ((SELECT id FROM ledger_accounts WHERE code = 'gateway_cash:EUR'), -w.balance_micros)) x(account, amount)
     WHERE e.source_ref = 'bench-seed' AND e.entry_type = 'top_up' AND e.idempotency_key LIKE 'bench:' || $1 || ':topup:%'`, [r]);

  // Lines i = 1..N: individuals on account i, family members on child account i + F.
  await q('sims', `
    INSERT INTO sims (id, iccid, imsi, form, state)
    SELECT md5($1 || ':sim:' || i)::uuid, '89' || $1 || lpad(i::text, 14, '0'), '262' || $1 || lpad(i::text, 10, '0'),
           CASE WHEN i % 3 = 0 THEN 'esim' ELSE 'physical' END, 'active'
      FROM generate_series(1, $2::int) i`, [r, N]);
  await q('subscribers', `
    INSERT INTO subscribers (id, billing_account_id, msisdn, sim_id, state, activated_at)
    SELECT md5($1 || ':sub:' || i)::uuid, md5($1 || ':acct:' || CASE WHEN i <= $2 THEN i ELSE i + $3 END)::uuid,
           '49' || $1 || lpad(i::text, 9, '0'), md5($1 || ':sim:' || i)::uuid, 'active', now()
      FROM generate_series(1, $4::int) i`, [r, I, F, N]);
  await q('subscriptions', `
    INSERT INTO subscriptions (id, subscriber_id, plan_id, state, period_anchor, current_period_start, current_period_end, next_charge_on)
    SELECT md5($1 || ':subn:' || i)::uuid, md5($1 || ':sub:' || i)::uuid,
           md5($1 || ':plan:' || CASE WHEN i > $2 THEN 'family' WHEN i % 10 >= 7 THEN 'postpaid' ELSE 'prepaid' END)::uuid,
           'active', now() - interval '3 days', now() - interval '3 days', now() + interval '27 days', (now() + interval '27 days')::date
      FROM generate_series(1, $3::int) i`, [r, I, N]);

  // Buckets: (line, service) and family pools; each with its ledger account and a funding entry.
  const spec = `
    SELECT 'bench:' || $1 || ':b:' || i || ':data' AS code, md5($1 || ':acct:' || CASE WHEN i <= $2 THEN i ELSE i + $3 END)::uuid AS acct,
           md5($1 || ':subn:' || i)::uuid AS subn, 'data' AS service, 'bytes' AS unit,
           CASE WHEN i <= $2 AND i % 10 < 7 AND i % 5 = 1 THEN (10 + i % 41)::bigint * 1000000 ELSE (1 + i % 5)::bigint * 1000000000 END AS units, 100 AS priority
      FROM generate_series(1, $4::int) i
    UNION ALL
    SELECT 'bench:' || $1 || ':b:' || i || ':voice', md5($1 || ':acct:' || CASE WHEN i <= $2 THEN i ELSE i + $3 END)::uuid,
           md5($1 || ':subn:' || i)::uuid, 'voice', 'seconds', 18000, 100
      FROM generate_series(2, $4::int, 2) i
    UNION ALL
    SELECT 'bench:' || $1 || ':b:' || i || ':sms', md5($1 || ':acct:' || CASE WHEN i <= $2 THEN i ELSE i + $3 END)::uuid,
           md5($1 || ':subn:' || i)::uuid, 'sms', 'messages', 100, 100
      FROM generate_series(2, $4::int, 2) i
    UNION ALL
    SELECT 'bench:' || $1 || ':pool:' || f, md5($1 || ':acct:' || ($2 + f))::uuid, NULL::uuid, 'data', 'bytes', 20000000000, 200
      FROM generate_series(1, $5::int) f`;
  const args = [r, I, F, N, F];
  await q('bucket ledger accounts', `INSERT INTO ledger_accounts (code, kind, unit, billing_account_id) SELECT code, 'bucket', unit, acct FROM (${spec}) s`, args);
  await q('buckets', `
    INSERT INTO buckets (ledger_account_id, billing_account_id, subscription_id, service, unit, initial_units, balance_units, priority, valid_from, valid_until, source)
    SELECT la.id, s.acct, s.subn, s.service, s.unit, s.units, s.units, s.priority, now() - interval '3 days', now() + interval '27 days', 'bench'
      FROM (${spec}) s JOIN ledger_accounts la ON la.code = s.code`, args);
  await q('grant journal entries', `
    INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, details, occurred_at)
    SELECT 'allowance_grant', 'bench-seed', 'grant:' || la.code, 'bench', jsonb_build_object('kind', 'allowance_grant', 'units', b.initial_units::text), now()
      FROM buckets b JOIN ledger_accounts la ON la.id = b.ledger_account_id
     WHERE la.code LIKE 'bench:' || $1 || ':%'`, [r]);
  await q('grant postings', `
    INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
    SELECT e.id, x.account, b.unit, x.amount
      FROM buckets b
      JOIN ledger_accounts la ON la.id = b.ledger_account_id
      JOIN journal_entries e ON e.idempotency_key = 'grant:' || la.code
      CROSS JOIN LATERAL (VALUES (b.ledger_account_id, b.initial_units),
                                 ((SELECT id FROM ledger_accounts WHERE code = 'allowance_grant:' || b.unit), -b.initial_units)) x(account, amount)
     WHERE la.code LIKE 'bench:' || $1 || ':%'`, [r]);
  // Steady state, as a production database would be: hint bits set, visibility map and statistics
  // current (otherwise the measured run pays for the bulk load's autovacuum).
  const t0 = Date.now();
  await client.query('VACUUM (ANALYZE)');
  log(`  vacuum analyze: ${Date.now() - t0} ms`);
}
