/** Creates an API key and prints it once: `npm run apikey:create -- --role finance --name "Finance team"`.
 * Uses DATABASE_URL, or the embedded database of `npm start` when it runs. */
import { parseArgs } from 'node:util';
import { createDatabase } from '../platform/database';
import { createApiKey } from '../domain/access/api-keys.repository';
import { ROLES, type Role } from '../domain/access/roles';
import { embeddedDatabaseUrl } from '../platform/dev-stack';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { role: { type: 'string' }, name: { type: 'string' } } });
  if (!values.role || !ROLES.includes(values.role as Role)) {
    throw new Error(`--role is required, one of: ${ROLES.join(', ')}`);
  }
  if (!values.name?.trim()) throw new Error('--name is required (who or what uses the key)');
  const db = createDatabase(process.env.DATABASE_URL ?? embeddedDatabaseUrl());
  try {
    const { key, record } = await createApiKey(db, { name: values.name.trim(), role: values.role as Role });
    console.log(`API key for "${record.name}" (role ${record.role}, id ${record.id}). It is shown only this once:\n\n  ${key}\n`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`apikey:create: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
