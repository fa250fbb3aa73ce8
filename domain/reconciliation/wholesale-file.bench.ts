/**
 * Throughput of the wholesale file generator and parser.
 *
 *   npx tsx domain/reconciliation/wholesale-file.bench.ts [--rows 1000000] [--gzip] [--fault-rate 0.01] [--keep]
 *
 * Writes a file under os.tmpdir(), parses it twice (records only; records + COPY encoding)
 * and prints ONE JSON line: rows, bytes, seconds and rows/s per phase, peak RSS (MiB).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE_WHOLESALE_RATE_CARD, syntheticRatedUsageEvents, writeWholesaleFile } from './wholesale-file.generator';
import { encodeCopyRow, parseWholesaleFile } from './wholesale-file.parser';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : (process.argv[i + 1] ?? '');
}

async function parsePass(path: string, encode: boolean) {
  const t0 = process.hrtime.bigint();
  const parse = parseWholesaleFile(createReadStream(path, { highWaterMark: 256 * 1024 }));
  let copyBytes = 0;
  for await (const batch of parse.batches()) {
    if (!encode) continue;
    let text = '';
    for (const item of batch) if (item.kind === 'record') text += encodeCopyRow(item);
    copyBytes += Buffer.byteLength(text);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const s = parse.summary();
  return {
    seconds: round(seconds),
    rowsPerSec: Math.round((s.records + s.rejected) / seconds),
    records: s.records,
    rejected: s.rejected,
    ...(encode ? { copyBytes } : {}),
    contentSha256: s.contentSha256.slice(0, 16),
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

async function main() {
  const rows = Number(arg('rows') ?? 1_000_000);
  const gzip = process.argv.includes('--gzip');
  const faultRate = Number(arg('fault-rate') ?? 0.01);
  const dir = await mkdtemp(join(tmpdir(), 'wholesale-bench-'));
  const file = join(dir, gzip ? 'wholesale.csv.gz' : 'wholesale.csv');
  try {
    const t0 = process.hrtime.bigint();
    const gen = await writeWholesaleFile(
      file,
      syntheticRatedUsageEvents({ count: rows, seed: 42, subscribers: Math.max(1, Math.floor(rows / 20)) }),
      SAMPLE_WHOLESALE_RATE_CARD,
      {
        seed: 7,
        faultRate,
        cleanDriftRate: 0.05,
        collectFaults: false,
        faultLogPath: join(dir, 'faults.jsonl'),
        gzip,
      },
    );
    const genSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const bytes = (await stat(file)).size;
    const parse = await parsePass(file, false);
    const parseAndCopy = await parsePass(file, true);
    const faults = Object.values(gen.faultCounts).reduce((a, b) => a + b, 0);
    console.log(
      JSON.stringify({
        rows: gen.rowsWritten,
        bytes,
        gzip,
        generate: { seconds: round(genSeconds), rowsPerSec: Math.round(gen.rowsWritten / genSeconds), faults },
        parse,
        parseAndCopyEncode: parseAndCopy,
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        node: process.version,
      }),
    );
  } finally {
    if (!process.argv.includes('--keep')) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
