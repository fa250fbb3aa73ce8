import path from 'node:path';
import { execFileSync } from 'node:child_process';

/** The lint fence around workflows/ is part of the test suite, so CI enforces it. ESLint runs as
 * a child process (its flat config is an ES module, which jest's sandbox cannot load). */
const root = path.resolve(__dirname, '..');
const eslintBin = path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js');

function lintWorkflowSource(source: string): { ruleId: string | null; message: string; line: number }[] {
  let out: string;
  try {
    out = execFileSync(process.execPath, [eslintBin, '--format', 'json', '--stdin', '--stdin-filename', 'workflows/example.workflow.ts'], { cwd: root, input: source, encoding: 'utf8' });
  } catch (err) {
    out = (err as { stdout: string }).stdout; // exit code 1 when there are errors
  }
  return (JSON.parse(out) as { messages: { ruleId: string | null; message: string; line: number }[] }[])[0].messages;
}

describe('workflow determinism lint rule', () => {
  test('refuses Node built-ins, the database, repositories and activity code in a workflow', () => {
    const bad = [
      "import fs from 'node:fs';",
      "import { randomUUID } from 'crypto';",
      "import knex from 'knex';",
      "import { Pool } from 'pg';",
      "import { findPlanByCode } from '../domain/catalog/catalog.repository';",
      "import { createActivities } from '../activities';",
      'export const x = [fs, randomUUID, knex, Pool, findPlanByCode, createActivities];',
    ].join('\n');
    const restricted = lintWorkflowSource(bad).filter((m) => m.ruleId === 'no-restricted-imports');
    expect(restricted.map((m) => m.line).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(restricted.map((m) => m.message).join('\n')).toMatch(/Node built-ins[\s\S]*database[\s\S]*pure domain[\s\S]*activity types only/);
  });

  test('allows the workflow SDK, type-only activity imports and pure domain rules', () => {
    const good = [
      "import { proxyActivities } from '@temporalio/workflow';",
      "import type { Activities } from '../activities';",
      "import { nextState } from '../domain/subscribers/subscriber-lifecycle';",
      'export const x = [proxyActivities, nextState] as unknown as Activities;',
    ].join('\n');
    expect(lintWorkflowSource(good).filter((m) => m.ruleId === 'no-restricted-imports')).toEqual([]);
  });

  test('the workflows folder itself passes', () => {
    const out = (() => {
      try {
        return execFileSync(process.execPath, [eslintBin, '--format', 'json', 'workflows'], { cwd: root, encoding: 'utf8' });
      } catch (err) {
        return (err as { stdout: string }).stdout;
      }
    })();
    const problems = (JSON.parse(out) as { filePath: string; messages: { severity: number; line: number; message: string }[] }[]).flatMap((r) =>
      r.messages.filter((m) => m.severity === 2).map((m) => `${path.relative(root, r.filePath)}:${m.line} ${m.message}`),
    );
    expect(problems).toEqual([]);
  });
});
