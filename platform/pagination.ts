import type { Knex } from 'knex';

/** Keyset pagination over (created_at, id): stable under inserts, no OFFSET scans. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface Page<T> {
  items: T[];
  /** One per item; built from the database's own timestamp text, which keeps microseconds. */
  cursors: string[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

export const MAX_PAGE_SIZE = 100;

export function encodeCursor(createdAt: string, id: string): string {
  const at = createdAt;
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

export class InvalidCursorError extends Error {}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string' && !Number.isNaN(Date.parse(value[0]))) {
      return [value[0], value[1]];
    }
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError('invalid cursor');
}

/** Applies a keyset page to a query over a table with `created_at` and `id` columns. */
export async function keysetPage<Row extends { created_at: Date | string; id: string }>(
  db: Knex,
  query: Knex.QueryBuilder,
  args: PageArgs,
  table: string,
): Promise<Page<Row>> {
  const backwards = args.last != null && args.first == null;
  const size = Math.min(Math.max((backwards ? args.last : args.first) ?? 20, 1), MAX_PAGE_SIZE);
  const q = query.clone().select(db.raw(`${table}.created_at::text AS cursor_at`));
  if (args.after) {
    const [at, id] = decodeCursor(args.after);
    q.whereRaw(`(${table}.created_at, ${table}.id) > (?::timestamptz, ?::uuid)`, [at, id]);
  }
  if (args.before) {
    const [at, id] = decodeCursor(args.before);
    q.whereRaw(`(${table}.created_at, ${table}.id) < (?::timestamptz, ?::uuid)`, [at, id]);
  }
  const direction = backwards ? 'desc' : 'asc';
  const rows = (await q.orderBy([{ column: `${table}.created_at`, order: direction }, { column: `${table}.id`, order: direction }]).limit(size + 1)) as Row[];
  const more = rows.length > size;
  const items = more ? rows.slice(0, size) : rows;
  if (backwards) items.reverse();
  return {
    items,
    cursors: items.map((r) => encodeCursor((r as unknown as { cursor_at: string }).cursor_at, r.id)),
    hasNextPage: backwards ? !!args.before : more,
    hasPreviousPage: backwards ? more : !!args.after,
  };
}
