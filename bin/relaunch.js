// How bin/ci-audit.js runs: every command with the compile cache on, and the agent under Node.js
// options that bound its memory. Those options must be in place when Node.js starts (V8 sizes its
// heap then), so the agent replaces itself, once, by the same command with them (process.execve:
// same pid, same file descriptors, same signal handling; the service manager sees no difference).
// bench/tail.ts relaunches itself the same way, so that it measures what the agent runs.
// docs/operations.md#memory says why each setting is there and what it is worth.
import { mkdirSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * - `--max-semi-space-size=4`: the young generation stops growing at 2 × 4 MB; left to itself V8
 *   grows it to 2 × 32 MB at full speed, for little less GC time. Reading a file in the page cache,
 *   a record lives for less allocation than that and dies young. (At 4 MB chained records outlived
 *   it as long as their canonical text was built as strings; 8 MB was the setting then.)
 * - `--no-allocation-site-pretenuring`: records wait in the export queue long enough for V8 to take
 *   their allocation sites for long-lived ones and allocate them straight in the old generation,
 *   where, once exported, they are garbage until a full GC: tens of MB per million lines.
 * - `--heap-growing-percent=100`: a full GC once the old generation is twice what the last one left
 *   alive, where V8 lets it grow to three or four times that. Shipping to an aggregator, records
 *   outlive the young generation after all (a batch is held until its answer comes), and with them
 *   the request buffers they are encoded into: both were garbage waiting for a full GC, 60 to 80 MB
 *   of the agent's peak. A few more full GCs cost about 2 µs a line.
 * - `--no-concurrent-recompilation`: V8's optimizing compiler runs on the main thread instead of a
 *   helper thread. Its working memory comes from malloc; the main thread's arena reuses what it
 *   freed, where a helper thread's arena kept it: 4 to 5 MB of the peak in bench/tail.ts, about
 *   20 MB in bench/ship.ts --agent. The CPU time is the same, spent on the main thread.
 */
export const agentNodeOptions = [
  '--max-semi-space-size=4',
  '--no-allocation-site-pretenuring',
  '--heap-growing-percent=100',
  '--no-concurrent-recompilation',
];

/**
 * - `MALLOC_TRIM_THRESHOLD_=131072`: glibc's malloc gives memory freed at the top of its heap back
 *   once more than 128 KiB are free there, as it does at first; left to itself it raises that
 *   threshold (up to 64 MB) each time a large block is freed, and memory used once (compiler
 *   zones, I/O buffers) stays in the process: 2 to 3 MB of the peak in bench/tail.ts. C libraries
 *   other than glibc ignore it.
 */
export const agentEnvironment = { MALLOC_TRIM_THRESHOLD_: '131072' };

/** The user's cache folder for compiled code; never a shared one such as /tmp. */
function compileCacheDir() {
  const parent = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ci-audit');
  const dir = join(parent, 'node-compile-cache');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Another user's folder, or one others can write to (or swap): its entries would run as this process.
    for (const stats of [statSync(parent), statSync(dir)]) if (stats.uid !== process.getuid?.() || (stats.mode & 0o022) !== 0) return undefined;
    return dir;
  } catch {
    return undefined; // no home folder (a system account): run without the cache
  }
}

/**
 * Turns the compile cache on and, for `options` the process does not run with yet or variables of
 * `environment` it lacks, replaces it by `node <options> <script> <args>` with those variables and
 * the cache on from its start. Options the user chose otherwise (one of the same name in
 * NODE_OPTIONS) and variables already set are left as they are; NODE_COMPILE_CACHE or
 * NODE_DISABLE_COMPILE_CACHE, if set, decide about the cache. Where the process cannot be replaced
 * (process.execve is missing on Windows and before Node.js 22.15, or a seccomp filter denies it),
 * it runs on without the options. Returns only when the process was not replaced.
 *
 * The compile cache keeps the compiled modules, and the TypeScript already stripped of its types,
 * between runs: without it every start strips every source file's types, which loads a WebAssembly
 * compiler that then stays in memory for the life of the process (about 20 MB).
 */
export function relaunch(options, environment = {}) {
  const userOptions = process.env.NODE_OPTIONS ?? '';
  const missing = options.filter((o) => {
    const name = o.split('=')[0];
    return !process.execArgv.some((a) => a.split('=')[0] === name) && !userOptions.includes(name);
  });
  const missingEnv = Object.entries(environment).filter(([name]) => process.env[name] === undefined);
  const userCache = process.env.NODE_COMPILE_CACHE !== undefined || process.env.NODE_DISABLE_COMPILE_CACHE !== undefined;
  const cacheDir = userCache ? undefined : compileCacheDir();
  if (missing.length + missingEnv.length > 0 && typeof process.execve === 'function' && process.platform !== 'win32') {
    const env = { ...process.env, ...Object.fromEntries(missingEnv), ...(cacheDir === undefined ? {} : { NODE_COMPILE_CACHE: cacheDir }) };
    try {
      process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], env);
    } catch {
      // Not replaced: run on as we are.
    }
  }
  if (cacheDir !== undefined) enableCompileCache(cacheDir);
}
