import type { Knex } from 'knex';
import { generateApiKey, hashApiKey } from './api-key';
import type { Role } from './roles';

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  keyPrefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** Returns the key itself once; afterwards only its hash exists. */
export async function createApiKey(db: Knex, input: { name: string; role: Role }): Promise<{ key: string; record: ApiKeyRecord }> {
  const key = generateApiKey();
  const [row] = await db('api_keys')
    .insert({ name: input.name, role: input.role, key_hash: hashApiKey(key), key_prefix: key.slice(0, 10) })
    .returning('*');
  return { key, record: { id: row.id, name: row.name, role: row.role, keyPrefix: row.key_prefix, createdAt: row.created_at, revokedAt: row.revoked_at } };
}

export async function roleForApiKey(db: Knex, key: string): Promise<Role | undefined> {
  const row = await db('api_keys').where({ key_hash: hashApiKey(key) }).whereNull('revoked_at').first('role');
  return row?.role;
}

export async function revokeApiKey(db: Knex, id: string): Promise<boolean> {
  return (await db('api_keys').where({ id }).whereNull('revoked_at').update({ revoked_at: db.fn.now() })) === 1;
}

/** A small time-bounded cache in front of the lookup: every request carries a key. */
export function cachedApiKeyResolver(db: Knex, ttlMs = 30_000): (key: string) => Promise<Role | undefined> {
  const cache = new Map<string, { role: Role | undefined; until: number }>();
  return async (key) => {
    const hash = hashApiKey(key);
    const hit = cache.get(hash);
    if (hit && hit.until > Date.now()) return hit.role;
    const role = await roleForApiKey(db, key);
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { role, until: Date.now() + ttlMs });
    return role;
  };
}
