// The aggregator's verify stage, per record, on one core, Elasticsearch excluded: what checking a
// chained request costs on top of decoding and mapping it. Each request is what the agent sends:
// 1,000 chained records of one agent (a CI/auth line with the agent's resource and attributes,
// decoded from protobuf) plus one signed checkpoint (the agent's default: one per 1,000 records).
// Measured: VerifyStage.verify alone (canonical form, SHA-256, continuity, one Ed25519 verify),
// and decode -> verify -> map against decode -> map of the same records.
// Usage: node bench/aggregator-verify.ts [records] (default 200,000).
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { chainHash, genesisHash } from '../core/integrity/chain.ts';
import { keyId, publicKeyPem, signCheckpoint } from '../core/integrity/checkpoint.ts';
import { canonicalRecord } from '../core/integrity/record.ts';
import { chainAttr, checkpointAttr, recordAttr } from '../core/wire.ts';
import { mapToEcs } from '../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../aggregator/receiver/otlp-decode.ts';
import type { KeySource } from '../aggregator/verify/stage.ts';
import { VerifyStage } from '../aggregator/verify/stage.ts';
import type { DecodedLogRecord } from '../aggregator/log-record.ts';
import { agentAttributes, agentResource, emitRecords, protobufBody } from '../test/unit/aggregator/otlp-fixtures.ts';

const total = Number(process.argv[2] ?? 200_000);
const perRequest = 1000;
const requestsPerChain = 10;
const agentId = 'bench-agent-01';
const resource = agentResource(agentId, 'runner-01');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pem = publicKeyPem(publicKey);
const key = keyId(pem);
const keys: KeySource = { signingKeys: () => Promise.resolve([pem]), addSigningKey: () => Promise.resolve(false) };

/** A chain of `requestsPerChain` requests, decoded, as the receiver hands them to the pipeline. */
async function chain(): Promise<DecodedLogRecord[][]> {
  let head = { seq: 0, hash: genesisHash };
  const requests: DecodedLogRecord[][] = [];
  for (let n = 0; n < requestsPerChain; n++) {
    const records = Array.from({ length: perRequest }, (_, i) => {
      const seq = n * perRequest + i + 1;
      const seconds = 1795688521 + seq;
      const body = `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (seq % 10000)} ssh2: ED25519 SHA256:Xk3b${seq}`;
      const attributes = { ...agentAttributes('auth', `auth-${seq}`, '/var/log/auth.log', 120 * seq), 'user.name': 'deploy', 'source.ip': '203.0.113.17' };
      const canonical = canonicalRecord({ agent: agentId, seq, timeUnixNano: BigInt(seconds) * 1_000_000_000n + 482113789n, observedTimeUnixNano: BigInt(seconds) * 1_000_000_000n, severityNumber: 9, body, attributes, resource });
      const hash = chainHash(head.hash, canonical);
      const record = { timestamp: [seconds, 482113789] as [number, number], observedTimestamp: [seconds, 0] as [number, number], severityNumber: 9, body, attributes: { ...attributes, [chainAttr.seq]: seq, [chainAttr.hash]: hash, [chainAttr.prevHash]: head.hash } };
      head = { seq, hash };
      return record;
    });
    const time = 1_795_700_000_000_000_000n + BigInt(head.seq);
    const signed = signCheckpoint({ type: 'checkpoint', agent: agentId, key, seq: head.seq, hash: head.hash, timeUnixNano: time }, privateKey);
    const checkpoint = {
      timestamp: [Number(time / 1_000_000_000n), 0] as [number, number],
      body: `checkpoint ${head.seq}`,
      attributes: {
        [recordAttr.dataset]: 'integrity',
        [checkpointAttr.type]: 'checkpoint',
        [checkpointAttr.seq]: head.seq,
        [checkpointAttr.hash]: head.hash,
        [checkpointAttr.time]: time.toString(),
        [checkpointAttr.key]: key,
        [checkpointAttr.signature]: signed.signature,
      },
    };
    const body = protobufBody(await emitRecords({ resource, scope: { name: 'ci-audit.file', version: '0.1.0' }, records: [...records, checkpoint] }));
    requests.push(decodeProtobufLogs(body));
  }
  return requests;
}

const requests = await chain();
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
