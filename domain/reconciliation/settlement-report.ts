/**
 * Settlement reports of a reconciliation run (pure: no I/O). For the same usage, side by side:
 * the wholesale cost by the partner's rate card, what the MNO claims, our retail revenue, and
 * the margin, per service and zone and per category, with totals.
 *
 * Definitions (all micro-units of the partner's currency; retail revenue is what rated usage
 * charged from money — usage drawn from allowance buckets carries no per-event revenue):
 *   rate card cost   the card applied to our volume (or the MNO's, for records we have no event for)
 *   MNO claimed      sum of the file's amounts
 *   margin           retail revenue − MNO claimed
 *   claim vs card    MNO claimed − rate card cost (> 0: the MNO claims more than the card says)
 * Settlement-ready amounts: "agreed" = the claims on matched records; "disputed" = everything
 * else the MNO claims (duplicates, unknown subscribers, rate and volume differences, records we
 * never saw).
 */
import type { WholesaleTolerances } from './wholesale-file.generator';
import { formatMicros } from './wholesale-file.generator';
import type { Partner, PartnerTerms } from './partners';
import type { ReconciliationCategory, ReconciliationRun } from './reconciliation-runs';

export interface SettlementLineRow {
  service: string;
  zone: string;
  category: string;
  mno_records: string;
  our_records: string;
  mno_volume: string;
  our_volume: string;
  rate_card: string;
  mno_claimed: string;
  retail: string;
}

export interface SettlementTotals {
  mnoRecords: number;
  ourRecords: number;
  mnoVolume: string;
  ourVolume: string;
  rateCardMicros: string;
  mnoClaimedMicros: string;
  retailRevenueMicros: string;
  marginMicros: string;
  claimVsCardMicros: string;
}

export interface SettlementSummary {
  runId: string;
  partner: { code: string; name: string; currency: string };
  period: string;
  version: number;
  termsVersion: number;
  tolerances: { timeWindowMs: number; volumeRelativePpm: number; volumeAbsolute: Record<string, string>; amountMicros: string };
  imports: { id: string; fileName: string; contentSha256: string; records: number; rejected: number }[];
  counts: Record<string, number>;
  totals: SettlementTotals;
  agreedMicros: string;
  disputedMicros: string;
  byServiceZone: ({ service: string; zone: string } & SettlementTotals)[];
  byCategory: ({ category: string } & SettlementTotals)[];
  lines: ({ service: string; zone: string; category: string } & SettlementTotals)[];
}

interface Acc {
  mnoRecords: number;
  ourRecords: number;
  mnoVolume: bigint;
  ourVolume: bigint;
  rateCard: bigint;
  claimed: bigint;
  retail: bigint;
}
const zero = (): Acc => ({ mnoRecords: 0, ourRecords: 0, mnoVolume: 0n, ourVolume: 0n, rateCard: 0n, claimed: 0n, retail: 0n });
const add = (a: Acc, l: SettlementLineRow) => {
  a.mnoRecords += Number(l.mno_records);
  a.ourRecords += Number(l.our_records);
  a.mnoVolume += BigInt(l.mno_volume);
  a.ourVolume += BigInt(l.our_volume);
  a.rateCard += BigInt(l.rate_card);
  a.claimed += BigInt(l.mno_claimed);
  a.retail += BigInt(l.retail);
};
const totals = (a: Acc): SettlementTotals => ({
  mnoRecords: a.mnoRecords,
  ourRecords: a.ourRecords,
  mnoVolume: a.mnoVolume.toString(),
  ourVolume: a.ourVolume.toString(),
  rateCardMicros: a.rateCard.toString(),
  mnoClaimedMicros: a.claimed.toString(),
  retailRevenueMicros: a.retail.toString(),
  marginMicros: (a.retail - a.claimed).toString(),
  claimVsCardMicros: (a.claimed - a.rateCard).toString(),
});

const PAIR: ReadonlySet<string> = new Set(['matched', 'volume_mismatch', 'rate_mismatch']);

export function summarise(input: {
  run: ReconciliationRun;
  partner: Partner;
  terms: PartnerTerms;
  lines: SettlementLineRow[];
  imports: { id: string; file_name: string; content_sha256: string; records: number; rejected: number }[];
}): SettlementSummary {
  const all = zero();
  const bySz = new Map<string, Acc>();
  const byCat = new Map<string, Acc>();
  const counts: Record<string, number> = {};
  let agreed = 0n;
  for (const l of input.lines) {
    add(all, l);
    const sz = l.service + '\u0000' + l.zone;
    if (!bySz.has(sz)) bySz.set(sz, zero());
    add(bySz.get(sz) as Acc, l);
    if (!byCat.has(l.category)) byCat.set(l.category, zero());
    add(byCat.get(l.category) as Acc, l);
    counts[l.category] = (counts[l.category] ?? 0) + (PAIR.has(l.category) ? Number(l.mno_records) : Number(l.mno_records) + Number(l.our_records));
    if (l.category === 'matched') agreed += BigInt(l.mno_claimed);
  }
  const tol: WholesaleTolerances = input.terms.tolerances;
  return {
    runId: input.run.id,
    partner: { code: input.partner.code, name: input.partner.name, currency: input.partner.currency },
    period: input.run.period,
    version: input.run.version,
    termsVersion: input.terms.version,
    tolerances: {
      timeWindowMs: tol.timeWindowMs,
      volumeRelativePpm: tol.volumeRelativePpm,
      volumeAbsolute: Object.fromEntries(Object.entries(tol.volumeAbsolute).map(([k, v]) => [k, String(v)])),
      amountMicros: String(tol.amountMicros),
    },
    imports: input.imports.map((i) => ({ id: i.id, fileName: i.file_name, contentSha256: i.content_sha256, records: i.records, rejected: i.rejected })),
    counts,
    totals: totals(all),
    agreedMicros: agreed.toString(),
    disputedMicros: (all.claimed - agreed).toString(),
    byServiceZone: [...bySz.entries()].map(([k, a]) => {
      const [service, zone] = k.split('\u0000');
      return { service, zone, ...totals(a) };
    }),
    byCategory: [...byCat.entries()].map(([category, a]) => ({ category, ...totals(a) })),
    lines: input.lines.map((l) => {
      const a = zero();
      add(a, l);
      return { service: l.service, zone: l.zone, category: l.category, ...totals(a) };
    }),
  };
}

const csvCell = (s: string | number) => (/[",\n]/.test(String(s)) ? `"${String(s).replace(/"/g, '""')}"` : String(s));
const money = (m: string) => formatMicros(BigInt(m));

export function settlementCsv(s: SettlementSummary): string {
  const head = ['section', 'service', 'zone', 'category', 'mno_records', 'our_records', 'mno_volume', 'our_volume', 'rate_card_cost', 'mno_claimed', 'retail_revenue', 'margin', 'claim_vs_card', 'currency'];
  const row = (section: string, service: string, zone: string, category: string, t: SettlementTotals) =>
    [section, service, zone, category, t.mnoRecords, t.ourRecords, t.mnoVolume, t.ourVolume, money(t.rateCardMicros), money(t.mnoClaimedMicros),
      money(t.retailRevenueMicros), money(t.marginMicros), money(t.claimVsCardMicros), s.partner.currency].map(csvCell).join(',');
  const out = [head.join(',')];
  for (const l of s.lines) out.push(row('line', l.service, l.zone, l.category, l));
  for (const l of s.byServiceZone) out.push(row('service_zone', l.service, l.zone, '', l));
  for (const l of s.byCategory) out.push(row('category', '', '', l.category, l));
  out.push(row('total', '', '', '', s.totals));
  return out.join('\n') + '\n';
}

const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

export function settlementHtml(s: SettlementSummary, run: ReconciliationRun): string {
  const cur = esc(s.partner.currency);
  const tr = (cells: (string | number)[], th = false) => `<tr>${cells.map((c) => (th ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`;
  const moneyRow = (label: string[], t: SettlementTotals) =>
    tr([...label, t.mnoRecords, t.ourRecords, money(t.rateCardMicros), money(t.mnoClaimedMicros), money(t.retailRevenueMicros), money(t.marginMicros), money(t.claimVsCardMicros)]);
  const moneyHead = [`MNO records`, `our records`, `rate card (${cur})`, `MNO claimed (${cur})`, `retail revenue (${cur})`, `margin (${cur})`, `claim − card (${cur})`];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Settlement ${esc(s.partner.code)} ${esc(s.period)} v${s.version}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.k{color:#666}</style></head>
<body>
<h1>Wholesale settlement — ${esc(s.partner.name)} (${esc(s.partner.code)})</h1>
<p>Period <b>${esc(s.period)}</b>, run ${esc(s.runId)} version ${s.version}, terms version ${s.termsVersion}. Status: <b>${esc(run.status)}</b>${run.approvedBy ? ` — approved by ${esc(run.approvedBy)} at ${esc(run.approvedAt?.toISOString() ?? '')}` : ''}.</p>
<p class="k">Tolerances: time window ${s.tolerances.timeWindowMs} ms; volume ${s.tolerances.volumeRelativePpm} ppm or ${esc(JSON.stringify(s.tolerances.volumeAbsolute))}; amount ${esc(s.tolerances.amountMicros)} micros.</p>
<h2>Totals</h2>
<table>${tr(['', ...moneyHead], true)}${moneyRow(['all usage'], s.totals)}</table>
<p>Agreed (matched claims): <b>${money(s.agreedMicros)} ${cur}</b>. Disputed: <b>${money(s.disputedMicros)} ${cur}</b>.</p>
<h2>Records by category</h2>
<table>${tr(['category', 'count'], true)}${Object.entries(s.counts).map(([k, v]) => tr([k, v])).join('')}</table>
<h2>By service and zone</h2>
<table>${tr(['service', 'zone', ...moneyHead], true)}${s.byServiceZone.map((l) => moneyRow([l.service, l.zone], l)).join('')}</table>
<h2>By category</h2>
<table>${tr(['category', ...moneyHead], true)}${s.byCategory.map((l) => moneyRow([l.category], l)).join('')}</table>
<h2>Files</h2>
<table>${tr(['import', 'file', 'records', 'rejected', 'SHA-256'], true)}${s.imports.map((i) => tr([i.id, i.fileName, i.records, i.rejected, i.contentSha256])).join('')}</table>
</body></html>
`;
}

export function buildReports(input: Parameters<typeof summarise>[0]): { summary: SettlementSummary; csv: string; html: string } {
  const summary = summarise(input);
  return { summary, csv: settlementCsv(summary), html: settlementHtml(summary, input.run) };
}

export type { ReconciliationCategory };
