/**
 * Verifies the ledger (`npm run ledger:verify`):
 *
 *   DATABASE_URL=postgres://… npx tsx scripts/ledger-verify.ts [--seal] [--expect-head <hash>] [--json] [--limit N]
 *
 * 1. Recomputes every wallet and bucket balance from the postings and compares it with the stored
 *    balance; compares what each holds as reserved with the holds of open charging reservations;
 *    reports any balance below its floor (overspend) and any journal entry that does not balance.
 * 2. Recomputes the tamper-evidence chain (journal_seals): every sealed entry's digest, every seal's
 *    hash and the links between seals; names each entry changed, removed or added after sealing.
 *    With --expect-head, the chain must end at that hash (recorded elsewhere by the sealer's log).
 *    With --seal, seals what is not sealed yet before verifying.
 * Exits 0 when everything agrees, 1 on any difference, 2 when it could not run.
 */
import { createDatabase } from '../platform/database';
import { verifyBalances } from '../domain/ledger/ledger-verify';
import { sealJournal, verifyJournalSeals } from '../domain/ledger/journal-seal';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

async function main(): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('ledger-verify: DATABASE_URL is required\n');
    return 2;
  }
  const json = process.argv.includes('--json');
  const limit = Number(arg('--limit') ?? 100);
  const db = createDatabase(url, { applicationName: 'mvno-bss-ledger-verify', poolMax: 2 });
  try {
    if (process.argv.includes('--seal')) {
      const sealed = await sealJournal(db);
      if (!json) process.stdout.write(`sealed ${sealed.entries} entries in ${sealed.seals} seals${sealed.waited ? ' (stopped: a transaction stayed open)' : ''}\n`);
    }
    const balances = await verifyBalances(db, { limit });
    const seals = await verifyJournalSeals(db, { expectHead: arg('--expect-head'), limit });
    const ok = balances.problems.length === 0 && seals.problems.length === 0;
    if (json) {
      process.stdout.write(`${JSON.stringify({
        ok,
        balances: { wallets: balances.wallets, buckets: balances.buckets, entries: balances.entries, overspend: { bucketUnits: balances.overspend.bucketUnits.toString(), walletMicros: balances.overspend.walletMicros.toString() }, problems: balances.problems },
        seals,
      })}\n`);
    } else {
      process.stdout.write(`balances: ${balances.wallets} wallets, ${balances.buckets} buckets, ${balances.entries} journal entries checked against the postings\n`);
      for (const p of balances.problems) process.stdout.write(`  ✗ ${p.kind}: ${p.detail}\n`);
      process.stdout.write(`seals: ${seals.seals} seals over ${seals.sealedEntries} entries (${seals.unsealedEntries} not sealed yet); head ${seals.head}\n`);
      for (const p of seals.problems) process.stdout.write(`  ✗ ${p.kind}: ${p.detail}\n`);
      process.stdout.write(ok ? 'ledger OK\n' : `ledger NOT OK: ${balances.problems.length + seals.problems.length} problems\n`);
    }
    return ok ? 0 : 1;
  } finally {
    await db.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`ledger-verify: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
