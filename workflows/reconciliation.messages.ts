import { defineQuery } from '@temporalio/workflow';

/** Messages and ids of the reconciliation workflows, shared with api/ and tests. */
export interface ReconciliationWorkflowInput {
  partnerCode: string;
  /** YYYY-MM; when left out, the month before the workflow started (the schedule's case). */
  period?: string;
  actor: string;
  /** Server paths (or the partner's inbox folder files) to import before matching. */
  files?: string[];
  /** Chunks matched at once (activities in parallel); default 2. */
  concurrency?: number;
  chunkCount?: number;
}

export interface ReconciliationProgress {
  partnerCode: string;
  period: string;
  stage: 'importing' | 'creating' | 'staging' | 'matching' | 'settling' | 'ready' | 'failed';
  runId: string | null;
  version: number | null;
  chunkCount: number;
  chunksDone: number;
  imported: { file: string; importId: string | null; records: number; duplicate: boolean }[];
  error: string | null;
}

export interface ReconciliationWorkflowResult {
  runId: string;
  version: number;
  status: string;
  counts: Record<string, number>;
}

export const reconciliationProgressQuery = defineQuery<ReconciliationProgress>('reconciliationProgress');

export const reconciliationWorkflowId = (partnerCode: string, period: string) => `reconciliation:${partnerCode}:${period}`;

export const RECONCILIATION_SCHEDULE_ID = 'reconciliation-monthly';

/** The month before `ms` as YYYY-MM (UTC). */
export function previousPeriod(ms: number): string {
  const d = new Date(ms);
  const y = d.getUTCMonth() === 0 ? d.getUTCFullYear() - 1 : d.getUTCFullYear();
  const m = d.getUTCMonth() === 0 ? 12 : d.getUTCMonth();
  return `${y}-${String(m).padStart(2, '0')}`;
}
