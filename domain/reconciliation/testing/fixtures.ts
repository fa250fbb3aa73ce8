/**
 * Test and benchmark fixtures for reconciliation: seed SIMs and rated usage from the generator's
 * synthetic events (streamed with COPY), and score a run's discrepancies against the faults the
 * generator injected (precision and recall).
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { formatUtcIso } from '../wholesale-file.parser';
import {
  findWholesaleRate,
  priceWholesale,
  type InjectedFault,
  type RatedUsageEvent,
  type WholesaleRateCard,
} from '../wholesale-file.generator';

const SUBSCRIBER = '00000000-0000-4000-8000-000000000001';
const ACCOUNT = '00000000-0000-4000-8000-000000000002';

async function copyRows(db: Knex, sql: string, rows: Iterable<string> | AsyncIterable<string>): Promise<void> {
  const client = (await db.client.acquireConnection()) as PoolClient;
  try {
    const stream = client.query(copyFrom(sql));
    const done = new Promise<void>((res, rej) => {
      stream.on('finish', res);
      stream.on('error', rej);
    });
    let buf = '';
    for await (const r of rows) {
      buf += r;
      if (buf.length > 256 * 1024) {
        const ok = stream.write(buf);
        buf = '';
        if (!ok) await once(stream, 'drain');
      }
    }
    if (buf) stream.write(buf);
    stream.end();
    await done;
  } finally {
    db.client.releaseConnection(client);
  }
}

/** Insert a SIM for every IMSI (ICCIDs derived from the IMSI). */
export async function seedSims(db: Knex, imsis: Iterable<string>): Promise<void> {
  function* rows() {
    for (const imsi of imsis) yield `89${imsi.padStart(17, '0').slice(-17)}\t${imsi}\tphysical\tactive\n`;
  }
  await copyRows(db, `COPY sims (iccid, imsi, form, state) FROM STDIN`, rows());
}

/**
 * Rated usage rows for the events (charging_data_ref = usageEventId), retail priced at
 * `retailMultiplier` × the wholesale card (so margins are visible).
 */
export async function seedRatedUsage(
  db: Knex,
  events: Iterable<RatedUsageEvent> | AsyncIterable<RatedUsageEvent>,
  card: WholesaleRateCard,
  options: { retailMultiplier?: bigint; currency?: string } = {},
): Promise<number> {
  const mult = options.retailMultiplier ?? 3n;
  const cur = options.currency ?? 'EUR';
  let n = 0;
  async function* rows() {
    for await (const e of events) {
      n++;
      const rate = findWholesaleRate(card, e.service, e.zone);
      const amount = rate ? priceWholesale(rate, e.volume) * mult : 0n;
      const ms = typeof e.startedAt === 'number' ? e.startedAt : e.startedAt.getTime();
      const t = formatUtcIso(ms);
      yield `${e.usageEventId}\t1\t1\t${SUBSCRIBER}\t${ACCOUNT}\t${e.msisdn ?? '\\N'}\t${e.imsi}\t${e.service}\t${e.zone}\t${t}\t${t}\t${e.volume}\t0\t${e.volume}\t${amount}\t${cur}\n`;
    }
  }
  await copyRows(
    db,
    `COPY rated_usage (charging_data_ref, invocation_sequence_number, rating_group, subscriber_id, billing_account_id, msisdn, imsi, service, zone,
       started_at, ended_at, used_units, bucket_units, priced_units, amount_micros, currency) FROM STDIN`,
    rows(),
  );
  return n;
}

/** The discrepancy items a fault should produce: "category|mno|line" or "category|ours|usageEventId". */
export function expectedItems(f: InjectedFault): string[] {
  switch (f.fault) {
    case 'dropped':
      return [`missing_mno|ours|${f.usageEventId}`];
    case 'duplicate':
      return [`duplicate|mno|${f.lineNumber}`];
    case 'time_drift':
      return [`missing_ours|mno|${f.lineNumber}`, `missing_mno|ours|${f.usageEventId}`];
    case 'volume_drift':
      return [`volume_mismatch|mno|${f.lineNumber}`];
    case 'wrong_rate':
      return [`rate_mismatch|mno|${f.lineNumber}`];
    case 'unknown_imsi':
      return [`unknown_subscriber|mno|${f.lineNumber}`];
    case 'extra_on_mno':
      return [`missing_ours|mno|${f.lineNumber}`];
  }
}

export interface Score {
  expected: number;
  flagged: number;
  truePositives: number;
  precision: number;
  recall: number;
  falsePositives: string[];
  falseNegatives: string[];
}

/** Compare a run's discrepancies with the injected faults (from a list or a JSONL fault log). */
export async function scoreRun(db: Knex, runId: string, faults: InjectedFault[] | { faultLogPath: string }): Promise<Score> {
  const expected = new Set<string>();
  if (Array.isArray(faults)) {
    for (const f of faults) for (const k of expectedItems(f)) expected.add(k);
  } else {
    const rl = createInterface({ input: createReadStream(faults.faultLogPath), crlfDelay: Infinity });
    for await (const line of rl) if (line.trim()) for (const k of expectedItems(JSON.parse(line) as InjectedFault)) expected.add(k);
  }
  const { rows } = await db.raw(
    `SELECT d.category, d.side, d.line_number::text AS line, u.charging_data_ref AS event
       FROM reconciliation_discrepancies d LEFT JOIN rated_usage u ON u.id = d.rated_usage_id
      WHERE d.run_id = ? AND d.category <> 'matched'`,
    [runId],
  );
  let tp = 0;
  const fp: string[] = [];
  const seen = new Set<string>();
  for (const r of rows as { category: string; side: string; line: string | null; event: string | null }[]) {
    const k = r.side === 'ours' ? `${r.category}|ours|${r.event}` : `${r.category}|mno|${r.line}`;
    seen.add(k);
    if (expected.has(k)) tp++;
    else if (fp.length < 50) fp.push(k);
  }
  const fn: string[] = [];
  for (const k of expected) if (!seen.has(k) && fn.length < 50) fn.push(k);
  return {
    expected: expected.size,
    flagged: rows.length,
    truePositives: tp,
    precision: rows.length === 0 ? 1 : tp / rows.length,
    recall: expected.size === 0 ? 1 : tp / expected.size,
    falsePositives: fp,
    falseNegatives: fn,
  };
}
