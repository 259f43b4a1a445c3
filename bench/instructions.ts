// The aggregator's CPU per record as instructions, which the machine's load does not move: on a
// shared 2-core VM the CPU seconds of two identical runs differed by a third, and a change of 10%
// did not show. Runs bench/lib/aggregator-rounds.ts (the path of bench/aggregator.ts) under
// valgrind's cachegrind, with no rounds and with 4 after the 2 that warm up, and divides the
// difference by the records of 4 rounds: start-up and warm-up cancel out. Workloads: `parsed` (our
// agent's chained records with every parsed field), `chained` (chained, 8 attributes), `plain` (no
// chain: any OpenTelemetry SDK's records, the verify stage has nothing to do).
// `--single-threaded` keeps V8's compilers and GC on the main thread, where cachegrind counts them.
// The count still varies by a few percent between runs (when the compiler tiers up, when the GC
// runs): compare several. Needs valgrind (Debian: apt-get install valgrind).
// Usage: node bench/instructions.ts [runs] [workload,...] (defaults: 2, parsed,plain).
import { fileURLToPath } from 'node:url';
import { instructionsPerRecord, requireValgrind } from './lib/cachegrind.ts';

const runs = Number(process.argv[2] ?? 2);
const chosen = (process.argv[3] ?? 'parsed,plain').split(',');
const script = fileURLToPath(new URL('./lib/aggregator-rounds.ts', import.meta.url));
const described: Record<string, string> = { plain: 'plain', chained: 'chained', parsed: 'chained, parsed' };
for (const workload of chosen) {
  if (described[workload] === undefined) throw new Error(`unknown workload ${workload}: one or more of ${Object.keys(described).join(', ')}, comma-separated`);
}

await requireValgrind('bench/instructions.ts');
for (const workload of chosen) {
  for (let i = 0; i < runs; i++) {
    const perRecord = await instructionsPerRecord(script, [workload]);
    console.log(`aggregator, ${described[workload]}: ${Math.round(perRecord).toLocaleString('en')} instructions a record (gunzip to bulk body; run ${i + 1} of ${runs})`);
  }
}
