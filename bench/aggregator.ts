// Aggregator benchmark: OTLP request -> ECS documents -> bulk body, on one core, Elasticsearch excluded.
// Each request is 1,000 records of a CI/auth line with the agent's resource and attributes, protobuf,
// gzip, measured in two kinds:
//   - plain: records without a chain, as any OpenTelemetry SDK sends them;
//   - chained: what the ci-audit agent sends, each record chained (seq, hash, prev_hash) and a signed
//     checkpoint after every 1,000, so that the verify stage recomputes every record's canonical text
//     and SHA-256, follows the chain and checks one Ed25519 signature per request.
// Per request, as the pipeline does it: gunzip, decode (otlp-decode.ts), the record bounds check
// (limits/record-bounds.ts), the verify stage (verify/stage.ts), mapToEcs (map/ecs.ts) and the bulk
// lines (index/bulk-line.ts, what ElasticsearchWriter.write sends), joined into the NDJSON body.
// Figures are events per CPU second (process.cpuUsage: user + system, all threads), so that other
// load on the machine weighs less than on wall-clock figures.
// Usage: node bench/aggregator.ts [records] (default 500,000). Target: >= 100,000 events/s per core.
import { gunzipSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { bulkLine } from '../aggregator/index/bulk-line.ts';
import { checkRecordBounds } from '../aggregator/limits/record-bounds.ts';
import { mapToEcs } from '../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import { VerifyStage } from '../aggregator/verify/stage.ts';
import type { VerifyResult } from '../aggregator/verify/stage.ts';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { protobufBody } from '../test/unit/aggregator/otlp-fixtures.ts';
import { chainedRequests, plainRequests } from './lib/chained-requests.ts';

const total = Number(process.argv[2] ?? 500_000);
const perRequest = 1000;
/** Requests per workload; the chained ones are one chain, replayed by a fresh verify stage. */
const requestCount = 10;
const bounds = { maxAttributes: 1000, maxValueBytes: 1024 * 1024 };
const logger = pino({ level: 'silent' });

/** One request the whole way; returns the records and the bulk body's length. */
async function handle(body: Buffer, stage: VerifyStage | undefined): Promise<{ records: number; bytes: number }> {
  const records = decodeProtobufLogs(gunzipSync(body));
  const problem = checkRecordBounds(records, bounds);
  if (problem !== undefined) throw new Error(problem);
  const verified = stage === undefined ? undefined : await stage.verify(records);
  if (verified !== undefined && verified.events.length > 0) throw new Error(`unexpected finding: ${verified.events[0]!.message}`);
  const ingested = new Date();
  const operations: string[] = [];
  for (const [i, record] of records.entries()) {
    const verdict = verified?.verdicts[i];
    const lines = bulkLine(mapToEcs(record, { namespace: 'bench', ingested, chain: verdict?.chain, checkpointVerified: verdict?.checkpointVerified }));
    operations.push(lines.action, lines.document);
  }
  return { records: records.length, bytes: `${operations.join('\n')}\n`.length };
}

interface Figures {
  events: number;
  perCpu: number;
  perWall: number;
  requestKiB: number;
  bulkKiB: number;
}

/** Runs `requests` requests round the bodies; a chained run starts a fresh verify stage at each pass over the chain. */
async function run(bodies: readonly Buffer[], requests: number, chained: boolean): Promise<Figures> {
  let stage: VerifyStage | undefined;
  let events = 0;
  let bytes = 0;
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  for (let i = 0; i < requests; i++) {
    if (chained && i % bodies.length === 0) {
      await stage?.close();
      stage = new VerifyStage({ logger, gapGraceMs: 30_000, keys });
    }
    const done = await handle(bodies[i % bodies.length]!, stage);
    events += done.records;
    bytes += done.bytes;
  }
  await stage?.close();
  const used = process.cpuUsage(cpu);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuS = (used.user + used.system) / 1e6;
  const requestKiB = bodies.reduce((sum, b) => sum + b.byteLength, 0) / bodies.length / 1024;
  return { events, perCpu: Math.round(events / cpuS), perWall: Math.round(events / wallS), requestKiB, bulkKiB: bytes / requests / 1024 };
}

const gzipped = (requests: ReadableLogRecord[][]): Buffer[] => requests.map((records) => gzipSync(protobufBody(records)));
const chained = await chainedRequests(requestCount, perRequest);
const keys = chained.keys;
const workloads = { plain: gzipped(await plainRequests(requestCount, perRequest)), chained: gzipped(chained.requests) };
const requests = Math.ceil(total / perRequest / requestCount) * requestCount;
for (const [name, bodies] of Object.entries(workloads)) {
  const chained = name === 'chained';
  await run(bodies, 2 * requestCount, chained); // warm-up: let the JIT settle
  const f = await run(bodies, requests, chained);
  console.log(`aggregator, ${name}: ${f.events} records in ${requests} requests (${Math.round(f.requestKiB)} KiB gzip protobuf each -> ${Math.round(f.bulkKiB)} KiB bulk body)`);
  console.log(`  ${f.perWall.toLocaleString('en')} events/s wall, ${f.perCpu.toLocaleString('en')} events/s per CPU second (target >= 100,000)${f.perCpu < 100_000 ? ' BELOW TARGET' : ''}`);
}
console.log(`  peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);

// Where the time goes: each stage alone, CPU microseconds per record.
for (const [name, bodies] of Object.entries(workloads)) {
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
    await stage('gunzip', (i) => gunzipSync(bodies[i]!)),
    await stage('decode', (i) => decodeProtobufLogs(raw[i]!)),
    await stage('bounds', (i) => checkRecordBounds(decoded[i]!, bounds)),
  ];
  if (name === 'chained') {
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
