// Aggregator benchmark: OTLP request -> ECS documents -> bulk body, on one core, Elasticsearch excluded.
// Each request is what the agent sends: 1,000 records of a CI/auth line with the agent's resource and
// attributes, protobuf, gzip. Per request: gunzip, decode (otlp-decode.ts), the record bounds check
// (limits/record-bounds.ts), mapToEcs (map/ecs.ts), and the bulk lines serialized as
// ElasticsearchWriter.write does, joined into the NDJSON body the client sends.
// Usage: node bench/aggregator.ts [records] (default 500,000). Target: >= 100,000 events/s per core.
import { gunzipSync, gzipSync } from 'node:zlib';
import { checkRecordBounds } from '../aggregator/limits/record-bounds.ts';
import { mapToEcs } from '../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import { agentAttributes, agentResource, emitRecords, protobufBody } from '../test/unit/aggregator/otlp-fixtures.ts';

const total = Number(process.argv[2] ?? 500_000);
const perRequest = 1000;
const bounds = { maxAttributes: 1000, maxValueBytes: 1024 * 1024 };

async function request(n: number): Promise<Buffer> {
  const records = await emitRecords({
    resource: agentResource('bench-agent-01', 'runner-01'),
    scope: { name: 'ci-audit.file', version: '0.1.0' },
    records: Array.from({ length: perRequest }, (_, i) => {
      const id = n * perRequest + i;
      return {
        timestamp: [1795688521 + id, 482113789] as [number, number],
        severityNumber: 9,
        body: `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (id % 10000)} ssh2: ED25519 SHA256:Xk3b${id}`,
        attributes: { ...agentAttributes('auth', `auth-${id}`, '/var/log/auth.log', 120 * id), 'user.name': 'deploy', 'source.ip': '203.0.113.17' },
      };
    }),
  });
  return gzipSync(protobufBody(records));
}

function handle(body: Buffer, ingested: Date): number {
  const records = decodeProtobufLogs(gunzipSync(body));
  const problem = checkRecordBounds(records, bounds);
  if (problem !== undefined) throw new Error(problem);
  const operations: string[] = [];
  for (const record of records) {
    const mapped = mapToEcs(record, { namespace: 'bench', ingested });
    operations.push(JSON.stringify({ create: mapped.id === undefined ? { _index: mapped.dataStream } : { _index: mapped.dataStream, _id: mapped.id } }));
    operations.push(JSON.stringify(mapped.document));
  }
  return `${operations.join('\n')}\n`.length;
}

const bodies = await Promise.all(Array.from({ length: 10 }, (_, i) => request(i)));
const requestBytes = bodies.reduce((sum, b) => sum + b.byteLength, 0) / bodies.length;
// Warm-up: let the JIT settle before measuring.
for (let i = 0; i < 20; i++) handle(bodies[i % bodies.length]!, new Date());

const requests = Math.ceil(total / perRequest);
let bulkBytes = 0;
const start = process.hrtime.bigint();
const cpu = process.cpuUsage();
for (let i = 0; i < requests; i++) bulkBytes += handle(bodies[i % bodies.length]!, new Date());
const used = process.cpuUsage(cpu);
const wallS = Number(process.hrtime.bigint() - start) / 1e9;
const cpuS = (used.user + used.system) / 1e6;
const events = requests * perRequest;
const perCpu = Math.round(events / cpuS);
console.log(`aggregator: ${events} records in ${requests} requests (${Math.round(requestBytes / 1024)} KiB gzip protobuf each -> ${Math.round(bulkBytes / requests / 1024)} KiB bulk body)`);
console.log(`  ${Math.round(events / wallS).toLocaleString('en')} events/s wall, ${perCpu.toLocaleString('en')} events/s per CPU second (target >= 100,000)`);
console.log(`  peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
if (perCpu < 100_000) console.log('  BELOW TARGET');

// Where the time goes: each stage alone, CPU microseconds per record.
const raw = bodies.map((b) => gunzipSync(b));
const decoded = raw.map((b) => decodeProtobufLogs(b));
const ingested = new Date();
const mappedAll = decoded.map((records) => records.map((r) => mapToEcs(r, { namespace: 'bench', ingested })));
const stage = (name: string, run: (i: number) => void): string => {
  const rounds = Math.max(10, Math.ceil(requests / 5));
  const before = process.cpuUsage();
  for (let i = 0; i < rounds; i++) run(i % bodies.length);
  const spent = process.cpuUsage(before);
  return `${name} ${(((spent.user + spent.system) / rounds / perRequest)).toFixed(2)}`;
};
console.log(`  µs CPU per record: ${[
  stage('gunzip', (i) => gunzipSync(bodies[i]!)),
  stage('decode', (i) => decodeProtobufLogs(raw[i]!)),
  stage('bounds', (i) => checkRecordBounds(decoded[i]!, bounds)),
  stage('map', (i) => decoded[i]!.map((r) => mapToEcs(r, { namespace: 'bench', ingested }))),
  stage('serialize', (i) => mappedAll[i]!.map((m) => JSON.stringify(m.document))),
].join(', ')}`);
