/**
 * Throughput of the wholesale file generator and parser.
 *
 *   npx tsx domain/reconciliation/wholesale-file.bench.ts [--rows 1000000] [--gzip] [--fault-rate 0.01] [--keep]
 *
 * Writes a file under os.tmpdir() (synthetic events → generator with 1 % faults and 5 % clean
 * drift; the fault list streamed to JSONL), parses it twice (records only; records + COPY
 * text encoding) and prints ONE JSON line: rows, bytes, per phase wall and CPU seconds and
 * rows/s, and the peak RSS of the process (MiB). Wall-clock rates depend on what else runs on
 * the machine; rowsPerCpuSec is the steadier figure.
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

function timer() {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  return () => {
    const c = process.cpuUsage(c0);
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6 };
  };
}

function rates(rows: number, t: { seconds: number; cpuSeconds: number }) {
  return {
    seconds: round(t.seconds),
    cpuSeconds: round(t.cpuSeconds),
    rowsPerSec: Math.round(rows / t.seconds),
    rowsPerCpuSec: Math.round(rows / t.cpuSeconds),
  };
}

async function parsePass(path: string, encode: boolean) {
  const stop = timer();
  const parse = parseWholesaleFile(createReadStream(path, { highWaterMark: 256 * 1024 }));
  let copyBytes = 0;
  for await (const batch of parse.batches()) {
    if (!encode) continue;
    let text = '';
    for (const item of batch) if (item.kind === 'record') text += encodeCopyRow(item);
    copyBytes += Buffer.byteLength(text);
  }
  const t = stop();
  const s = parse.summary();
  return {
    ...rates(s.records + s.rejected, t),
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
    const stop = timer();
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
    const genTime = stop();
    const bytes = (await stat(file)).size;
    const parse = await parsePass(file, false);
    const parseAndCopy = await parsePass(file, true);
    const faults = Object.values(gen.faultCounts).reduce((a, b) => a + b, 0);
    console.log(
      JSON.stringify({
        rows: gen.rowsWritten,
        bytes,
        gzip,
        generate: { ...rates(gen.rowsWritten, genTime), faults },
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
