/**
 * Recomputes the fast-read balances from the journal and compares:
 *  - every wallet's and bucket's balance equals the sum of the postings on its ledger account;
 *  - what wallets and buckets hold as reserved equals the holds of open charging reservations;
 *  - no bucket is below zero and no wallet below minus its credit limit (overspend), computed
 *    from the postings, not from the stored balance;
 *  - every journal entry balances per unit (the insert trigger checks this; a superuser could
 *    bypass it).
 * Runs in one REPEATABLE READ snapshot, so it is consistent while charging goes on.
 */
import type { Knex } from 'knex';

export interface BalanceProblem {
  kind: 'balance_mismatch' | 'reserved_mismatch' | 'overspend' | 'unbalanced_entry';
  account?: string;
  entry?: string;
  detail: string;
}

export interface BalanceReport {
  wallets: number;
  buckets: number;
  entries: number;
  /** Units (bucket) or micros (wallet) spent beyond what the balance and credit limit allowed. */
  overspend: { bucketUnits: bigint; walletMicros: bigint };
  problems: BalanceProblem[];
}

export async function verifyBalances(db: Knex, options: { limit?: number } = {}): Promise<BalanceReport> {
  const limit = options.limit ?? 100;
  return db.transaction(async (trx) => {
    await trx.raw('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const problems: BalanceProblem[] = [];
    const holds = `
      SELECT (h->>0)::bigint AS account, sum((h->>2)::bigint) AS held
        FROM charging_sessions cs
        CROSS JOIN LATERAL json_array_elements(cs.reservations) r
        CROSS JOIN LATERAL json_array_elements(r->'holds') h
       WHERE cs.expires_at IS NOT NULL
       GROUP BY 1`;
    const posted = `SELECT ledger_account_id, sum(amount) AS total FROM postings GROUP BY ledger_account_id`;

    const wallets = await trx.raw(`
      WITH posted AS (${posted}), holds AS (${holds})
      SELECT w.ledger_account_id::text AS id, w.balance_micros::text AS balance, w.reserved_micros::text AS reserved,
             w.credit_limit_micros::text AS credit_limit, coalesce(p.total, 0)::text AS posted, coalesce(h.held, 0)::text AS held
        FROM wallets w
        LEFT JOIN posted p ON p.ledger_account_id = w.ledger_account_id
        LEFT JOIN holds h ON h.account = w.ledger_account_id
       WHERE w.balance_micros <> coalesce(p.total, 0) OR w.reserved_micros <> coalesce(h.held, 0)
          OR coalesce(p.total, 0) < -w.credit_limit_micros`);
    let walletMicros = 0n;
    for (const r of wallets.rows as Record<string, string>[]) {
      const postedTotal = BigInt(r.posted);
      if (BigInt(r.balance) !== postedTotal) problems.push({ kind: 'balance_mismatch', account: r.id, detail: `wallet ${r.id}: balance ${r.balance}, postings sum to ${r.posted}` });
      if (BigInt(r.reserved) !== BigInt(r.held)) problems.push({ kind: 'reserved_mismatch', account: r.id, detail: `wallet ${r.id}: reserved ${r.reserved}, open reservations hold ${r.held}` });
      const floor = -BigInt(r.credit_limit);
      if (postedTotal < floor) {
        walletMicros += floor - postedTotal;
        problems.push({ kind: 'overspend', account: r.id, detail: `wallet ${r.id}: postings sum to ${r.posted}, below the credit limit of ${r.credit_limit}` });
      }
    }

    const buckets = await trx.raw(`
      WITH posted AS (${posted}), holds AS (${holds})
      SELECT b.ledger_account_id::text AS id, b.balance_units::text AS balance, b.reserved_units::text AS reserved,
             coalesce(p.total, 0)::text AS posted, coalesce(h.held, 0)::text AS held
        FROM buckets b
        LEFT JOIN posted p ON p.ledger_account_id = b.ledger_account_id
        LEFT JOIN holds h ON h.account = b.ledger_account_id
       WHERE b.balance_units <> coalesce(p.total, 0) OR b.reserved_units <> coalesce(h.held, 0) OR coalesce(p.total, 0) < 0`);
    let bucketUnits = 0n;
    for (const r of buckets.rows as Record<string, string>[]) {
      const postedTotal = BigInt(r.posted);
      if (BigInt(r.balance) !== postedTotal) problems.push({ kind: 'balance_mismatch', account: r.id, detail: `bucket ${r.id}: balance ${r.balance}, postings sum to ${r.posted}` });
      if (BigInt(r.reserved) !== BigInt(r.held)) problems.push({ kind: 'reserved_mismatch', account: r.id, detail: `bucket ${r.id}: reserved ${r.reserved}, open reservations hold ${r.held}` });
      if (postedTotal < 0n) {
        bucketUnits += -postedTotal;
        problems.push({ kind: 'overspend', account: r.id, detail: `bucket ${r.id}: postings sum to ${r.posted}, below zero` });
      }
    }

    const unbalanced = await trx.raw(`
      SELECT journal_entry_id::text AS entry, unit, sum(amount)::text AS total
        FROM postings GROUP BY journal_entry_id, unit HAVING sum(amount) <> 0 LIMIT ?`, [limit]);
    for (const r of unbalanced.rows as Record<string, string>[]) {
      problems.push({ kind: 'unbalanced_entry', entry: r.entry, detail: `journal entry ${r.entry} does not balance in ${r.unit}: postings sum to ${r.total}` });
    }
    const orphan = await trx.raw(`
      SELECT e.id::text AS entry FROM journal_entries e WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.journal_entry_id = e.id) LIMIT ?`, [limit]);
    for (const r of orphan.rows as Record<string, string>[]) {
      problems.push({ kind: 'unbalanced_entry', entry: r.entry, detail: `journal entry ${r.entry} has no postings` });
    }

    const counts = await trx.raw(`SELECT (SELECT count(*) FROM wallets) AS w, (SELECT count(*) FROM buckets) AS b, (SELECT count(*) FROM journal_entries) AS e`);
    const c = counts.rows[0];
    return {
      wallets: Number(c.w), buckets: Number(c.b), entries: Number(c.e),
      overspend: { bucketUnits, walletMicros },
      problems: problems.slice(0, Math.max(limit, 1) * 4),
    };
  });
}
