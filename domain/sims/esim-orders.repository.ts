/** The billing-side record of eSIM orders (table `esim_orders`), written by the `esim-order:<id>`
 * workflow's activities; the ES2+ notification endpoint finds an ICCID's open order here. */
import type { Knex } from 'knex';

export type EsimOrderState = 'ordering' | 'confirmed' | 'downloaded' | 'installed' | 'completed' | 'failed';
export const ESIM_ORDER_FINAL_STATES: readonly EsimOrderState[] = ['completed', 'failed'];

export interface EsimOrderRecord {
  id: string;
  subscriberId: string;
  simId: string;
  iccid: string;
  purpose: 'activation' | 'swap';
  state: EsimOrderState;
  eid: string | null;
  matchingId: string | null;
  activationCode: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const toOrder = (r: Record<string, unknown>): EsimOrderRecord => ({
  id: r.id as string, subscriberId: r.subscriber_id as string, simId: r.sim_id as string, iccid: r.iccid as string, purpose: r.purpose as EsimOrderRecord['purpose'],
  state: r.state as EsimOrderState, eid: (r.eid as string) ?? null, matchingId: (r.matching_id as string) ?? null, activationCode: (r.activation_code as string) ?? null,
  failureCode: (r.failure_code as string) ?? null, failureMessage: (r.failure_message as string) ?? null, createdAt: r.created_at as Date, updatedAt: r.updated_at as Date,
});

/** Idempotent on the order id. */
export async function createEsimOrder(db: Knex, o: { id: string; subscriberId: string; simId: string; iccid: string; purpose: 'activation' | 'swap'; eid?: string }): Promise<void> {
  await db('esim_orders')
    .insert({ id: o.id, subscriber_id: o.subscriberId, sim_id: o.simId, iccid: o.iccid, purpose: o.purpose, eid: o.eid ?? null })
    .onConflict('id')
    .ignore();
}

export async function updateEsimOrder(
  db: Knex,
  id: string,
  patch: Partial<{ state: EsimOrderState; eid: string; matchingId: string; activationCode: string; failureCode: string; failureMessage: string }>,
): Promise<void> {
  const row: Record<string, unknown> = { updated_at: db.fn.now() };
  if (patch.state) row.state = patch.state;
  if (patch.eid) row.eid = patch.eid;
  if (patch.matchingId) row.matching_id = patch.matchingId;
  if (patch.activationCode) row.activation_code = patch.activationCode;
  if (patch.failureCode) row.failure_code = patch.failureCode;
  if (patch.failureMessage) row.failure_message = patch.failureMessage.slice(0, 500);
  // A final state is never left (a late retry of an earlier step cannot reopen an order).
  await db('esim_orders').where({ id }).whereNotIn('state', ESIM_ORDER_FINAL_STATES as EsimOrderState[]).update(row);
}

/** The order an SM-DP+ notification is about: the newest order of this ICCID. */
export async function findEsimOrderByIccid(db: Knex, iccid: string): Promise<EsimOrderRecord | undefined> {
  const r = await db('esim_orders').where({ iccid }).orderBy('created_at', 'desc').first();
  return r ? toOrder(r) : undefined;
}

export async function findEsimOrder(db: Knex, id: string): Promise<EsimOrderRecord | undefined> {
  const r = await db('esim_orders').where({ id }).first();
  return r ? toOrder(r) : undefined;
}
