/** CPU accounting of the processes a benchmark starts (Linux /proc; 0 elsewhere). */
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';

/** CPU time (ms) of one process (utime + stime; with `children`, what its exited children used too). */
export function processCpuMs(pid: number, children = false): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) * 10;
  } catch {
    return 0;
  }
}

/** Live children of `parent` whose command line matches. */
export function childPids(parent: number, match: RegExp): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
      if (match.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))) out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** CPU (ms) of a PostgreSQL server: the postmaster, its live children and the exited ones. */
export function pgCpuMs(postmaster: number | undefined): number {
  if (!postmaster) return 0;
  return processCpuMs(postmaster, true) + childPids(postmaster, /./).reduce((a, pid) => a + processCpuMs(pid), 0);
}

/** The postmaster's pid of the server `db` talks to, when it runs on this machine and we may read its data directory. */
export async function postmasterPid(db: Knex): Promise<number | undefined> {
  return db.raw('SHOW data_directory')
    .then((r: { rows: { data_directory: string }[] }) => Number(fs.readFileSync(path.join(r.rows[0].data_directory, 'postmaster.pid'), 'utf8').split('\n')[0]))
    .catch(() => undefined);
}

/** CPU seconds the whole machine spent busy since boot (Linux /proc/stat; 0 elsewhere). */
export function machineBusySeconds(): number {
  try {
    const [, ...ticks] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const idle = ticks[3] + ticks[4];
    return (ticks.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / 100;
  } catch {
    return 0;
  }
}
