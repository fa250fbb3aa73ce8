/** One-shot migration (docker-compose's `migrate` service, CI's template database):
 * `DATABASE_URL=... npx tsx scripts/migrate.ts [latest|rollback-all]`. */
import { createDatabase, migrateToLatest, migrationConfig } from '../platform/database';

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is required');
  const db = createDatabase(url, { applicationName: 'mvno-bss-migrate' });
  try {
    if (process.argv[2] === 'rollback-all') {
      await db.migrate.rollback(migrationConfig(), true);
      console.log('rolled back every migration');
    } else {
      const applied = await migrateToLatest(db);
      console.log(applied.length ? `applied ${applied.length} migrations` : 'database already up to date');
    }
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error(`migrate: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
