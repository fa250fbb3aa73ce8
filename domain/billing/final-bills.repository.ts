/**
 * Final bills. Terminating a line that was live writes one `final_bill_requests` row in the same
 * transaction (domain/subscribers/subscribers.repository.ts); the billing run consumes them before
 * it issues the invoices that are due, so a final invoice is issued, collected and dunned
 * (`invoice:<id>`) by that same run. Recurring fees are charged in advance for the whole period, so
 * what is left to bill for an ended line is its usage and whatever is already on the open invoice.
 *
 * For each request (lines terminated before the run's date; one terminated on that day waits for
 * the next run, so its whole last day is billed):
 *  - prepaid line: nothing to invoice (its money moved in real time); consumed.
 *  - the paying account still has a live line (active or suspended, on it or a member account):
 *    the line stays on the account's open invoice, issued when its month ends.
 *  - it was the account's last live line: the open invoice is closed at the run's date
 *    (`period_end`), so the run issues it now as the final invoice. Without an open invoice, one is
 *    opened from the end of the last issued invoice to the run's date only when there is usage not
 *    billed yet; otherwise the request points at the last issued invoice.
 * The request records the invoice (`invoice_ref`) and `consumed_at`. Rows are taken
 * `FOR UPDATE SKIP LOCKED` and consumed in the same transaction as their effect, so a rerun or a
 * concurrent run consumes each once.
 */
import type { Knex } from 'knex';
import { usageBeyondAllowance } from './invoices.repository';

export interface FinalBillBatch {
  /** Requests consumed in this batch. */
  scanned: number;
  /** Open invoices closed at the run's date (issued as final invoices by the run). */
  closed: number;
  /** Invoices opened (and closed) for usage not on any invoice yet. */
  opened: number;
}

interface RequestRow {
  id: string;
  payment_type: 'prepaid' | 'postpaid' | 'hybrid';
  payer: string;
  currency: string;
  month_start: string;
}

const iso = (d: unknown) => (d instanceof Date ? d.toISOString().slice(0, 10) : String(d).slice(0, 10));

export async function consumeFinalBillRequests(db: Knex, input: { cycleDate: string; limit: number }): Promise<FinalBillBatch> {
  return db.transaction(async (trx) => {
    const { rows } = await trx.raw(
      `SELECT f.id, a.payment_type, coalesce(a.parent_account_id, a.id) AS payer, btrim(p.currency) AS currency,
              to_char(date_trunc('month', f.terminated_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS month_start
         FROM final_bill_requests f
         JOIN billing_accounts a ON a.id = f.billing_account_id
         JOIN billing_accounts p ON p.id = coalesce(a.parent_account_id, a.id)
        WHERE f.consumed_at IS NULL AND f.terminated_at < ?::date
        ORDER BY f.requested_at, f.id
        LIMIT ?
        FOR UPDATE OF f SKIP LOCKED`,
      [input.cycleDate, input.limit],
    );
    const batch: FinalBillBatch = { scanned: rows.length, closed: 0, opened: 0 };
    for (const r of rows as RequestRow[]) {
      const invoiceRef = r.payment_type === 'prepaid' ? null : await finalInvoice(trx, r, input.cycleDate, batch);
      await trx('final_bill_requests').where({ id: r.id }).update({ consumed_at: trx.fn.now(), invoice_ref: invoiceRef });
    }
    return batch;
  });
}

/** The invoice that carries the ended line's last charges (see the file comment). */
async function finalInvoice(trx: Knex.Transaction, r: RequestRow, cycleDate: string, batch: FinalBillBatch): Promise<string | null> {
  const open = await trx('invoices').where({ billing_account_id: r.payer, status: 'open' }).forUpdate().first('id', 'period_start', 'period_end');
  const live = await trx('subscribers as s').join('billing_accounts as a', 'a.id', 's.billing_account_id')
    .where((q) => q.where('a.id', r.payer).orWhere('a.parent_account_id', r.payer)).whereIn('s.state', ['active', 'suspended']).first('s.id');
  if (live) return open?.id ?? null;
  if (open) {
    if (iso(open.period_end) > cycleDate) {
      await trx('invoices').where({ id: open.id }).update({ period_end: iso(open.period_start) > cycleDate ? iso(open.period_start) : cycleDate });
      batch.closed++;
    }
    return open.id;
  }
  const last = await trx('invoices').where({ billing_account_id: r.payer }).whereIn('status', ['issued', 'paid'])
    .orderBy([{ column: 'period_end', order: 'desc' }, { column: 'issued_at', order: 'desc' }]).first('id', 'period_end');
  const from = last && iso(last.period_end) > r.month_start ? iso(last.period_end) : r.month_start;
  if (from >= cycleDate || (await usageBeyondAllowance(trx, r.payer, from, cycleDate)).length === 0) return last?.id ?? null;
  const [made] = await trx('invoices').insert({ billing_account_id: r.payer, period_start: from, period_end: cycleDate, currency: r.currency }).returning('id');
  batch.opened++;
  return made.id as string;
}
