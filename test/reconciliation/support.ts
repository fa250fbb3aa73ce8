import { Readable } from 'node:stream';
import type { Knex } from 'knex';
import { createPartner, rateCardToRows } from '../../domain/reconciliation/partners';
import { createRun, finalizeRun, matchChunk, stageRun, type ReconciliationRun } from '../../domain/reconciliation/reconciliation-runs';
import { seedRatedUsage, seedSims } from '../../domain/reconciliation/testing/fixtures';
import {
  generateWholesaleFile,
  SAMPLE_WHOLESALE_RATE_CARD,
  syntheticRatedUsageEvents,
  type RatedUsageEvent,
  type WholesaleGeneratorOptions,
  type WholesaleGenerationSummary,
} from '../../domain/reconciliation/wholesale-file.generator';

export const PERIOD = '2025-01';
/** Events from Jan 1 12:00 over 29 days: drifted and extra records stay inside the month. */
export const usageOptions = (count: number, seed: string) => ({
  count,
  seed,
  periodStartMs: Date.UTC(2025, 0, 1, 12),
  periodMs: 29 * 86_400_000,
});

export async function createSamplePartner(db: Knex, code = 'mno-a') {
  return createPartner(
    db,
    { code, name: 'Sample MNO', currency: 'EUR', rateCard: rateCardToRows(SAMPLE_WHOLESALE_RATE_CARD), effectiveFrom: '2024-01-01' },
    'test',
  );
}

export async function seedUsage(db: Knex, count: number, seed: string): Promise<RatedUsageEvent[]> {
  const events = [...syntheticRatedUsageEvents(usageOptions(count, seed))];
  await seedSims(db, new Set(events.map((e) => e.imsi)));
  await seedRatedUsage(db, events, SAMPLE_WHOLESALE_RATE_CARD);
  return events;
}

export async function generateFile(
  events: RatedUsageEvent[],
  options: WholesaleGeneratorOptions,
): Promise<{ bytes: Buffer; summary: WholesaleGenerationSummary }> {
  const gen = generateWholesaleFile(events, SAMPLE_WHOLESALE_RATE_CARD, options);
  const parts: Buffer[] = [];
  for await (const c of gen.stream) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return { bytes: Buffer.concat(parts), summary: await gen.done };
}

export const asInput = (b: Buffer | string) => Readable.from([typeof b === 'string' ? Buffer.from(b) : b]);

/** The whole run without Temporal: create, stage, every chunk, finalize. */
export async function reconcile(db: Knex, partnerCode: string, period = PERIOD): Promise<ReconciliationRun> {
  const run = await createRun(db, { partnerCode, period, actor: 'test' });
  await stageRun(db, run.id);
  for (let c = 0; c < run.chunkCount; c++) await matchChunk(db, run.id, c);
  return finalizeRun(db, run.id);
}
