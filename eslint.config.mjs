// Lint: TypeScript's recommended rules everywhere, and the determinism fence around workflows/:
// workflow code runs in Temporal's sandbox and is replayed, so it may import only
// @temporalio/workflow (and @temporalio/common for types and search-attribute keys), its own
// message files and pure domain functions — never Node built-ins, the database or activities' code.
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', '.tools/', 'coverage/', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflows are deterministic: no Node built-ins.' })),
            { name: 'knex', message: 'Workflows never touch the database: call an activity.' },
            { name: 'pg', message: 'Workflows never touch the database: call an activity.' },
            { name: '@temporalio/client', message: 'Workflows use @temporalio/workflow only.' },
            { name: '@temporalio/worker', message: 'Workflows use @temporalio/workflow only.' },
            { name: '@temporalio/activity', message: 'Workflows use @temporalio/workflow only.' },
          ],
          patterns: [
            { group: ['**/*.repository', '**/*.repository.ts', '**/platform/*', '**/api/*', '**/simulators/*'], message: 'Workflows import only pure domain functions and types.' },
            { group: ['../activities/*', '../activities'], allowTypeImports: true, message: 'Import activity types only (import type …) and call them through proxyActivities.' },
          ],
        },
      ],
    },
  },
);
