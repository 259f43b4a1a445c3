// The aggregator's path (bench/lib/aggregator-path.ts) over four requests of our agent's chained
// and parsed records: two rounds to warm up, then `rounds` more, each round with a new verify stage
// (the chain starts again). Run by bench/instructions.ts under cachegrind; prints the records of a round.
// Usage: node bench/lib/aggregator-rounds.ts <rounds>
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { VerifyStage } from '../../aggregator/verify/stage.ts';
import { protobufBody } from '../../test/unit/aggregator/otlp-fixtures.ts';
import { handleRequest } from './aggregator-path.ts';
import { chainedRequests } from './chained-requests.ts';

const rounds = Number(process.argv[2] ?? 0);
const logger = pino({ level: 'silent' });
const workload = await chainedRequests(4, 1000, true);
const bodies = workload.requests.map((request) => gzipSync(protobufBody(request)));
let perRound = 0;
for (let round = 0; round < 2 + rounds; round++) {
  const stage = new VerifyStage({ logger, gapGraceMs: 30_000, keys: workload.keys });
  perRound = 0;
  for (const body of bodies) perRound += (await handleRequest(body, stage)).records;
  await stage.close();
}
console.log(JSON.stringify({ recordsPerRound: perRound }));
