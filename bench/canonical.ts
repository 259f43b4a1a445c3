// The canonical writer's cost in instructions a record, on the agent (chainHashOfRecord over parsed
// sshd records) and on the aggregator (the verify stage's checkRecord over the same records
// decoded): bench/lib/canonical-rounds.ts under valgrind's cachegrind with no rounds and with 4
// after the 2 that warm up, the difference divided by the records of 4 rounds, as
// bench/instructions.ts measures the aggregator's whole path; and the agent's canonical bytes
// without the hash, the writer alone. Needs valgrind.
// Usage: node bench/canonical.ts [runs] (default 2).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const runs = Number(process.argv[2] ?? 2);
const script = fileURLToPath(new URL('./lib/canonical-rounds.ts', import.meta.url));

async function instructions(mode: string, rounds: number): Promise<{ ir: number; recordsPerRound: number }> {
  const { stdout, stderr } = await run(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null', process.execPath, '--single-threaded', script, mode, String(rounds)],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const ir = /I\s+refs:\s+([\d,]+)/.exec(stderr)?.[1];
  if (ir === undefined) throw new Error(`no instruction count in valgrind's output:\n${stderr.slice(-2000)}`);
  return { ir: Number(ir.replaceAll(',', '')), recordsPerRound: (JSON.parse(stdout) as { recordsPerRound: number }).recordsPerRound };
}

try {
  await run('valgrind', ['--version']);
} catch {
  console.error('bench/canonical.ts: not run, valgrind is not on PATH (Debian: apt-get install valgrind)');
  process.exit(0);
}
const labels: Record<string, string> = {
  'agent-bytes': 'agent, canonicalRecordBytes alone',
  agent: 'agent, chainHashOfRecord',
  aggregator: 'aggregator, checkRecord',
};
for (let i = 0; i < runs; i++) {
  for (const mode of ['agent-bytes', 'agent', 'aggregator']) {
    const [short, long] = [await instructions(mode, 0), await instructions(mode, 4)];
    const perRecord = (long.ir - short.ir) / (4 * long.recordsPerRound);
    console.log(`${labels[mode]}: ${Math.round(perRecord).toLocaleString('en')} instructions a record (parsed sshd line; run ${i + 1} of ${runs})`);
  }
}
