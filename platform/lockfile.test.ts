import fs from 'node:fs';
import path from 'node:path';

/** `npm ci` (what CI runs) refuses a lock that misses any optional dependency; see scripts/complete-lockfile.mjs. */
test('package-lock.json lists every optional dependency, so npm ci accepts it', () => {
  const lock = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { optionalDependencies?: Record<string, string> }>;
  };
  const missing: string[] = [];
  for (const [location, meta] of Object.entries(lock.packages)) {
    for (const name of Object.keys(meta.optionalDependencies ?? {})) {
      const nested = `${location ? `${location}/` : ''}node_modules/${name}`;
      if (!lock.packages[nested] && !lock.packages[`node_modules/${name}`]) missing.push(`${name} (for ${location || 'the project'})`);
    }
  }
  expect(missing).toEqual([]);
});
