/**
 * SQL of the billing run. Each step is one set-based statement over a batch of thousands of
 * subscriptions (arrays as parameters, `unnest` on the server), never a statement per subscriber.
 * Steps 1–3 run in one transaction, so a batch that dies before its commit leaves nothing behind:
 *
 *  1. `claimDueCharges`   — picks the next batch of active subscriptions due on or before the cycle
 *     date (keyset on id: no index on the due date, so that advancing a subscription is a HOT
 *     update — see migration …100100), prices the new period (fee, promotions), advances each
 *     subscription to that period — only if it is still at the period it was priced from: that update
 *     serializes claims of one subscription (a concurrent change makes it `behind`, claimed again) —
 *     and writes one `recurring_charges` row per (subscription, period), once: waived, lapsed, or a
 *     fee to collect as `charged` with the batch's fee entry (its id taken from the sequence now).
 *  2. money — the wallet debits, set-based under the charging engine's lock order
 *     (domain/ledger/recurring-debits.repository.ts), with those entry ids; `correctClaimedCharges` then
 *     sets the fees that did not fit to `insufficient` (an update only where the debit said no).
 *  3. `recordFulfilment`  — one row naming the charges whose allowances and invoice lines follow.
 *  4. `grantAllowances`   — the renewed allowance buckets (rollover carried from the bucket that ends
 *     as the new one starts; bonus allowances from offers) as new ledger accounts, buckets, one
 *     journal entry per unit and the postings, in one statement. New bucket rows do not race the
 *     hot path (no charging batch holds a lock on a row that does not exist yet), which is why
 *     `grantBucket` may write them directly too; this is its set-based form.
 *  5. `invoiceCharges`    — postpaid and hybrid fees as lines of the payer's open invoice, in one
 *     transaction with `closeFulfilment`, which deletes the batch's fulfilment row.
 *
 * Charges collected later (after a top-up, when grace ends) go through `recordChargeOutcomes`, the
 * one update of a charge row, with steps 4 and 5 keyed on its `allowances_granted` flag.
 */
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { pgQuery, pgTransaction } from '../shared/pg-connection';

export interface ClaimedCharge {
  id: string;
  subscriptionId: string;
  subscriberId: string;
  payerAccountId: string;
  currency: string;
  /** The fee less its discount, what the payer owes for the period. */
  amountMinor: bigint;
  /** `pending`: to collect now (its row says `charged` until the debit decides otherwise). */
  status: 'pending' | 'waived' | 'lapsed';
  /** Postpaid and hybrid fees go onto the payer's invoice. */
  paymentType: 'prepaid' | 'postpaid' | 'hybrid';
}

import { ALL_SUBSCRIPTIONS, equalWidthLanes, lanesSplitAt, type BillingRunTotals, type DueCursor, type DueLane } from './billing-run.types';

export type { DueCursor };

const CLAIM_SQL = `
WITH due AS MATERIALIZED (
  SELECT s.id, s.subscriber_id, s.plan_id, s.offer_id, s.period_anchor, s.current_period_end, s.next_charge_on,
         sb.billing_account_id, coalesce(a.parent_account_id, a.id) AS payer_account_id, a.payment_type,
         p.recurring_fee_minor AS fee, p.currency, p.billing_period_unit AS unit, p.billing_period_count AS cnt,
         sb.state IN ('active', 'suspended') AS billable
    FROM subscriptions s
    JOIN subscribers sb ON sb.id = s.subscriber_id
    JOIN billing_accounts a ON a.id = sb.billing_account_id
    JOIN plans p ON p.id = s.plan_id
   WHERE s.state = 'active' AND s.next_charge_on <= $1::date AND s.id > $2::uuid AND s.id BETWEEN $4::uuid AND $5::uuid
   ORDER BY s.id
   LIMIT $3),
idx AS (
  SELECT d.*,
         CASE d.unit
           WHEN 'month' THEN round(((extract(year FROM d.current_period_end AT TIME ZONE 'UTC') - extract(year FROM d.period_anchor AT TIME ZONE 'UTC')) * 12
                              + extract(month FROM d.current_period_end AT TIME ZONE 'UTC') - extract(month FROM d.period_anchor AT TIME ZONE 'UTC')) / d.cnt)::int
           WHEN 'week' THEN round(extract(epoch FROM d.current_period_end - d.period_anchor) / (604800 * d.cnt))::int
           ELSE round(extract(epoch FROM d.current_period_end - d.period_anchor) / (86400 * d.cnt))::int
         END AS k
    FROM due d WHERE d.billable),
per AS (
  SELECT i.*, i.k + 1 AS cycle,
         CASE i.unit
           WHEN 'month' THEN ((i.period_anchor AT TIME ZONE 'UTC') + make_interval(months => (i.k + 1) * i.cnt)) AT TIME ZONE 'UTC'
           WHEN 'week' THEN i.period_anchor + make_interval(days => (i.k + 1) * i.cnt * 7)
           ELSE i.period_anchor + make_interval(days => (i.k + 1) * i.cnt)
         END AS grid_end
    FROM idx i),
priced AS (
  SELECT p.id, p.subscriber_id, p.plan_id, p.offer_id, p.billing_account_id, p.payer_account_id, p.payment_type, p.currency, p.fee, p.cycle,
         p.current_period_end AS period_start,
         CASE WHEN p.grid_end > p.current_period_end THEN p.grid_end
              WHEN p.unit = 'month' THEN p.current_period_end + make_interval(months => p.cnt)
              WHEN p.unit = 'week' THEN p.current_period_end + make_interval(days => 7 * p.cnt)
              ELSE p.current_period_end + make_interval(days => p.cnt) END AS period_end,
         o.kind AS offer_kind,
         (o.id IS NOT NULL AND (o.cycles IS NULL OR p.cycle <= o.cycles)) AS offer_on,
         (o.kind = 'free_trial' AND o.cycles IS NOT NULL AND p.cycle = o.cycles + 1 AND (o.terms->>'convert') = 'false') AS lapse,
         o.terms
    FROM per p LEFT JOIN offers o ON o.id = p.offer_id),
rows AS (
  SELECT x.*,
         CASE
           WHEN x.lapse THEN x.fee
           WHEN NOT x.offer_on THEN 0
           WHEN x.offer_kind = 'free_trial' THEN x.fee
           WHEN x.offer_kind = 'discount_percent' THEN least(x.fee, round(x.fee * least(greatest(coalesce((x.terms->>'percent')::numeric, 0), 0), 100) / 100))::bigint
           WHEN x.offer_kind = 'discount_fixed' THEN least(x.fee, greatest(coalesce((x.terms->>'amountMinor')::bigint, 0), 0))
           ELSE 0 END AS discount
    FROM priced x),
adv AS (
  -- Advancing the subscription is what claims it: no row lock is taken before (FOR UPDATE costs a WAL
  -- record per row). A subscription changed since this statement's snapshot (a plan change, a
  -- termination, another claim) is re-checked here against the period it was priced from, and if
  -- that no longer holds it is neither advanced nor charged: it counts as \`behind\`, and the batch
  -- claims again from the same cursor, on a fresh snapshot.
  UPDATE subscriptions s
     SET current_period_start = r.period_start, current_period_end = r.period_end,
         next_charge_on = (r.period_end AT TIME ZONE 'UTC')::date,
         state = CASE WHEN r.lapse THEN 'ended' ELSE s.state END,
         ended_at = CASE WHEN r.lapse THEN r.period_start ELSE s.ended_at END
    -- The id list (an index scan of the batch's rows): joined to the CTE alone, the planner may hash
    -- the batch and scan the whole table for it (19 ms a batch at 100k subscriptions, growing with them).
    FROM rows r WHERE s.id = r.id AND s.id = ANY((SELECT array_agg(d.id) FROM due d)::uuid[])
     AND s.state = 'active' AND s.current_period_end = r.period_start AND s.plan_id = r.plan_id AND s.offer_id IS NOT DISTINCT FROM r.offer_id
  -- The priced row comes back with it, so the insert reads the advanced rows alone (joined back to
  -- \`rows\`, whose size the planner cannot know, it became a nested loop over 5,000 × 5,000 rows).
  RETURNING s.id, s.next_charge_on, s.state, r.subscriber_id, r.billing_account_id, r.payer_account_id, r.plan_id, r.offer_id,
            r.payment_type, r.cycle, r.period_start, r.period_end, r.currency, r.fee, r.discount, r.lapse),
entries AS MATERIALIZED (
  -- The batch's fee entry per currency (domain/ledger/recurring-debits.repository.ts writes one),
  -- its id taken now from the journal's sequence, so the charge rows below can name it.
  SELECT c.currency, nextval('journal_entries_id_seq') AS entry_id
    FROM (SELECT DISTINCT btrim(a.currency) AS currency FROM adv a WHERE NOT a.lapse AND a.fee - a.discount > 0) c),
ins AS (
  -- Each charge row is written once: a fee to collect as \`charged\` with its entry, in anticipation —
  -- the debit runs in this transaction, before it commits, and the fees that do not fit are set
  -- \`insufficient\` (\`correctClaimedCharges\`), so no one ever sees a charged row without its debit.
  INSERT INTO recurring_charges (subscription_id, subscriber_id, billing_account_id, payer_account_id, plan_id, offer_id, payment_type, cycle,
                                 cycle_date, period_start, period_end, currency, fee_minor, discount_minor, status, journal_entry_id,
                                 allowances_granted, attempts)
  SELECT r.id, r.subscriber_id, r.billing_account_id, r.payer_account_id, r.plan_id, r.offer_id, r.payment_type, r.cycle,
         $1::date, r.period_start, r.period_end, r.currency, r.fee, r.discount,
         CASE WHEN r.lapse THEN 'lapsed' WHEN r.fee - r.discount = 0 THEN 'waived' ELSE 'charged' END, e.entry_id,
         -- Paid or waived: their allowances and invoice lines are owed by the batch's fulfilment row.
         NOT r.lapse, CASE WHEN e.entry_id IS NULL THEN 0 ELSE 1 END
    FROM adv r
    LEFT JOIN entries e ON e.currency = btrim(r.currency) AND NOT r.lapse AND r.fee - r.discount > 0
   -- Not ON CONFLICT (a speculative insert costs a WAL record and an index probe more per row): the
   -- subscription's update above serializes every claim of it, and the unique index stays the
   -- backstop (a row it refuses fails the batch, and its activity retries).
   -- OFFSET 0 keeps it a probe of the (subscription, period) index per row: as an anti-join, the
   -- planner (statistics from before the run) hashed a scan of every charge, growing with each batch.
   WHERE NOT EXISTS (SELECT 1 FROM recurring_charges x WHERE x.subscription_id = r.id AND x.period_start = r.period_start OFFSET 0)
  RETURNING id, subscription_id, subscriber_id, payer_account_id, currency, amount_minor, status, payment_type)
SELECT
  -- What the batch goes on with, nothing more: building the JSON is a per-row cost of every claim.
  -- A charge to collect comes back \`pending\`.
  (SELECT coalesce(json_agg(json_build_array(id::text, subscription_id, subscriber_id, payer_account_id, currency,
          amount_minor::text, CASE status WHEN 'charged' THEN 'pending' ELSE status END, payment_type)), '[]') FROM ins) AS charges,
  (SELECT coalesce(json_object_agg(currency, entry_id::text), '{}') FROM entries) AS entries,
  (SELECT count(*) FROM due)::int AS scanned,
  ((SELECT count(*) FROM adv WHERE adv.state = 'active' AND adv.next_charge_on <= $1::date)
   + (SELECT count(*) FROM rows r WHERE NOT EXISTS (SELECT 1 FROM adv WHERE adv.id = r.id)))::int AS behind,
  -- The cursor: the last row picked, then formatted (formatting inside the sort cost 7 ms a batch).
  (SELECT json_build_array(to_char(l.next_charge_on, 'YYYY-MM-DD'), l.id) FROM (SELECT id, next_charge_on FROM due ORDER BY id DESC LIMIT 1) l) AS last`;

/** About how many subscriptions `lanesAtDueQuantiles` samples to place its cuts. */
const LANE_SAMPLE_ROWS = 50_000;

/** A run's lanes: `count` slices of the id space holding about as many due subscriptions each, cut at
 * quantiles of their ids. Time-ordered ids (migration …130200) sit at one end of the uuid space, so
 * lanes of equal width (`equalWidthLanes`) would leave one lane nearly all the work. The quantiles come from
 * a row sample of about LANE_SAMPLE_ROWS subscriptions (the whole table when it is smaller; there is
 * no index on the due date to read them from), off by about 0.2 % at 50,000 rows. Not a block sample:
 * its blocks hold runs of neighbouring ids, and 5 % of the blocks of 1M subscriptions cut the lanes
 * about 3 % apart (about 4 s of one lane running alone at the end of a 1M run). A row sample still reads every
 * page once (as the run's claims do anyway). Any cut is correct: the lanes cover the space. */
export async function lanesAtDueQuantiles(db: Knex, input: { cycleDate: string; count: number; sampleRows?: number }): Promise<DueLane[]> {
  const equal = equalWidthLanes(input.count);
  if (input.count === 1) return equal;
  const sampleRows = input.sampleRows ?? LANE_SAMPLE_ROWS;
  // The planner's row estimate (-1 before the first ANALYZE: then the whole table).
  const size = await pgQuery(db, `SELECT reltuples FROM pg_class WHERE oid = 'subscriptions'::regclass`, []);
  const rows = Number(size.rows[0].reltuples);
  const percent = rows > sampleRows ? (100 * sampleRows) / rows : 100;
  const fractions = Array.from({ length: input.count - 1 }, (_x, i) => (i + 1) / input.count);
  const res = await pgQuery(db,
    `SELECT percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY s.id)::text[] AS cuts
       FROM subscriptions s TABLESAMPLE BERNOULLI ($3)
      WHERE s.state = 'active' AND s.next_charge_on <= $1::date`,
    [input.cycleDate, fractions, percent],
  );
  const cuts = res.rows[0].cuts as string[] | null;
  // None due in the sample: nothing to balance.
  return cuts ? lanesSplitAt(cuts) : equal;
}

export interface ClaimResult {
  charges: ClaimedCharge[];
  scanned: number;
  /** Subscriptions advanced by this claim that are still due on the cycle date (more than one period
   * behind), and those changed since the claim read them (not advanced): the caller claims again from
   * the same cursor, to renew their next period or to read them afresh. */
  behind: number;
  cursor: DueCursor | null;
  /** The batch's fee entry id per currency, taken by the claim: the debit writes its entries with them. */
  entries: Record<string, string>;
}

/** Step 1: one statement claims, prices and records a batch of due subscriptions; run it in the
 * transaction that debits them (`entries`: the fee entry id the debit must use, per currency) and
 * corrects the rows where it decided otherwise (`correctClaimedCharges`). */
export async function claimDueCharges(c: PoolClient, input: { cycleDate: string; after: DueCursor; limit: number; lane?: DueLane }): Promise<ClaimResult> {
  const lane = input.lane ?? ALL_SUBSCRIPTIONS;
  const res = await c.query(CLAIM_SQL, [input.cycleDate, input.after.id, input.limit, lane.fromId, lane.toId]);
  const row = res.rows[0] as { charges: unknown[][]; entries: Record<string, string>; scanned: number; behind: number; last: [string, string] | null };
  return {
    scanned: row.scanned,
    behind: row.behind,
    cursor: row.last ? { date: row.last[0], id: row.last[1] } : null,
    entries: row.entries,
    charges: row.charges.map((r) => ({
      id: r[0] as string, subscriptionId: r[1] as string, subscriberId: r[2] as string, payerAccountId: r[3] as string,
      currency: String(r[4]).trim(), amountMinor: BigInt(r[5] as string), status: r[6] as ClaimedCharge['status'],
      paymentType: r[7] as ClaimedCharge['paymentType'],
    })),
  };
}

/** Step 2's other half: where the debit decided other than the claim wrote — a fee that did not fit
 * (`insufficient`, with a grace date and no allowances owed), or one posted under another entry (a
 * wallet in another currency than the plan's) — the charge row is corrected before the batch
 * commits. An update only of those rows: few, or none. */
export async function correctClaimedCharges(c: PoolClient, outcomes: ChargeOutcome[], graceUntil: string): Promise<void> {
  if (outcomes.length === 0) return;
  await c.query(
    `UPDATE recurring_charges rc
        SET status = v.status, journal_entry_id = v.je, allowances_granted = v.status = 'charged', updated_at = now(),
            grace_until = CASE WHEN v.status = 'insufficient' THEN $1::date ELSE rc.grace_until END
       FROM unnest($2::bigint[], $3::text[], $4::bigint[]) v(id, status, je)
      WHERE rc.id = v.id AND rc.id = ANY($2::bigint[])`,
    [graceUntil, outcomes.map((o) => o.id), outcomes.map((o) => o.status), outcomes.map((o) => o.journalEntryId)],
  );
}

/** A batch's charges whose allowances and invoice lines are still to be written (migration
 * …120100), recorded in the batch's transaction; `closeFulfilment` deletes it with the last step. */
export async function recordFulfilment(c: PoolClient, input: { cycleDate: string; firstSubscriptionId: string; chargeIds: string[] }): Promise<string | null> {
  if (input.chargeIds.length === 0) return null;
  const res = await c.query(
    `INSERT INTO billing_batch_fulfilments (cycle_date, first_subscription_id, charge_ids) VALUES ($1::date, $2::uuid, $3::bigint[]) RETURNING id`,
    [input.cycleDate, input.firstSubscriptionId, input.chargeIds],
  );
  return String(res.rows[0].id);
}

export async function closeFulfilment(c: PoolClient, id: string): Promise<void> {
  await c.query('DELETE FROM billing_batch_fulfilments WHERE id = $1::bigint', [id]);
}

/** Fulfilments a crashed batch of this lane left open (its charges committed, their allowances or
 * invoice lines not), oldest first. */
export async function unfinishedFulfilments(db: Knex, lane: DueLane = ALL_SUBSCRIPTIONS): Promise<{ id: string; chargeIds: string[] }[]> {
  const res = await pgQuery(db,
    `SELECT id, charge_ids FROM billing_batch_fulfilments WHERE first_subscription_id BETWEEN $1::uuid AND $2::uuid ORDER BY id`,
    [lane.fromId, lane.toId]);
  return res.rows.map((r: { id: string; charge_ids: string[] }) => ({ id: String(r.id), chargeIds: r.charge_ids.map(String) }));
}

export interface ChargeOutcome {
  id: string;
  status: 'charged' | 'insufficient';
  journalEntryId: string | null;
}

/** Last step (write back), in one statement: the debits' results, and for every paid (or waived)
 * charge that its allowances and invoice lines are done — they were written before this, so the
 * row is updated once per batch, not once per step (an update that changes `status` is never HOT:
 * three new index entries a row). Insufficient charges get a grace date (the first time) and count
 * an attempt. A crash before this leaves the row `pending`: collecting it again finds the journal
 * entry (charged once), and allowances and lines are keyed, so nothing is granted or billed twice. */
export async function recordChargeOutcomes(c: PoolClient, outcomes: ChargeOutcome[], graceUntil: string, waivedIds: string[] = []): Promise<void> {
  if (outcomes.length === 0 && waivedIds.length === 0) return;
  const all: { id: string; status: string; journalEntryId: string | null }[] = [...outcomes, ...waivedIds.map((id) => ({ id, status: 'waived', journalEntryId: null }))];
  await c.query(
    `UPDATE recurring_charges rc
        SET status = v.status, journal_entry_id = coalesce(v.je, rc.journal_entry_id),
            attempts = rc.attempts + CASE WHEN v.status = 'waived' THEN 0 ELSE 1 END, updated_at = now(),
            grace_until = CASE WHEN v.status = 'insufficient' THEN coalesce(rc.grace_until, $1::date) ELSE rc.grace_until END,
            allowances_granted = rc.allowances_granted OR v.status IN ('charged', 'waived')
       FROM unnest($2::bigint[], $3::text[], $4::bigint[]) v(id, status, je)
      WHERE rc.id = v.id
        -- The id list makes it an index scan of the batch's rows (joined to unnest() alone, the planner
        -- hashed the whole table: 47 ms a batch at 85k charges, growing every batch of the run).
        AND rc.id = ANY($2::bigint[])
        -- "Still open", written as a join condition (it names v) so the planner cannot push it down
        -- into the scan of recurring_charges: the batch's rows were inserted as pending after the last
        -- ANALYZE, so from statistics "open" is ~0 rows, and the plan became a nested loop rescanning
        -- the 5,000 outcomes for each of the 5,000 rows (7.6 s a batch instead of ~0.1 s).
        AND (rc.status IN ('pending', 'insufficient', 'suspended') OR (rc.status = 'waived' AND NOT rc.allowances_granted) OR v.id IS NULL)`,
    [graceUntil, all.map((o) => o.id), all.map((o) => o.status), all.map((o) => o.journalEntryId)],
  );
}

/** Step 4: allowance buckets for these charges, which the caller knows are paid (or waived), unless
 * already granted. Idempotent by the buckets' ledger-account codes (one per subscription, service and
 * period; one per family pool and period): a second grant, concurrent or later, inserts nothing.
 * `owedByBatch`: charges a billing batch recorded (`claimDueCharges`), whose flag is set already
 * (their fulfilment row says what is owed); else only charges whose flag is not set yet. */
export async function grantAllowances(db: Knex, chargeIds: string[], options: { actor?: string; owedByBatch?: boolean } = {}): Promise<number> {
  if (chargeIds.length === 0) return 0;
  const res = await pgTransaction(db, async (c) => {
    // Counter accounts of money buckets (bonus credit) per currency, before the set-based insert.
    await c.query(
      `INSERT INTO ledger_accounts (code, kind, unit)
       SELECT DISTINCT 'discounts:' || btrim(currency), 'discounts', btrim(currency) FROM recurring_charges WHERE id = ANY($1::bigint[])
       ON CONFLICT (code) DO NOTHING`,
      [chargeIds],
    );
    return c.query(GRANT_SQL, [chargeIds, options.actor ?? 'billing-run', options.owedByBatch ?? false]);
  });
  return Number(res.rows[0]?.granted ?? 0);
}

const GRANT_SQL = `
WITH ch AS MATERIALIZED (
  SELECT rc.* FROM recurring_charges rc WHERE rc.id = ANY($1::bigint[]) AND ($3::boolean OR NOT rc.allowances_granted)),
plan_want AS (
  SELECT CASE WHEN pa.shared
              THEN 'bucket:plan:' || ch.payer_account_id || ':' || pa.service || ':' || to_char(ch.period_start AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS')
              ELSE 'bucket:plan:' || ch.subscription_id || ':' || pa.service || ':' || to_char(ch.period_start AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') END AS code,
         CASE WHEN pa.shared THEN ch.payer_account_id ELSE ch.billing_account_id END AS account_id,
         CASE WHEN pa.shared THEN NULL ELSE ch.subscription_id END AS subscription_id,
         pa.service, ch.currency, pa.units + coalesce(carry.units, 0) AS units, pa.priority, pa.rollover, ch.period_start, ch.period_end,
         'plan' AS source
    FROM ch
    JOIN plan_allowances pa ON pa.plan_id = ch.plan_id
    LEFT JOIN LATERAL (
      SELECT least(greatest(b.balance_units - b.reserved_units, 0), pa.units) AS units
        FROM buckets b
       WHERE pa.rollover AND NOT pa.shared AND b.subscription_id = ch.subscription_id AND b.service = pa.service
         AND b.source = 'plan' AND b.valid_until = ch.period_start
       ORDER BY b.ledger_account_id DESC LIMIT 1) carry ON true),
bonus_want AS (
  SELECT 'bucket:offer:' || ch.subscription_id || ':' || to_char(ch.period_start AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') AS code,
         ch.billing_account_id AS account_id, ch.subscription_id, o.terms->>'service' AS service, ch.currency,
         (o.terms->>'units')::bigint AS units, 50 AS priority, false AS rollover, ch.period_start, ch.period_end, 'offer:' || o.code AS source
    FROM ch JOIN offers o ON o.id = ch.offer_id
   WHERE o.kind = 'bonus_allowance' AND (o.cycles IS NULL OR ch.cycle <= o.cycles)
     AND o.terms->>'service' IN ('data', 'voice', 'sms', 'money') AND (o.terms->>'units') ~ '^[1-9][0-9]{0,17}$'),
want AS (
  SELECT DISTINCT ON (code) w.*,
         CASE w.service WHEN 'data' THEN 'bytes' WHEN 'voice' THEN 'seconds' WHEN 'sms' THEN 'messages' ELSE btrim(w.currency) END AS unit
    FROM (SELECT * FROM plan_want UNION ALL SELECT * FROM bonus_want) w
   ORDER BY code),
la_line AS (
  -- A line's own bucket: only a grant of this charge writes its code, and a second or retried grant
  -- finds it here, so a plain insert (a speculative ON CONFLICT insert costs a WAL record more per
  -- bucket); the unique index stays the backstop (two attempts at once: one fails, its batch retries).
  -- OFFSET 0 keeps the check a probe per code, not a hash of every ledger account.
  INSERT INTO ledger_accounts (code, kind, unit, billing_account_id)
  SELECT w.code, 'bucket', w.unit, w.account_id FROM want w
   WHERE w.subscription_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_accounts x WHERE x.code = w.code OFFSET 0)
  RETURNING id, code),
la_pool AS (
  -- A shared pool: both lanes grant a family's members, so the later one waits on the conflict and skips.
  INSERT INTO ledger_accounts (code, kind, unit, billing_account_id)
  SELECT w.code, 'bucket', w.unit, w.account_id FROM want w WHERE w.subscription_id IS NULL
  ON CONFLICT (code) DO NOTHING
  RETURNING id, code),
la AS (SELECT * FROM la_line UNION ALL SELECT * FROM la_pool),
bk AS (
  INSERT INTO buckets (ledger_account_id, billing_account_id, subscription_id, service, unit, initial_units, balance_units, reserved_units,
                       priority, valid_from, valid_until, rollover, source)
  SELECT la.id, w.account_id, w.subscription_id, w.service, w.unit, w.units, w.units, 0, w.priority, w.period_start, w.period_end, w.rollover, w.source
    FROM la JOIN want w ON w.code = la.code
  RETURNING ledger_account_id, unit, balance_units, service),
units AS (
  SELECT bk.unit, min(bk.ledger_account_id) AS first_id, count(*) AS n, sum(bk.balance_units) AS total,
         CASE WHEN bk.unit IN ('bytes', 'seconds', 'messages') THEN 'allowance_grant:' || bk.unit ELSE 'discounts:' || bk.unit END AS counter_code
    FROM bk GROUP BY bk.unit),
je AS (
  INSERT INTO journal_entries (entry_type, source_ref, idempotency_key, actor, occurred_at, details)
  SELECT 'allowance_grant', 'billing-run', 'allowance-grant:batch:' || u.unit || ':' || u.first_id, $2, now(),
         jsonb_build_object('kind', 'allowance_grant_batch', 'unit', u.unit, 'buckets', u.n, 'units', u.total::text)
    FROM units u
  RETURNING id, details->>'unit' AS unit),
posted AS (
  INSERT INTO postings (journal_entry_id, ledger_account_id, unit, amount)
  SELECT je.id, bk.ledger_account_id, bk.unit, bk.balance_units FROM bk JOIN je ON je.unit = bk.unit
  UNION ALL
  SELECT je.id, a.id, u.unit, -u.total FROM units u JOIN je ON je.unit = u.unit JOIN ledger_accounts a ON a.code = u.counter_code
  RETURNING 1)
SELECT (SELECT count(*) FROM bk)::int AS granted, (SELECT count(*) FROM posted)::int AS postings`;

/** Step 5: postpaid and hybrid fees (and their discounts) of these paid charges onto the payer's open
 * invoice (keyed by the charge: a second call adds nothing).
 *
 * Two statements in one transaction: open the missing invoices, then add the lines joined to the
 * open invoices by index. Why not one statement: the lines' join to the invoices opened in the same
 * statement could only go through CTE scans, which the planner sizes at one row right after the
 * charges were claimed (stale statistics) — a nested loop over 2,500 × 2,500 rows, a second a
 * batch. Two statements also see an invoice another transaction opened while this one waited on
 * the open-invoice unique index (one statement's snapshot would not, and would lose those lines).
 * Run it in the transaction that records the charges' outcomes (`recordChargeOutcomes`): a charge
 * whose outcome is written (`allowances_granted`, "fulfilled") is skipped, so a retry never puts
 * its fee on a later invoice once the first was issued. A billing batch's charges (`owedByBatch`)
 * were written fulfilled: run it in the transaction that deletes their fulfilment row
 * (`closeFulfilment`), which is what keeps a retry from billing them again. */
export async function invoiceCharges(c: PoolClient, chargeIds: string[], options: { owedByBatch?: boolean } = {}): Promise<number> {
  if (chargeIds.length === 0) return 0;
  // The caller passes paid (or waived) charges: their outcome is written after this step — or, for a
  // billing batch's (`owedByBatch`), was written with them, and their fulfilment row is deleted with it.
  const due = `rc.id = ANY($1::bigint[]) AND rc.payment_type IN ('postpaid', 'hybrid')${options.owedByBatch ? '' : ' AND NOT rc.allowances_granted'}`;
  await c.query(
    `INSERT INTO invoices (billing_account_id, period_start, period_end, currency)
     SELECT DISTINCT ON (rc.payer_account_id) rc.payer_account_id, date_trunc('month', rc.cycle_date)::date,
            (date_trunc('month', rc.cycle_date) + interval '1 month')::date, rc.currency
       FROM recurring_charges rc WHERE ${due}
      ORDER BY rc.payer_account_id
     ON CONFLICT (billing_account_id) WHERE status = 'open' DO NOTHING`,
    [chargeIds],
  );
  const res = await c.query(
    `WITH ch AS MATERIALIZED (
       SELECT rc.*, p.name AS plan_name, s.msisdn, i.id AS invoice_id FROM recurring_charges rc
         JOIN plans p ON p.id = rc.plan_id JOIN subscribers s ON s.id = rc.subscriber_id
         JOIN invoices i ON i.billing_account_id = rc.payer_account_id AND i.status = 'open'
        WHERE ${due}),
     lines AS (
       INSERT INTO invoice_lines (invoice_id, kind, subscriber_id, description, amount_minor, source_ref)
       SELECT ch.invoice_id, 'recurring_fee', ch.subscriber_id,
              ch.plan_name || ' for ' || ch.msisdn || ', ' || to_char(ch.period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' to ' || to_char(ch.period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
              ch.fee_minor, 'recurring-charge:' || ch.id
         FROM ch WHERE ch.fee_minor > 0
       UNION ALL
       SELECT ch.invoice_id, 'discount', ch.subscriber_id, 'Promotion on ' || ch.plan_name || ' for ' || ch.msisdn, -ch.discount_minor, 'recurring-discount:' || ch.id
         FROM ch WHERE ch.discount_minor > 0
       ON CONFLICT (invoice_id, source_ref) DO NOTHING
       RETURNING 1)
     SELECT count(*)::int AS n FROM lines`,
    [chargeIds],
  );
  return Number(res.rows[0].n);
}

export interface OpenCharge {
  id: string;
  subscriberId: string;
  payerAccountId: string;
  currency: string;
  amountMinor: bigint;
  status: 'pending' | 'insufficient' | 'suspended';
}

const toOpen = (r: Record<string, string>): OpenCharge => ({
  id: String(r.id), subscriberId: r.subscriber_id, payerAccountId: r.payer_account_id, currency: String(r.currency).trim(),
  amountMinor: BigInt(r.amount_minor), status: r.status as OpenCharge['status'],
});

/** How far back `strandedCharges` looks: a crashed day's run is rerun, or recovered by the runs of
 * the following days' first batches, well within a month. */
export const STRANDED_LOOKBACK_DAYS = 35;

/** Charges a batch claimed but did not finish (the process died between the claim, which commits
 * the charge rows and advances the subscriptions, and the outcomes): `pending` ones, and waived ones
 * whose allowances were not granted. A retried batch no longer finds those subscriptions due, so it
 * looks for them here first, over the lane from its cursor on, for cycle dates within the lookback:
 * read through the open-charges index, whose predicate covers both (migration …100300), so the
 * scan is of unfinished charges only, not of every charge. */
export async function strandedCharges(
  db: Knex, input: { cycleDate: string; after: DueCursor; lane?: DueLane },
): Promise<{ pending: OpenCharge[]; waivedIds: string[] }> {
  const lane = input.lane ?? ALL_SUBSCRIPTIONS;
  const res = await pgQuery(db,
    `SELECT rc.id, rc.subscriber_id, rc.payer_account_id, rc.currency, rc.amount_minor, rc.status
       FROM subscriptions s
       JOIN recurring_charges rc ON rc.subscription_id = s.id
      WHERE s.id > $2::uuid AND s.id BETWEEN $3::uuid AND $4::uuid
        AND rc.cycle_date <= $1::date AND rc.cycle_date > $1::date - $5::int
        AND (rc.status = 'pending' OR (rc.status = 'waived' AND NOT rc.allowances_granted))
      ORDER BY rc.id`,
    [input.cycleDate, input.after.id, lane.fromId, lane.toId, STRANDED_LOOKBACK_DAYS],
  );
  const rows = res.rows as Record<string, string>[];
  return { pending: rows.filter((r) => r.status === 'pending').map(toOpen), waivedIds: rows.filter((r) => r.status === 'waived').map((r) => String(r.id)) };
}

/** Charges still to collect whose grace ended on or before the date (a batch, keyset on id). */
export async function graceExpiredCharges(db: Knex, input: { cycleDate: string; afterId: string; limit: number }): Promise<OpenCharge[]> {
  const rows = await db('recurring_charges')
    .where('status', 'insufficient').andWhere('grace_until', '<=', input.cycleDate).andWhere('id', '>', input.afterId)
    .orderBy('id').limit(input.limit)
    .select('id', 'subscriber_id', 'payer_account_id', 'currency', 'amount_minor', 'status');
  return rows.map(toOpen);
}

/** Every charge of an account still to collect, oldest first (after a top-up). */
export async function openChargesOf(db: Knex, payerAccountId: string): Promise<OpenCharge[]> {
  const rows = await db('recurring_charges')
    .where('payer_account_id', payerAccountId).whereIn('status', ['pending', 'insufficient', 'suspended'])
    .orderBy('id').limit(1000)
    .select('id', 'subscriber_id', 'payer_account_id', 'currency', 'amount_minor', 'status');
  return rows.map(toOpen);
}

/** Marks charges whose line is being suspended for non-payment. */
export async function markSuspended(db: Knex, chargeIds: string[]): Promise<void> {
  if (chargeIds.length === 0) return;
  await db('recurring_charges').whereIn('id', chargeIds).andWhere('status', 'insufficient').update({ status: 'suspended', updated_at: db.fn.now() });
}

/** Subscribers of these charges with nothing left to collect (candidates to resume). */
export async function subscribersWithoutArrears(db: Knex, subscriberIds: string[]): Promise<string[]> {
  if (subscriberIds.length === 0) return [];
  const res = await pgQuery(db,
    // Through the line's subscriptions and the (subscription, period) index: there is no index on
    // subscriber_id, and the open-charges index is by payer, which a transfer may have changed —
    // this way each subscriber reads its own charges, not every open charge.
    `SELECT s.id FROM subscribers s
      WHERE s.id = ANY($1::uuid[]) AND s.state = 'suspended' AND s.suspend_reason = 'non_payment'
        AND NOT EXISTS (SELECT 1 FROM subscriptions sub JOIN recurring_charges rc ON rc.subscription_id = sub.id
                         WHERE sub.subscriber_id = s.id AND rc.status IN ('pending', 'insufficient', 'suspended'))`,
    [subscriberIds],
  );
  return res.rows.map((r: { id: string }) => r.id);
}

export async function startBillingRunRecord(db: Knex, cycleDate: string): Promise<void> {
  await db.raw(`INSERT INTO billing_runs (cycle_date, status) VALUES (?, 'running') ON CONFLICT (cycle_date) DO UPDATE SET status = 'running', finished_at = NULL`, [cycleDate]);
}

export async function finishBillingRunRecord(db: Knex, cycleDate: string, totals: BillingRunTotals): Promise<void> {
  await db('billing_runs').where({ cycle_date: cycleDate }).update({ status: 'completed', finished_at: db.fn.now(), ...totals });
}
