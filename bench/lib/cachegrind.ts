// Instructions a record, counted by valgrind's cachegrind, for the benchmarks that count instead of
// timing (bench/instructions.ts, bench/canonical.ts): CPU seconds on a shared machine vary by a
// third between identical runs. A rounds script runs its work `rounds` times after two rounds that
// warm up and prints `{"recordsPerRound": n}`; the difference between 0 and 4 rounds, divided by
// the records of 4, leaves start-up and warm-up out. `--single-threaded` keeps V8's compilers and GC
// on the main thread, where cachegrind counts them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function instructions(script: string, args: readonly string[], rounds: number): Promise<{ ir: number; recordsPerRound: number }> {
  const { stdout, stderr } = await run(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--single-threaded', script, ...args, String(rounds)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const ir = /I\s+refs:\s+([\d,]+)/.exec(stderr)?.[1];
  if (ir === undefined) throw new Error(`no instruction count in valgrind's output:\n${stderr.slice(-2000)}`);
  return { ir: Number(ir.replaceAll(',', '')), recordsPerRound: (JSON.parse(stdout) as { recordsPerRound: number }).recordsPerRound };
}

/** Instructions a record of `script` (run with `args`, then the number of rounds). */
export async function instructionsPerRecord(script: string, args: readonly string[] = []): Promise<number> {
  const short = await instructions(script, args, 0);
  const long = await instructions(script, args, 4);
  return (long.ir - short.ir) / (4 * long.recordsPerRound);
}

/**
 * Exits with 0 and says so when valgrind is missing: not an error for `npm run bench`, which runs
 * every benchmark.
 */
export async function requireValgrind(benchmark: string): Promise<void> {
  try {
    await run('valgrind', ['--version']);
  } catch {
    console.error(`${benchmark}: not run, valgrind is not on PATH (Debian: apt-get install valgrind)`);
    process.exit(0);
  }
}
