import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { Client } from 'pg';
import { createDatabase, type Database } from '../../platform/database';

export const TEMPLATE_DATABASE = 'mvno_template';
export const TEST_STATE_FILE = path.join(os.tmpdir(), `mvno-bss-test-services-${process.ppid}-${process.pid}.json`);

export interface TestServices {
  root: string;
  postgresUrl: string;
  postgresPort: number;
  templateDatabase: string;
  temporalAddress: string;
  workflowBundlePath: string;
  temporalCliPath: string;
}

/** Set by the global setup in the parent process, inherited by jest's workers. */
export function testServices(): TestServices {
  const raw = process.env.MVNO_TEST_SERVICES;
  if (!raw) throw new Error('integration tests need the global setup (run them through `npm test` or `npx jest --selectProjects integration`)');
  return JSON.parse(raw) as TestServices;
}

export function databaseUrl(name: string): string {
  const url = new URL(testServices().postgresUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, migrated database for one test file, cloned from the template. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<{ db: Database; url: string; name: string; drop(): Promise<void> }> {
  const services = testServices();
  const name = `t_${crypto.randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: services.postgresUrl });
  await admin.connect();
  try {
    await admin.query(options.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${services.templateDatabase}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const db = createDatabase(url, { poolMax: 10, applicationName: 'mvno-bss-test' });
  return {
    db,
    url,
    name,
    drop: async () => {
      await db.destroy();
      const c = new Client({ connectionString: services.postgresUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
