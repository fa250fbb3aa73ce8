/** Two projects:
 *  - unit: pure logic, `*.test.ts` next to the code; no services.
 *  - integration: `*.int.test.ts` next to the code and everything under test/; one embedded
 *    PostgreSQL and one Temporal dev server are started for the whole run (test/global-setup.ts),
 *    and each test file gets its own database cloned from a migrated template. */
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] };
const ignored = ['/node_modules/', '/dist/', '/.data/'];
module.exports = {
  testTimeout: 60000,
  maxWorkers: 2,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/**/*.test.ts'],
      testPathIgnorePatterns: [...ignored, '\\.int\\.test\\.ts$', '<rootDir>/test/'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/**/*.int.test.ts', '<rootDir>/test/**/*.test.ts'],
      testPathIgnorePatterns: ignored,
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
