import fs from 'node:fs';
import { TEST_STATE_FILE, type TestServices } from './support/services';

export default async function globalTeardown(): Promise<void> {
  const stop = (globalThis as Record<string, unknown>).__mvnoTestStop as (() => Promise<void>) | undefined;
  if (stop) await stop();
  if (fs.existsSync(TEST_STATE_FILE)) {
    const services = JSON.parse(fs.readFileSync(TEST_STATE_FILE, 'utf8')) as TestServices;
    fs.rmSync(services.root, { recursive: true, force: true });
    fs.rmSync(TEST_STATE_FILE, { force: true });
  }
}
