// The agent's OTLP request encoder (agent/sinks/otlp-protobuf-encode.ts) against the one it
// replaced, otlp-transformer's ProtobufLogsSerializer: CPU microseconds per record to encode batches
// of 512 records (the agent's batch) shaped as the agent sends a parsed sshd line (its body, the 29
// attributes of bench/lib/chained-requests.ts's parsed line and the chain's three, the agent's resource). Each encoder runs
// three rounds, interleaved; the figure is the median round, with the spread of the three. The
// third row is the agent's own path: each record encoded once into a slab as it enters the batch
// (encodeLogRecord), then the request spliced from those bytes. The last two rows are the
// exporter's request body with each codec at its default level, the encoding included.
// With --instructions, instead: the agent's own path in instructions a record, which the machine's
// load does not move (bench/lib/encode-rounds.ts under valgrind's cachegrind, as bench/canonical.ts
// counts the canonical writer's).
// Usage: node bench/encode.ts [records] (default 200,000 per round); node bench/encode.ts --instructions [runs] (default 2).
import { fileURLToPath } from 'node:url';
import type { Attributes } from '@opentelemetry/api';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { agentResource } from '../agent/resource.ts';
import { defaultCompressionLevel } from '../agent/sinks/compression.ts';
import { requestBody } from '../agent/sinks/otlp-http-exporter.ts';
import { encodeLogRecord, encodeLogsRequest } from '../agent/sinks/otlp-protobuf-encode.ts';
import { sshdLine } from './lib/chained-requests.ts';
import { instructionsPerRecord, requireValgrind } from './lib/cachegrind.ts';

if (process.argv[2] === '--instructions') {
  const runs = Number(process.argv[3] ?? 2);
  const script = fileURLToPath(new URL('./lib/encode-rounds.ts', import.meta.url));
  await requireValgrind('bench/encode.ts --instructions');
  const labels: Record<string, string> = { record: 'encodeLogRecord', request: 'encodeLogRecord, then the request' };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['record', 'request']) {
      const perRecord = await instructionsPerRecord(script, [mode]);
      console.log(`${labels[mode]}: ${Math.round(perRecord).toLocaleString('en')} instructions a record (parsed sshd line, chained; run ${i + 1} of ${runs})`);
    }
  }
  process.exit(0);
}

const total = Number(process.argv[2] ?? 200_000);
const batchSize = 512;
const resource = agentResource({ agentId: 'bench-agent', hostName: 'runner-01', labels: { team: 'platform' } });
const scope = { name: 'ci-audit-agent', version: '0.1.0' };

function hash(i: number): string {
  return (i * 2654435761).toString(16).padStart(16, '0').repeat(4).slice(0, 64);
}

function record(i: number): ReadableLogRecord {
  const line = sshdLine(i, true);
  const attributes: Attributes = { ...line.attributes, 'ci_audit.chain.seq': i + 1, 'ci_audit.chain.hash': hash(i + 1), 'ci_audit.chain.prev_hash': hash(i) };
  return {
    hrTime: [1795684321 + i, 482113000],
    hrTimeObserved: [1795730358 + i, 556000000],
    body: `2026-11-26T09:12:01.482113+00:00 ${line.body}`,
    attributes,
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: scope,
  };
}

const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: batchSize }, (_, i) => record(b * batchSize + i)));

const encoders: Record<string, (records: ReadableLogRecord[]) => Uint8Array | undefined> = {
  'otlp-transformer ProtobufLogsSerializer': (records) => ProtobufLogsSerializer.serializeRequest(records),
  'agent encodeLogsRequest': (records) => encodeLogsRequest(records),
  'agent encodeLogRecord, then the request': (records) => encodeLogsRequest(records.map((r) => encodeLogRecord(r))),
};

for (const batch of batches) {
  const [theirs, ...ours] = Object.values(encoders).map((encode) => encode(batch));
  if (theirs === undefined || ours.some((bytes) => bytes === undefined || Buffer.compare(theirs, bytes) !== 0)) throw new Error('the encoders wrote different bytes');
}

/** CPU µs per record for one round of `total` records. */
function round(encode: (records: ReadableLogRecord[]) => Uint8Array | undefined): { us: number; bytes: number } {
  let bytes = 0;
  const start = process.cpuUsage();
  for (let done = 0, b = 0; done < total; done += batchSize, b++) bytes += encode(batches[b % batches.length]!)?.length ?? 0;
  const cpu = process.cpuUsage(start);
  return { us: (cpu.user + cpu.system) / total, bytes: bytes / total };
}

// The exporter's whole request body, encoding and compression at the default level: less the
// encodeLogsRequest row above, what the compression costs a record.
const bodies: typeof encoders = {
  'exporter requestBody, gzip': (records) => requestBody(records, { codec: 'gzip', level: defaultCompressionLevel }),
  'exporter requestBody, zstd': (records) => requestBody(records, { codec: 'zstd', level: defaultCompressionLevel }),
};
const all = { ...encoders, ...bodies };
const rounds = new Map<string, number[]>(Object.keys(all).map((name) => [name, []]));
const bytesPerRecord = new Map<string, number>();
for (const encode of Object.values(all)) round(encode); // warm-up
for (let r = 0; r < 3; r++) {
  for (const [name, encode] of Object.entries(all)) {
    const { us, bytes } = round(encode);
    rounds.get(name)!.push(us);
    bytesPerRecord.set(name, bytes);
  }
}
for (const [name, us] of rounds) {
  us.sort((a, b) => a - b);
  console.log(`${name.padEnd(40)}: ${us[1]!.toFixed(2)} µs CPU/record (rounds ${us[0]!.toFixed(2)} to ${us[2]!.toFixed(2)}), ${Math.round(bytesPerRecord.get(name)!)} bytes/record`);
}
