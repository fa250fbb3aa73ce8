import type { Knex } from 'knex';
import type { PoolClient, QueryResult } from 'pg';

/** Shared by every context's repositories (billing, ledger, notifications); it imports no context.
 *
 * Runs fixed-text SQL with PostgreSQL's own `$n` parameters on a pooled pg connection of the knex
 * instance (knex's `?` bindings do not mix with `$n`, casts and array parameters in long set-based
 * statements). With `transaction`, the statements run in one transaction. */
export async function withConnection<T>(db: Knex, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = (await db.client.acquireConnection()) as PoolClient;
  try {
    return await fn(client);
  } finally {
    await db.client.releaseConnection(client);
  }
}

export async function pgQuery(db: Knex, text: string, values: unknown[]): Promise<QueryResult> {
  return withConnection(db, (c) => c.query(text, values));
}

export async function pgTransaction<T>(db: Knex, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return withConnection(db, async (c) => {
    await c.query('BEGIN');
    try {
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}
