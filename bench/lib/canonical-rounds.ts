// The canonical writer (core/integrity/record.ts) on the records it writes most: parsed sshd
// "Accepted publickey" lines, on the agent (SDK values straight from the parser, hashed with the
// kept resource text) or on the aggregator (records decoded from the agent's OTLP requests,
// checked by the verify stage's checkRecord). Two rounds warm up, then `rounds` more. Run by
// bench/canonical.ts under cachegrind; prints the records of a round.
// `agent-bytes`: the agent's records written and not hashed (the writer alone).
// Usage: node bench/lib/canonical-rounds.ts agent|agent-bytes|aggregator <rounds>
import { decodeProtobufLogs } from '../../aggregator/receiver/otlp-decode.ts';
import { checkRecord } from '../../aggregator/verify/record-check.ts';
import { chainHashOfRecord, genesisHash } from '../../core/integrity/chain.ts';
import { canonicalAttributes, canonicalRecordBytes, type AttestedInput } from '../../core/integrity/record.ts';
import { protobufBody } from '../../test/unit/aggregator/otlp-fixtures.ts';
import { agentId, chainedRequests, resource } from './chained-requests.ts';
import { parsedSshdAttributes } from './parsed-sshd.ts';

const mode = process.argv[2];
const rounds = Number(process.argv[3] ?? 0);
const perRound = 4000;

let run: () => void;
if (mode === 'agent' || mode === 'agent-bytes') {
  const resourceText = canonicalAttributes(resource);
  const records = Array.from({ length: perRound }, (_, i) => ({
    hrTime: [1795688521 + i, 482113789] as [number, number],
    body: `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + i} ssh2: ED25519 SHA256:Xk3b${i}`,
    attributes: parsedSshdAttributes(i),
  }));
  let prev = genesisHash;
  let seq = 0;
  const bytesOnly = mode === 'agent-bytes';
  run = () => {
    for (const r of records) {
      const record = { agent: agentId, seq: ++seq, timeUnixNano: r.hrTime, observedTimeUnixNano: r.hrTime, severityNumber: 9, body: r.body, attributes: r.attributes as Record<string, AttestedInput>, resource: {} };
      if (bytesOnly) {
        canonicalRecordBytes(record, resourceText, 32);
        continue;
      }
      prev = chainHashOfRecord(
        prev,
        record,
        resourceText,
      );
    }
  };
} else if (mode === 'aggregator') {
  const workload = await chainedRequests(perRound / 1000, 1000, true);
  const records = workload.requests.flatMap((request) => decodeProtobufLogs(protobufBody(request)));
  run = () => {
    for (const r of records) {
      const check = checkRecord(r, agentId);
      if (check.kind === 'chained' && !check.hashOk) throw new Error('a record does not hash to its claimed hash');
    }
  };
} else {
  throw new Error('usage: node bench/lib/canonical-rounds.ts agent|agent-bytes|aggregator <rounds>');
}
for (let round = 0; round < 2 + rounds; round++) run();
console.log(JSON.stringify({ recordsPerRound: perRound }));
