// The aggregator's CPU per record as instructions, which the machine's load does not move: on a
// shared 2-core VM the CPU seconds of two identical runs differed by a third, and a change of 10%
// did not show. Runs bench/lib/aggregator-rounds.ts (the path of bench/aggregator.ts, chained and
// parsed records) under valgrind's cachegrind, with no rounds and with 4 after the 2 that warm up,
// and divides the difference by the records of 4 rounds: start-up and warm-up cancel out.
// `--single-threaded` keeps V8's compilers and GC on the main thread, where cachegrind counts them.
// The count still varies by a few percent between runs (when the compiler tiers up, when the GC
// runs): compare several. Needs valgrind (Debian: apt-get install valgrind).
// Usage: node bench/instructions.ts [runs] (default 2).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const runs = Number(process.argv[2] ?? 2);
const script = fileURLToPath(new URL('./lib/aggregator-rounds.ts', import.meta.url));

async function instructions(rounds: number): Promise<{ ir: number; recordsPerRound: number }> {
  const { stdout, stderr } = await run(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--single-threaded', script, String(rounds)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const ir = /I\s+refs:\s+([\d,]+)/.exec(stderr)?.[1];
  if (ir === undefined) throw new Error(`no instruction count in valgrind's output:\n${stderr.slice(-2000)}`);
  return { ir: Number(ir.replaceAll(',', '')), recordsPerRound: (JSON.parse(stdout) as { recordsPerRound: number }).recordsPerRound };
}

try {
  await run('valgrind', ['--version']);
} catch {
  // Not an error for `npm run bench`, which runs every benchmark: said, and nothing measured.
  console.error('bench/instructions.ts: not run, valgrind is not on PATH (Debian: apt-get install valgrind)');
  process.exit(0);
}
for (let i = 0; i < runs; i++) {
  const [short, long] = [await instructions(0), await instructions(4)];
  const perRecord = (long.ir - short.ir) / (4 * long.recordsPerRound);
  console.log(`aggregator, chained, parsed: ${Math.round(perRecord).toLocaleString('en')} instructions a record (gunzip to bulk body; run ${i + 1} of ${runs})`);
}
