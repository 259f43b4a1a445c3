// The agent's OTLP encoder (agent/sinks/otlp-protobuf-encode.ts) on the records it encodes most:
// parsed sshd "Accepted publickey" lines with the chain's three attributes, as the batch processor
// hands them over. `record`: each encoded into the slabs as it enters a batch (encodeLogRecord);
// `request`: that, then the requests of 512 spliced from those bytes (encodeLogsRequestTransient).
// Two rounds warm up, then `rounds` more. Run by bench/encode.ts under cachegrind; prints the
// records of a round.
// Usage: node bench/lib/encode-rounds.ts record|request <rounds>
import type { Attributes } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { agentResource } from '../../agent/resource.ts';
import { encodeLogRecord, encodeLogsRequestTransient } from '../../agent/sinks/otlp-protobuf-encode.ts';
import { parsedSshdAttributes } from './parsed-sshd.ts';

const mode = process.argv[2];
const rounds = Number(process.argv[3] ?? 0);
const perRound = 4096;
const batchSize = 512;
const resource = agentResource({ agentId: 'bench-agent', hostName: 'runner-01', labels: { team: 'platform' } });
const scope = { name: 'ci-audit-agent', version: '0.1.0' };

function hash(i: number): string {
  return (i * 2654435761).toString(16).padStart(16, '0').repeat(4).slice(0, 64);
}

// The times as the agent has them: the line's own (a few lines a second), and when it was read.
const records = Array.from({ length: perRound }, (_, i): ReadableLogRecord => {
  // Literal keys, as the chain processor adds them: under a computed key the object would turn
  // into a hash table, which the agent's records are not.
  const attributes: Attributes = parsedSshdAttributes(i);
  attributes['ci_audit.chain.seq'] = i + 1;
  attributes['ci_audit.chain.hash'] = hash(i + 1);
  attributes['ci_audit.chain.prev_hash'] = hash(i);
  return {
    hrTime: [1795688521 + (i >> 2), 482113000 + 1000 * i],
    hrTimeObserved: [1795730358 + (i >> 2), 556000000 + 250_000 * (i & 3)],
    body: `Nov 27 07:49:15 runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}Q9mZx8w1p0Lr2vYt7uHc6sNa5eFd4gJk3iOl`,
    severityNumber: 9,
    attributes,
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: scope,
  } as unknown as ReadableLogRecord;
});

let run: () => void;
if (mode === 'record') {
  run = () => {
    for (const r of records) encodeLogRecord(r);
  };
} else if (mode === 'request') {
  run = () => {
    for (let i = 0; i < perRound; i += batchSize) encodeLogsRequestTransient(records.slice(i, i + batchSize).map((r) => encodeLogRecord(r)));
  };
} else {
  throw new Error('usage: node bench/lib/encode-rounds.ts record|request <rounds>');
}
for (let round = 0; round < 2 + rounds; round++) run();
console.log(JSON.stringify({ recordsPerRound: perRound }));
