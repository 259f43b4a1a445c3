// Aggregator benchmark: OTLP request -> ECS documents -> bulk body, on one core, Elasticsearch excluded.
// Each request is 1,000 records of a CI/auth line with the agent's resource and attributes, protobuf,
// gzip, measured in two kinds:
//   - plain: records without a chain, as any OpenTelemetry SDK sends them;
//   - chained: what the ci-audit agent sends, each record chained (seq, hash, prev_hash) and a signed
//     checkpoint after every 1,000, so that the verify stage recomputes every record's canonical text
//     and SHA-256, follows the chain and checks one Ed25519 signature per request;
//   - chained, parsed: the same with every field the agent's sshd parser adds (29 attributes a record,
//     not 8), which is what `ci-audit agent run` sends for these lines and what bench/e2e.ts indexes:
//     its documents are twice as large, and it costs the aggregator about twice as much per record.
// Per request, as the pipeline does it: gunzip (receiver/body.ts), decode (otlp-decode.ts), the record
// bounds check (limits/record-bounds.ts), the verify stage (verify/stage.ts), mapToEcs (map/ecs.ts),
// the bulk lines (index/bulk-line.ts) and the NDJSON body's bytes (bulkBody, what ElasticsearchWriter sends).
// Figures are events per CPU second (process.cpuUsage: user + system, all threads), so that other
// load on the machine weighs less than on wall-clock figures, of the median pass over the requests.
// Usage: node bench/aggregator.ts [records] (default 500,000). Target: >= 100,000 events/s per core.
import { gunzipSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { bulkLine } from '../aggregator/index/bulk-line.ts';
import { decodeBody } from '../aggregator/receiver/body.ts';
import { checkRecordBounds } from '../aggregator/limits/record-bounds.ts';
import { mapToEcs } from '../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import { VerifyStage } from '../aggregator/verify/stage.ts';
import type { KeySource, VerifyResult } from '../aggregator/verify/stage.ts';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { protobufBody } from '../test/unit/aggregator/otlp-fixtures.ts';
import { bounds, handleRequest, maxDecompressedBytes } from './lib/aggregator-path.ts';
import { chainedRequests, plainRequests } from './lib/chained-requests.ts';

const total = Number(process.argv[2] ?? 500_000);
const perRequest = 1000;
/** Requests per workload; the chained ones are one chain, replayed by a fresh verify stage. */
const requestCount = 10;
const logger = pino({ level: 'silent' });

interface Figures {
  events: number;
  /** Events per CPU second: the median pass, and the slowest and fastest. */
  perCpu: number;
  perCpuRange: [number, number];
  perWall: number;
  requestKiB: number;
  bulkKiB: number;
}

/**
 * Runs `requests` requests round the bodies, in passes over them; a chained pass starts a fresh
 * verify stage, as the chain starts again. The figure is the median pass: on a shared machine a
 * single long run moved by a third from one run to the next, mostly with what else ran meanwhile.
 */
async function run(bodies: readonly Buffer[], requests: number, keys: KeySource | undefined): Promise<Figures> {
  let events = 0;
  let bytes = 0;
  const passes: number[] = [];
  const start = process.hrtime.bigint();
  for (let done = 0; done < requests; done += bodies.length) {
    const stage = keys === undefined ? undefined : new VerifyStage({ logger, gapGraceMs: 30_000, keys });
    let passEvents = 0;
    const cpu = process.cpuUsage();
    for (const body of bodies) {
      const handled = await handleRequest(body, stage);
      passEvents += handled.records;
      bytes += handled.bytes;
    }
    await stage?.close();
    const used = process.cpuUsage(cpu);
    passes.push(passEvents / ((used.user + used.system) / 1e6));
    events += passEvents;
  }
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const sorted = passes.toSorted((a, b) => a - b);
  const requestKiB = bodies.reduce((sum, b) => sum + b.byteLength, 0) / bodies.length / 1024;
  return {
    events,
    perCpu: Math.round(sorted[Math.floor(sorted.length / 2)]!),
    perCpuRange: [Math.round(sorted[0]!), Math.round(sorted.at(-1)!)],
    perWall: Math.round(events / wallS),
    requestKiB,
    bulkKiB: bytes / requests / 1024,
  };
}

const gzipped = (requests: ReadableLogRecord[][]): Buffer[] => requests.map((records) => gzipSync(protobufBody(records)));
const chained = await chainedRequests(requestCount, perRequest);
const parsed = await chainedRequests(requestCount, perRequest, true);
const workloads: Array<{ name: string; bodies: Buffer[]; keys?: KeySource }> = [
  { name: 'plain', bodies: gzipped(await plainRequests(requestCount, perRequest)) },
  { name: 'chained', bodies: gzipped(chained.requests), keys: chained.keys },
  { name: 'chained, parsed', bodies: gzipped(parsed.requests), keys: parsed.keys },
];
const requests = Math.ceil(total / perRequest / requestCount) * requestCount;
for (const { name, bodies, keys } of workloads) {
  await run(bodies, 2 * requestCount, keys); // warm-up: let the JIT settle
  const f = await run(bodies, requests, keys);
  console.log(`aggregator, ${name}: ${f.events} records in ${requests} requests (${Math.round(f.requestKiB)} KiB gzip protobuf each -> ${Math.round(f.bulkKiB)} KiB bulk body)`);
  const [slowest, fastest] = f.perCpuRange;
  console.log(
    `  ${f.perWall.toLocaleString('en')} events/s wall, ${f.perCpu.toLocaleString('en')} events/s per CPU second, median of ${requests / bodies.length} passes ` +
      `(${slowest.toLocaleString('en')} to ${fastest.toLocaleString('en')}; target >= 100,000)${f.perCpu < 100_000 ? ' BELOW TARGET' : ''}`,
  );
}
console.log(`  peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);

// Where the time goes: each stage alone, CPU microseconds per record.
for (const { name, bodies, keys } of workloads) {
  const raw = bodies.map((b) => gunzipSync(b));
  const decoded = raw.map((b) => decodeProtobufLogs(b));
  const ingested = new Date();
  const rounds = Math.max(2, Math.ceil(requests / 5 / bodies.length));
  const stage = async (label: string, work: (i: number) => unknown): Promise<string> => {
    const before = process.cpuUsage();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < bodies.length; i++) await work(i);
    const spent = process.cpuUsage(before);
    return `${label} ${((spent.user + spent.system) / (rounds * bodies.length * perRequest)).toFixed(2)}`;
  };
  let verifier = new VerifyStage({ logger, gapGraceMs: 30_000, keys });
  const verdicts: VerifyResult[] = [];
  for (const records of decoded) verdicts.push(await verifier.verify(records)); // in order, as one agent sends them
  const mappedAll = decoded.map((records, n) => records.map((r, i) => mapToEcs(r, { namespace: 'bench', ingested, chain: verdicts[n]!.verdicts[i]!.chain, checkpointVerified: verdicts[n]!.verdicts[i]!.checkpointVerified })));
  const figures = [
    await stage('gunzip', (i) => decodeBody(bodies[i]!, 'gzip', maxDecompressedBytes)),
    await stage('decode', (i) => decodeProtobufLogs(raw[i]!)),
    await stage('bounds', (i) => checkRecordBounds(decoded[i]!, bounds)),
  ];
  if (keys !== undefined) {
    figures.push(await stage('verify', async (i) => {
      if (i === 0) {
        await verifier.close();
        verifier = new VerifyStage({ logger, gapGraceMs: 30_000, keys });
      }
      await verifier.verify(decoded[i]!);
    }));
  }
  figures.push(await stage('map', (i) => decoded[i]!.map((r, j) => mapToEcs(r, { namespace: 'bench', ingested, chain: verdicts[i]!.verdicts[j]!.chain, checkpointVerified: verdicts[i]!.verdicts[j]!.checkpointVerified }))));
  figures.push(await stage('bulk lines', (i) => mappedAll[i]!.map(bulkLine)));
  await verifier.close();
  console.log(`  ${name}, µs CPU per record: ${figures.join(', ')}`);
}
