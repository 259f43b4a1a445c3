// The aggregator's path (bench/lib/aggregator-path.ts) over four requests of 1,000 records: two
// rounds to warm up, then `rounds` more. The workload is one of bench/aggregator.ts's: `plain`
// (records as any OpenTelemetry SDK sends them, no verify work), `chained` or `parsed` (our agent's
// chained records, with every field the sshd parser adds); a chained round has a new verify stage
// (the chain starts again). Run by bench/instructions.ts under cachegrind; prints the records of a round.
// Usage: node bench/lib/aggregator-rounds.ts <plain|chained|parsed> <rounds>
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { VerifyStage } from '../../aggregator/verify/stage.ts';
import type { KeySource } from '../../aggregator/verify/stage.ts';
import { protobufBody } from '../../test/unit/aggregator/otlp-fixtures.ts';
import { handleRequest } from './aggregator-path.ts';
import { chainedRequests, plainRequests } from './chained-requests.ts';

const workloads = ['plain', 'chained', 'parsed'];
const workload = process.argv[2] ?? '';
if (!workloads.includes(workload)) throw new Error(`usage: aggregator-rounds.ts <${workloads.join('|')}> <rounds>`);
const rounds = Number(process.argv[3] ?? 0);
const logger = pino({ level: 'silent' });
const { requests, keys }: { requests: Awaited<ReturnType<typeof plainRequests>>; keys?: KeySource } =
  workload === 'plain' ? { requests: await plainRequests(4, 1000) } : await chainedRequests(4, 1000, workload === 'parsed');
const bodies = requests.map((request) => gzipSync(protobufBody(request)));
let perRound = 0;
for (let round = 0; round < 2 + rounds; round++) {
  const stage = keys === undefined ? undefined : new VerifyStage({ logger, gapGraceMs: 30_000, keys });
  perRound = 0;
  for (const body of bodies) perRound += (await handleRequest(body, stage)).records;
  await stage?.close();
}
console.log(JSON.stringify({ recordsPerRound: perRound }));
