import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { createTestDatabase } from '../support/services';
import { buildTestApi } from '../api/support';
import { createLogger } from '../../platform/logger';
import { startReconciliationInboxWatcher } from '../../activities/reconciliation-inbox.background';
import { createReconciliationActivities } from '../../activities/reconciliation.activities';
import { importWholesaleFile } from '../../domain/reconciliation/wholesale-import';
import { syntheticRatedUsageEvents } from '../../domain/reconciliation/wholesale-file.generator';
import { asInput, createSamplePartner, generateFile, usageOptions } from './support';

jest.setTimeout(60_000);

const HEADER = 'record_id,imsi,msisdn,service,started_at,volume,zone,wholesale_amount,currency';
const POLL_MS = 100;

let t: Awaited<ReturnType<typeof createTestDatabase>>;
let api: Awaited<ReturnType<typeof buildTestApi>>;
let inbox: string;
let dir: string;
const logger = createLogger({ level: 'silent' });

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ls = (sub = '') => fs.readdirSync(path.join(dir, sub)).sort();
const importsOf = async () =>
  (await api.gql('finance', `{ wholesaleImports(partnerCode: "mno-a") { id fileName source records rejected importedBy rejections { lineNumber reason } } }`)).body.data
    .wholesaleImports as { id: string; fileName: string; source: string; records: number; rejected: number; importedBy: string; rejections: { lineNumber: number; reason: string }[] }[];

async function mnoFile(seed: string, gzip: boolean): Promise<Buffer> {
  const events = [...syntheticRatedUsageEvents(usageOptions(300, seed))];
  return (await generateFile(events, { seed: `${seed}-file`, faultRate: 0.02, gzip })).bytes;
}

beforeAll(async () => {
  t = await createTestDatabase();
  await createSamplePartner(t.db);
  api = await buildTestApi(t.db, {} as Client, 'unused');
  inbox = fs.mkdtempSync(path.join(os.tmpdir(), 'recon-inbox-'));
  dir = path.join(inbox, 'mno-a');
});

afterAll(async () => {
  await t?.drop();
  if (inbox) fs.rmSync(inbox, { recursive: true, force: true });
});

describe('the watched reconciliation inbox', () => {
  it('imports complete files as they arrive, refuses duplicates and malformed files with their reasons', async () => {
    // Two processes watching one folder: each file is still taken exactly once.
    const watchers = [1, 2].map(() => startReconciliationInboxWatcher({ db: t.db, logger, inboxDir: inbox, intervalMs: POLL_MS }));
    try {
      await waitFor('the partner folder', () => fs.existsSync(path.join(dir, 'rejected')));
      const jan = await mnoFile('inbox-jan', true);

      // Written under a temporary name, renamed when complete.
      fs.writeFileSync(path.join(dir, 'jan.csv.gz.part'), jan);
      await new Promise((r) => setTimeout(r, POLL_MS * 5));
      expect(ls()).toContain('jan.csv.gz.part');
      expect(await importsOf()).toEqual([]);
      fs.renameSync(path.join(dir, 'jan.csv.gz.part'), path.join(dir, 'jan.csv.gz'));
      await waitFor('jan imported', () => ls('imported').includes('jan.csv.gz'));
      const [janImport] = await importsOf();
      expect(janImport).toMatchObject({ fileName: 'jan.csv.gz', source: 'folder', rejected: 0, importedBy: 'reconciliation-inbox' });
      expect(janImport.records).toBeGreaterThan(300);

      // The same content again (uncompressed this time: same content hash), written in place.
      const plain = await mnoFile('inbox-jan', false);
      fs.writeFileSync(path.join(dir, 'jan-resent.csv'), plain);
      // Rows with problems: imported, each rejected row with its line number.
      fs.writeFileSync(
        path.join(dir, 'feb-rows.csv'),
        [
          HEADER,
          'R1,262010000000001,,data,2025-02-05T10:00:00Z,2048,home,0.000002,EUR',
          'R2,262010000000001,,fax,2025-02-05T10:01:00Z,1,home,0.01,EUR',
          'R3,262010000000002,,sms,2025-02-05T10:02:00Z,1,home,0.008,EUR',
          'R4,262010000000002,,voice,2025-02-05T10:03:00Z,60,home,0.0050001234,EUR',
          '',
        ].join('\n'),
      );
      // A file that cannot be read at all (no such layout).
      fs.writeFileSync(path.join(dir, 'broken.csv'), 'id;who;when\n1;2;3\n');
      // Not for the watcher.
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'hello');

      await waitFor('every file handled', () => ls().filter((n) => n.endsWith('.csv')).length === 0 && ls('processing').length === 0);
      expect(ls()).toEqual(['imported', 'notes.txt', 'processing', 'rejected']);
      expect(ls('imported')).toEqual(['feb-rows.csv', 'jan.csv.gz']);
      expect(ls('rejected')).toEqual(['broken.csv', 'broken.csv.reason.txt', 'jan-resent.csv', 'jan-resent.csv.reason.txt']);
      const dupReason = fs.readFileSync(path.join(dir, 'rejected', 'jan-resent.csv.reason.txt'), 'utf8');
      expect(dupReason).toMatch(/^jan-resent\.csv \(partner mno-a\) was refused at .*\nDUPLICATE_FILE: this file was already imported for partner 'mno-a' as import \d+ \('jan\.csv\.gz'/);
      expect(fs.readFileSync(path.join(dir, 'rejected', 'broken.csv.reason.txt'), 'utf8')).toMatch(/MALFORMED_FILE: broken\.csv: .*\(line 1\)/);

      const imports = await importsOf();
      expect(imports.map((i) => i.fileName)).toEqual(['feb-rows.csv', 'jan.csv.gz']);
      const feb = imports[0];
      expect(feb).toMatchObject({ source: 'folder', records: 2, rejected: 2 });
      expect(feb.rejections.map((r) => r.lineNumber)).toEqual([3, 5]);
      expect(feb.rejections[0].reason).toMatch(/service/);
      expect(feb.rejections[1].reason).toMatch(/amount|decimal|fraction/);
    } finally {
      await Promise.all(watchers.map((w) => w.stop()));
    }
  });

  it('finishes files an interrupted attempt left in processing/, without importing anything twice', async () => {
    const mar = await mnoFile('inbox-mar', false);
    const apr = await mnoFile('inbox-apr', true);
    // mar: its import committed, then the process died before moving the file.
    await importWholesaleFile(t.db, { partnerCode: 'mno-a', input: asInput(mar), fileName: 'mar.csv', source: 'folder', actor: 'reconciliation-inbox' });
    fs.writeFileSync(path.join(dir, 'processing', 'mar.csv'), mar);
    // apr: died before its import committed.
    fs.writeFileSync(path.join(dir, 'processing', 'apr.csv.gz'), apr);
    const before = (await importsOf()).length;
    const w = startReconciliationInboxWatcher({ db: t.db, logger, inboxDir: inbox, intervalMs: POLL_MS });
    try {
      await waitFor('processing/ emptied', () => ls('processing').length === 0);
    } finally {
      await w.stop();
    }
    expect(ls('imported')).toEqual(['apr.csv.gz', 'feb-rows.csv', 'jan.csv.gz', 'mar.csv']);
    expect(ls('rejected')).not.toContain('mar.csv');
    const names = (await importsOf()).map((i) => i.fileName);
    expect(names).toHaveLength(before + 1);
    expect(names.filter((n) => n === 'mar.csv')).toHaveLength(1);
    expect(names).toContain('apr.csv.gz');
  });

  it('the monthly run takes what waits in the inbox through the same path', async () => {
    const activities = createReconciliationActivities({ db: t.db, inboxDir: inbox });
    fs.writeFileSync(path.join(dir, 'may.csv.gz'), await mnoFile('inbox-may', true));
    fs.writeFileSync(path.join(dir, 'may.csv.gz.part'), 'still being written');
    const work = await activities.reconciliationScheduledWork();
    expect(work).toEqual([{ partnerCode: 'mno-a', files: [path.join(dir, 'may.csv.gz')] }]);
    const r = await activities.reconciliationImportFile({ partnerCode: 'mno-a', path: path.join(dir, 'may.csv.gz'), actor: 'schedule' });
    expect(r).toMatchObject({ duplicate: false, rejected: 0 });
    expect(r.importId).not.toBeNull();
    expect(ls('imported')).toContain('may.csv.gz');
    // Retried after the file was moved (the activity's first attempt finished, its answer was lost): nothing happens twice.
    expect(await activities.reconciliationImportFile({ partnerCode: 'mno-a', path: path.join(dir, 'may.csv.gz'), actor: 'schedule' })).toEqual({
      importId: null, records: 0, rejected: 0, duplicate: false,
    });
    expect((await importsOf()).filter((i) => i.fileName === 'may.csv.gz')).toHaveLength(1);
  });
});
