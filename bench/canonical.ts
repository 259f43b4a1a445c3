// The canonical writer's cost in instructions a record, on the agent (chainHashOfRecord over parsed
// sshd records) and on the aggregator (the verify stage's checkRecord over the same records
// decoded): bench/lib/canonical-rounds.ts under valgrind's cachegrind with no rounds and with 4
// after the 2 that warm up, the difference divided by the records of 4 rounds, as
// bench/instructions.ts measures the aggregator's whole path; and the agent's canonical bytes
// without the hash, the writer alone. Needs valgrind.
// Usage: node bench/canonical.ts [runs] (default 2).
import { fileURLToPath } from 'node:url';
import { instructionsPerRecord, requireValgrind } from './lib/cachegrind.ts';

const runs = Number(process.argv[2] ?? 2);
const script = fileURLToPath(new URL('./lib/canonical-rounds.ts', import.meta.url));

await requireValgrind('bench/canonical.ts');
const labels: Record<string, string> = {
  'agent-bytes': 'agent, canonicalRecordBytes alone',
  agent: 'agent, chainHashOfRecord',
  aggregator: 'aggregator, checkRecord',
};
for (let i = 0; i < runs; i++) {
  for (const mode of ['agent-bytes', 'agent', 'aggregator']) {
    const perRecord = await instructionsPerRecord(script, [mode]);
    console.log(`${labels[mode]}: ${Math.round(perRecord).toLocaleString('en')} instructions a record (parsed sshd line; run ${i + 1} of ${runs})`);
  }
}
