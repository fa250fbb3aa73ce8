/**
 * Recurring fees debited set-based: one transaction for a whole billing batch (thousands of
 * charges) instead of one charging-engine wallet operation per charge (~2 ms each).
 *
 * Why here and not in billing: it writes only ledger tables (wallets, journal, postings, the
 * `balance_events` outbox), as `wallet-operations.ts` does through the engine; billing keeps its
 * `recurring_charges` rows and passes in what to debit. Every other wallet movement (top-ups,
 * refunds, adjustments, proration) still goes through the engine.
 *
 * First without locks (one transaction: the batch currencies' revenue accounts, then the write
 * below reading the wallets unlocked): each wallet is moved only if its balance, holds and limit are
 * still what the statement read, or changed in a way that cannot alter the decision (every fee on
 * it paid and their sum still fitting, the balance below the low mark before and after, so no
 * event either way), so the decisions and the events are exactly those of the locked path. If any
 * other wallet changed meanwhile (a charge committed on it), the attempt is rolled back (to a
 * savepoint: the caller's transaction may hold more) and the batch goes again the locked way
 * (`onLockedRetry` tells). That saves a row lock (a WAL record and
 * a dirtied page) per wallet. The second case is a family's shared postpaid wallet, which both lanes
 * of a run debit: 15 of 201 batches of a 1M run went the locked way for it before.
 *
 * The locked way, one transaction, two statements:
 *  1. lock: the payer wallets, `ORDER BY ledger_account_id FOR UPDATE` — the last step of the
 *     engine's lock order (sessions → buckets → wallets, by ledger account id). Taking only wallets,
 *     in that order, can wait on an engine batch but never close a cycle with one. Then a missing
 *     `revenue:<currency>` account of their currencies is created (`REVENUE_SQL`, as the lock-free
 *     attempt does for the currencies its caller names).
 *  2. write: with a fresh snapshot (so it sees whatever committed before the locks were granted,
 *     and nothing can change the locked wallets any more):
 *     - debits whose key already has a wallet posting (or, debited before fees were booked per
 *       batch, its own entry) are `charged` with that entry (a rerun, or an activity retried after a
 *       crash, charges nothing again);
 *     - the others, per wallet in the order given (callers pass oldest first), are paid while the
 *       running sum fits: balance − reserved − running ≥ −credit_limit — the engine's rule and the
 *       wallets' CHECK. The first debit that does not fit is `insufficient`, and so is every later
 *       one on that wallet in the batch even if it is smaller (conservative: a batch never skips an
 *       older charge to pay a newer one);
 *     - one journal entry per currency for the batch (`recurring_charge`, details: how many fees and
 *       their sum), with one wallet posting per paid fee (−amount, `source_ref` = its key, in the
 *       order given) and one `revenue:<currency>` posting of the sum; each wallet moved by the sum of
 *       its fees, and a `wallet_low` event when a fee takes the balance from ≥ the low mark to below
 *       it — the engine's rule (`thresholdEvents` in charging-decision.ts) with the engine's own mark
 *       (`engine.policy.lowWalletThresholdMicros`, passed in), same payload, no subscriber, linked to
 *       the batch's entry.
 *
 * Why an entry per batch, not per fee: a fee's own entry, its revenue posting and their index
 * entries were 6 of the ~32 writes per renewed subscription. The fee stays traceable on its own:
 * its posting names the charge (`recurring-charge:<id>` → `recurring_charges`), and the charge
 * row names the entry. The wallet's balance before and after each fee follows from its postings in
 * id order (they are inserted in the order the fees were decided).
 *
 * A key inserted by someone else between the snapshot and the insert (another attempt at the same
 * batch, e.g. an activity retried while the first still runs) fails the statement on the postings'
 * unique index, which is the idempotency guard: the lock-free attempt then goes the locked way,
 * whose fresh snapshot finds the posting as prior; under the lock (where only a writer that debits
 * without the wallet lock could race it) the error reaches the caller, whose retry finds it. The
 * postings are inserted without ON CONFLICT on purpose: a speculative insert costs a WAL record and
 * an index probe more per row, on every recurring fee.
 */
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { pgTransaction } from '../shared/pg-connection';

export interface RecurringDebit {
  /** The fee's wallet posting's `source_ref`: one debit per key, ever (a unique index). */
  key: string;
  billingAccountId: string;
  /** Positive micro-units of the wallet's currency. */
  amountMicros: bigint;
  /** The currency the caller expects the wallet to be in: its revenue account is prepared before the
   * lock-free attempt (a wallet in another currency whose revenue account is missing sends the batch
   * down the locking path, which creates it). */
  currency?: string;
}

export type RecurringDebitResult =
  | { key: string; status: 'charged'; journalEntryId: string; replayed: boolean }
  | { key: string; status: 'insufficient'; reason: 'insufficient_funds' | 'no_wallet' };

export interface RecurringDebitOptions {
  actor: string;
  /** The batch entries' `source_ref` (what ran them, e.g. the billing run). */
  sourceRef: string;
  /** The charging engine's low-balance mark (its policy), so billing raises the same events. */
  lowWalletThresholdMicros: bigint;
  /** Told when the lock-free attempt is rolled back and the batch goes the locked way (metrics). */
  onLockedRetry?: (reason: 'wallet_changed' | 'revenue_account_missing' | 'key_committed_meanwhile') => void;
  /** Ids for the batch's entries, per currency, taken from `journal_entries_id_seq` by the caller (the
   * billing run names the entry on its charge rows before the debit); a currency without one takes
   * the next from the sequence. */
  entryIds?: Record<string, string>;
  /** Every key names something created in the caller's transaction (the billing run's charge ids,
   * just taken from their sequence), so no debit of it can exist yet: the lookup of prior debits (two
   * index probes a key) is skipped. The postings' unique index on the key stays the guard. */
  newKeys?: boolean;
}

export const LOCK_SQL = `
WITH locked AS MATERIALIZED (
  SELECT w.ledger_account_id, btrim(w.currency) AS currency
    FROM wallets w
   WHERE w.billing_account_id = ANY($1::uuid[])
   ORDER BY w.ledger_account_id
     FOR UPDATE)
SELECT coalesce(array_agg(ledger_account_id::text), '{}') AS wallets, coalesce(array_agg(DISTINCT currency), '{}') AS currencies FROM locked`;

/** The `revenue:<currency>` accounts the write credits, created when missing (one index lookup per
 * currency, as a subquery, so the plan never hashes all ledger accounts). */
export const REVENUE_SQL = `
INSERT INTO ledger_accounts (code, kind, unit)
SELECT 'revenue:' || c, 'revenue', c FROM unnest($1::text[]) c
 WHERE (SELECT a.id FROM ledger_accounts a WHERE a.code = 'revenue:' || c) IS NULL
ON CONFLICT (code) DO NOTHING`;

export const WRITE_SQL = `
WITH xs AS MATERIALIZED (
  -- Arrays, not one JSON document: the planner sizes unnest() from the arrays (a JSON record set is
  -- always "100 rows", and the joins between the CTEs below then became nested loops: 25 M rows
  -- compared for a batch of 5,000).
  SELECT x.* FROM unnest($1::int[], $5::text[], $6::uuid[], $7::bigint[]) x(i, k, acct, amt)),
payer AS MATERIALIZED (
  -- The payers' wallets: those locked ($4), or (lock-free attempt, $4 null) every wallet of the accounts.
  SELECT w.ledger_account_id, w.billing_account_id, btrim(w.currency) AS currency,
         w.balance_micros, w.reserved_micros, w.credit_limit_micros
    FROM wallets w
   WHERE w.billing_account_id IN (SELECT acct FROM xs) AND ($4::bigint[] IS NULL OR w.ledger_account_id = ANY($4::bigint[]))),
prior AS MATERIALIZED (
  -- A fee already debited: its wallet posting, or (debited before fees were booked per batch) its own entry.
  -- The key list ($5) makes both index probes per key: joined to xs, the planner (statistics taken
  -- before the run) read the whole postings index and hashed it, a cost growing with every batch.
  -- Not looked up at all when the caller's keys are new ($11).
  SELECT p.source_ref AS k, p.journal_entry_id AS id FROM postings p WHERE NOT $11::boolean AND p.source_ref = ANY($5::text[]) AND p.source_ref IS NOT NULL
  UNION ALL
  SELECT e.idempotency_key, e.id FROM journal_entries e WHERE NOT $11::boolean AND e.idempotency_key = ANY($5::text[])),
todo AS (
  SELECT x.i, x.k, x.acct, x.amt, w.ledger_account_id AS wallet, w.currency,
         w.balance_micros AS balance, w.reserved_micros AS reserved, w.credit_limit_micros AS credit_limit,
         sum(x.amt) OVER (PARTITION BY w.ledger_account_id ORDER BY x.i) AS running,
         count(*) OVER (PARTITION BY w.ledger_account_id) AS due_on_wallet
    FROM xs x JOIN payer w ON w.billing_account_id = x.acct
   WHERE NOT EXISTS (SELECT 1 FROM prior p WHERE p.k = x.k)),
paid AS MATERIALIZED (
  SELECT t.*, t.balance - (t.running - t.amt) AS before, t.balance - t.running AS after
    FROM todo t
   WHERE t.balance - t.reserved - t.running >= -t.credit_limit),
totals AS MATERIALIZED (
  SELECT p.currency, count(*) AS n, sum(p.amt) AS total, min(p.i) AS first_i FROM paid p GROUP BY p.currency),
je AS (
  -- One entry per currency for the batch; each fee is its own wallet posting, named by its key. Its id
  -- is the caller's for the currency ($9, $10), if given.
  INSERT INTO journal_entries (id, entry_type, source_ref, idempotency_key, actor, reason, details, occurred_at, recorded_at)
  SELECT coalesce((SELECT g.id FROM unnest($9::text[], $10::bigint[]) g(currency, id) WHERE g.currency = t.currency), nextval('journal_entries_id_seq')),
         'recurring_charge', $8, NULL, $2, NULL,
         jsonb_build_object('kind', 'recurring_charges', 'currency', t.currency, 'charges', t.n, 'amountMicros', (-t.total)::text), now(), now()
    FROM totals t ORDER BY t.first_i
  RETURNING id, details->>'currency' AS currency),
done AS MATERIALIZED (
  SELECT je.id, p.* FROM paid p JOIN je ON je.currency = p.currency),
po AS (
  INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount, source_ref)
  SELECT x.id, x.account, x.currency, x.amount, x.k FROM (
    SELECT d.id, d.wallet AS account, d.currency, -d.amt AS amount, d.k, d.i FROM done d
    UNION ALL
    -- The batch's revenue, one posting per currency (looked up by code: one index probe per currency).
    SELECT je.id, (SELECT a.id FROM ledger_accounts a WHERE a.code = 'revenue:' || t.currency), t.currency, t.total, NULL, NULL
      FROM je JOIN totals t ON t.currency = je.currency) x
   ORDER BY x.id, x.i NULLS LAST
  RETURNING 1),
wu AS (
  -- Optimistic ($4 null, no locks taken): only a wallet still as it was read, or changed to no
  -- effect on what was decided, is moved; another one (a charge committed meanwhile) makes the caller
  -- roll back and go again under the lock.
  UPDATE wallets w SET balance_micros = w.balance_micros - s.total, updated_at = now()
    FROM (SELECT d.wallet, sum(d.amt) AS total, min(d.balance) AS balance, min(d.reserved) AS reserved, min(d.credit_limit) AS credit_limit,
                 count(*) AS paid, min(d.due_on_wallet) AS due
            FROM done d GROUP BY d.wallet) s
   WHERE w.ledger_account_id = s.wallet
     -- The id list makes it an index scan of the batch's wallets: joined to the aggregate alone, the
     -- planner hashed it and scanned every wallet (17 ms a batch at 100k wallets, growing with them).
     AND w.ledger_account_id = ANY((SELECT array_agg(DISTINCT d.wallet) FROM done d)::bigint[])
     AND ($4::bigint[] IS NOT NULL
          OR (w.balance_micros = s.balance AND w.reserved_micros = s.reserved AND w.credit_limit_micros = s.credit_limit)
          -- Changed, but the locked way would decide the same: every fee on the wallet was paid and
          -- their sum still fits, and the balance was and is below the low mark, so no fee crosses it
          -- either way (no event). A family's shared postpaid wallet, debited by both lanes, is the case.
          OR (s.paid = s.due AND w.balance_micros - w.reserved_micros - s.total >= -w.credit_limit_micros
              AND w.balance_micros < $3::bigint AND s.balance < $3::bigint))
  RETURNING 1),
ev AS (
  INSERT INTO balance_events (event_type, billing_account_id, subscriber_id, ledger_account_id, threshold_percent, journal_entry_id, payload, occurred_at)
  SELECT 'wallet_low', d.acct, NULL, d.wallet, NULL, d.id,
         jsonb_build_object('currency', d.currency, 'balanceMicros', d.after::text, 'thresholdMicros', $3::bigint::text), now()
    FROM done d
   WHERE d.before >= $3::bigint AND d.after < $3::bigint
   ORDER BY d.i
  RETURNING 1)
SELECT
  (SELECT coalesce(json_agg(json_build_array(x.i,
            CASE WHEN pr.id IS NOT NULL THEN 'prior' WHEN d.id IS NOT NULL THEN 'charged'
                 WHEN w.ledger_account_id IS NULL THEN 'no_wallet' ELSE 'insufficient' END,
            coalesce(pr.id, d.id)::text)), '[]')
     FROM xs x
     LEFT JOIN (SELECT DISTINCT ON (k) k, id FROM prior ORDER BY k, id) pr ON pr.k = x.k
     LEFT JOIN done d ON d.k = x.k
     LEFT JOIN payer w ON w.billing_account_id = x.acct) AS results,
  (SELECT count(*) FROM po)::int AS postings,
  (SELECT count(*) FROM wu)::int AS wallets,
  (SELECT count(DISTINCT wallet) FROM done)::int AS wallets_due,
  (SELECT count(*) FROM ev)::int AS events`;

/** Debits a batch of recurring fees in one transaction; one result per debit, in the same order. */
export async function debitRecurringCharges(db: Knex, debits: RecurringDebit[], options: RecurringDebitOptions): Promise<RecurringDebitResult[]> {
  if (debits.length === 0) return [];
  return pgTransaction(db, (c) => debitRecurringChargesWithin(c, debits, options));
}

/** The same, inside the caller's transaction (the billing run debits a batch in the transaction that
 * claims it and records its charges): the lock-free attempt runs under a savepoint, and going the
 * locked way rolls back to it, so the caller's earlier statements stand. The wallets stay locked, by
 * the update, until the caller commits. */
export async function debitRecurringChargesWithin(c: PoolClient, debits: RecurringDebit[], options: RecurringDebitOptions): Promise<RecurringDebitResult[]> {
  if (debits.length === 0) return [];
  const seen = new Set<string>();
  for (const d of debits) {
    if (d.amountMicros <= 0n) throw new Error(`recurring debit ${d.key}: the amount must be positive`);
    if (seen.has(d.key)) throw new Error(`recurring debit ${d.key} appears twice in one batch`);
    seen.add(d.key);
  }
  const accounts = [...new Set(debits.map((d) => d.billingAccountId))];
  const currencies = [...new Set(debits.flatMap((d) => (d.currency ? [d.currency.trim()] : [])))];
  const input = [debits.map((d) => d.key), debits.map((d) => d.billingAccountId), debits.map((d) => d.amountMicros.toString())];
  const entryIds = options.entryIds ?? {};
  const write = async (wallets: string[] | null) => {
    const res = await c.query(WRITE_SQL, [debits.map((_d, i) => i), options.actor, options.lowWalletThresholdMicros.toString(), wallets, ...input, options.sourceRef,
      Object.keys(entryIds), Object.values(entryIds), options.newKeys ?? false]);
    return res.rows[0] as { results: [number, string, string | null][]; wallets: number; wallets_due: number };
  };
  // First without locks: the wallets are read, decided on and moved only if still as read or changed
  // to no effect (see `wu`). Else rolled back (to the savepoint) and done again under the lock.
  await c.query('SAVEPOINT recurring_debits');
  try {
    if (currencies.length > 0) await c.query(REVENUE_SQL, [currencies]);
    const row = await write(null);
    if (row.wallets !== row.wallets_due) throw new StaleWallets();
    await c.query('RELEASE SAVEPOINT recurring_debits');
    return resultsOf(row.results);
  } catch (err) {
    // 23502: a revenue account the hint did not prepare (the posting's account came out null);
    // 23505: a fee of this batch committed meanwhile by another attempt (prior, under the lock).
    const code = (err as { code?: string }).code;
    const reason = err instanceof StaleWallets ? 'wallet_changed' : code === '23502' ? 'revenue_account_missing' : code === '23505' ? 'key_committed_meanwhile' : null;
    if (!reason) throw err;
    await c.query('ROLLBACK TO SAVEPOINT recurring_debits');
    options.onLockedRetry?.(reason);
  }
  const locked = (await c.query(LOCK_SQL, [accounts])).rows[0] as { wallets: string[]; currencies: string[] };
  await c.query(REVENUE_SQL, [locked.currencies]);
  // Only the wallets locked above are debited (one opened meanwhile for an account without a wallet is not).
  return resultsOf((await write(locked.wallets)).results);

  function resultsOf(out: [number, string, string | null][]): RecurringDebitResult[] {
    const byIndex = new Map(out.map((r) => [r[0], r]));
    return debits.map((d, i): RecurringDebitResult => {
      const [, status, id] = byIndex.get(i)!;
      switch (status) {
        case 'charged':
        case 'prior':
          return { key: d.key, status: 'charged', journalEntryId: id!, replayed: status === 'prior' };
        case 'no_wallet':
          return { key: d.key, status: 'insufficient', reason: 'no_wallet' };
        default:
          return { key: d.key, status: 'insufficient', reason: 'insufficient_funds' };
      }
    });
  }
}

/** A wallet changed between the optimistic read and its update. */
class StaleWallets extends Error {}
