// The aggregator's verify stage, per record, on one core, Elasticsearch excluded: what checking a
// chained request costs on top of decoding and mapping it. Each request is what the agent sends:
// 1,000 chained records of one agent (a CI/auth line with the agent's resource and attributes,
// decoded from protobuf) plus one signed checkpoint (the agent's default: one per 1,000 records).
// Measured: VerifyStage.verify alone (canonical form, SHA-256, continuity, one Ed25519 verify),
// and decode -> verify -> map against decode -> map of the same records.
// Usage: node bench/aggregator-verify.ts [records] (default 200,000).
import pino from 'pino';
import { mapToEcs } from '../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import { VerifyStage } from '../aggregator/verify/stage.ts';
import { protobufBody } from '../test/unit/aggregator/otlp-fixtures.ts';
import { chainedRequests } from './lib/chained-requests.ts';

const total = Number(process.argv[2] ?? 200_000);
const perRequest = 1000;
const requestsPerChain = 10;
const chained = await chainedRequests(requestsPerChain, perRequest);
const keys = chained.keys;
const requests = chained.requests.map((records) => decodeProtobufLogs(protobufBody(records)));
const logger = pino({ level: 'silent' });
const ingested = new Date();

/** Runs `rounds` whole chains through a fresh stage each (every record takes the full path); CPU µs per record. */
async function measure(rounds: number, withVerify: boolean, withMap: boolean): Promise<number> {
  const before = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    const stage = new VerifyStage({ logger, gapGraceMs: 30_000, keys });
    for (const records of requests) {
      const verified = withVerify ? await stage.verify(records) : undefined;
      if (verified !== undefined && verified.events.length > 0) throw new Error(`unexpected finding: ${verified.events[0]!.message}`);
      if (withMap) {
        for (const [i, record] of records.entries()) {
          const verdict = verified?.verdicts[i];
          mapToEcs(record, { namespace: 'bench', ingested, chain: verdict?.chain, checkpointVerified: verdict?.checkpointVerified });
        }
      }
    }
    await stage.close();
  }
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / (rounds * requestsPerChain * (perRequest + 1));
}

const rounds = Math.max(2, Math.ceil(total / (requestsPerChain * perRequest)));
await measure(2, true, true); // warm-up: let the JIT settle
const verifyOnly = await measure(rounds, true, false);
const mapOnly = await measure(rounds, false, true);
const both = await measure(rounds, true, true);
const records = rounds * requestsPerChain * (perRequest + 1);
console.log(`aggregator verify stage: ${records.toLocaleString('en')} records (chained, one signed checkpoint per ${perRequest})`);
console.log(`  verify alone: ${verifyOnly.toFixed(2)} µs CPU per record (${Math.round(1e6 / verifyOnly).toLocaleString('en')} records/s per core)`);
console.log(`  map alone: ${mapOnly.toFixed(2)} µs, verify + map: ${both.toFixed(2)} µs per record (+${(((both - mapOnly) / mapOnly) * 100).toFixed(0)} %)`);
console.log(`  peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
