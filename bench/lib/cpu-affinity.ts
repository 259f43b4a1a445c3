// CPU affinity for the end-to-end benchmarks: Elasticsearch on a core of its own and ci-audit on the
// others, as in production, where the cluster runs on machines of its own and the agent's and
// aggregator's CPU does not take from its indexing. Node.js has no sched_setaffinity; util-linux's
// taskset sets it for every thread of a process (-a), and threads and processes started later inherit it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** The processes of a process group (Elasticsearch's launcher leads the group of the whole cluster). */
export function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command's closing parenthesis: state, ppid, pgrp, ...
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) pids.push(Number(entry));
    } catch {
      // exited while listed
    }
  }
  return pids;
}

/** Restricts every thread of `pid` to `cpus` (taskset's list form, e.g. "0" or "1-3"). */
export function pinToCpus(pid: number, cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (result.error !== undefined) throw new Error(`taskset (util-linux) is needed to pin process ${pid} to CPUs ${cpus}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`taskset could not pin process ${pid} to CPUs ${cpus}: ${result.stderr.trim()}`);
}

/** CPU 0 for Elasticsearch, the rest for ci-audit and the loader; needs at least two. */
export function splitCpus(): { elasticsearch: string; pipeline: string } {
  const n = availableParallelism();
  if (n < 2) throw new Error(`--isolate needs at least 2 CPUs (this machine offers ${n})`);
  return { elasticsearch: '0', pipeline: n === 2 ? '1' : `1-${n - 1}` };
}
