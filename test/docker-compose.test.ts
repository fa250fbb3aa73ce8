import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../platform/config';
import { SEARCH_ATTRIBUTES } from '../platform/temporal-search-attributes';

/** No Docker engine runs here, so the compose file is checked against what the app reads. */
const root = path.resolve(__dirname, '..');
type Service = {
  image?: string; build?: string; command?: string[] | string; ports?: string[];
  environment?: Record<string, string | number>; depends_on?: Record<string, { condition: string }> | string[];
};
const compose = parse(fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

describe('docker-compose.yml', () => {
  test('has the production-shaped services', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'charging', 'migrate', 'postgres', 'temporal', 'temporal-setup', 'temporal-ui', 'worker'].sort());
  });

  test.each(['migrate', 'worker', 'api', 'charging'])('%s is built from the Dockerfile, runs an existing entry point and reads a valid environment', (name) => {
    const service = services[name];
    expect(service.build).toBe('.');
    const command = service.command as string[];
    const entry = command[command.length - 1];
    expect(fs.existsSync(path.join(root, entry))).toBe(true);
    const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v)]));
    expect(env.DATABASE_URL).toMatch(/@postgres:5432\//);
    const config = loadConfig(env);
    expect(config.production).toBe(true);
    if (name !== 'migrate' && name !== 'charging') expect(config.temporal.address).toBe('temporal:7233');
  });

  test('app services wait for the migration and for Temporal with its search attributes', () => {
    for (const name of ['worker', 'api']) {
      const deps = services[name].depends_on as Record<string, { condition: string }>;
      expect(deps.migrate.condition).toBe('service_completed_successfully');
      expect(deps['temporal-setup'].condition).toBe('service_completed_successfully');
    }
    expect((services.migrate.depends_on as Record<string, { condition: string }>).postgres.condition).toBe('service_healthy');
    expect((services.temporal.depends_on as Record<string, { condition: string }>).postgres.condition).toBe('service_healthy');
  });

  test('registers every search attribute the workflows use', () => {
    const script = (services['temporal-setup'].command as string[]).join(' ');
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(script).toContain(name);
  });

  test('exposes the API, the charging endpoint and the Temporal UI on their documented ports', () => {
    expect(services.api.ports).toContain('4000:4000');
    expect(String(services.api.environment?.API_PORT)).toBe('4000');
    expect(services.charging.ports).toContain('4100:4100');
    expect(String(services.charging.environment?.CHARGING_PORT)).toBe('4100');
    expect(services['temporal-ui'].ports).toContain('8233:8080');
    expect(services['temporal-ui'].environment?.TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  test('Temporal persists to the same PostgreSQL', () => {
    expect(services.temporal.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres' });
  });

  test('the Dockerfile builds the workflow bundle the worker loads', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/scripts\/bundle-workflows\.ts dist\/workflow-bundle\.js/);
    expect(dockerfile).toMatch(/WORKFLOW_BUNDLE_PATH=\/app\/dist\/workflow-bundle\.js/);
    expect(fs.existsSync(path.join(root, 'scripts', 'bundle-workflows.ts'))).toBe(true);
  });
});
