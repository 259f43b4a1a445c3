// The workload of the aggregator benchmarks (bench/aggregator.ts, bench/aggregator-verify.ts): what
// one agent sends, an sshd line per record with the agent's wire attributes; chained, each record
// carries its seq and SHA-256 link and each request ends with a checkpoint signed over its last record.
import { generateKeyPairSync } from 'node:crypto';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { chainHash, genesisHash } from '../../core/integrity/chain.ts';
import { checkpointAttributes, keyId, publicKeyPem, signCheckpoint } from '../../core/integrity/checkpoint.ts';
import { canonicalRecord } from '../../core/integrity/record.ts';
import { chainAttr } from '../../core/wire.ts';
import type { KeySource } from '../../aggregator/verify/stage.ts';
import { agentAttributes, agentResource, emitRecords } from '../../test/unit/aggregator/otlp-fixtures.ts';

export const agentId = 'bench-agent-01';
export const resource = agentResource(agentId, 'runner-01');
export const scope = { name: 'ci-audit.file', version: '0.1.0' };

type WorkloadAttributes = Record<string, string | number | string[]>;

/**
 * Record `id`: an accepted publickey login, as the agent's file source sends it. `parsed`: with every
 * field the agent's sshd parser adds (29 attributes in all, what `ci-audit agent run` really sends
 * for such a line); otherwise only two of them (8 attributes).
 */
export function sshdLine(id: number, parsed = false): { seconds: number; body: string; attributes: WorkloadAttributes } {
  const port = 50000 + (id % 10000);
  const message = `Accepted publickey for deploy from 203.0.113.17 port ${port} ssh2: ED25519 SHA256:Xk3b${id}`;
  const base = agentAttributes('auth', `auth-${id}`, '/var/log/auth.log', 120 * id);
  return {
    seconds: 1795688521 + id,
    body: `runner-01 sshd[2811]: ${message}`,
    attributes: parsed ? { ...base, ...parsedSshd(id, port, message) } : { ...base, 'user.name': 'deploy', 'source.ip': '203.0.113.17' },
  };
}

/** The fields the agent's sshd parser writes for the line (agent/processors/auth/sshd.ts), in its order. */
function parsedSshd(id: number, port: number, message: string): WorkloadAttributes {
  return {
    'event.kind': 'event',
    'event.action': 'ssh_login',
    'event.category': ['authentication', 'session'],
    'event.type': ['info'],
    'event.outcome': 'success',
    'user.name': 'deploy',
    'related.user': ['deploy'],
    'source.ip': '203.0.113.17',
    'related.ip': ['203.0.113.17'],
    'source.port': port,
    'system.auth.ssh.event': 'Accepted',
    'system.auth.ssh.method': 'publickey',
    'system.auth.ssh.signature': `ED25519 SHA256:Xk3b${id}`,
    'related.hash': [`SHA256:Xk3b${id}`],
    message,
    'process.name': 'sshd',
    'process.pid': 2811,
    'host.hostname': 'runner-01',
    'related.hosts': ['runner-01'],
    'event.timezone': '+00:00',
    'ci_audit.parse.status': 'parsed',
    'ci_audit.parser': 'sshd',
  };
}

/** `count` requests of `perRequest` records, unchained. */
export async function plainRequests(count: number, perRequest: number): Promise<ReadableLogRecord[][]> {
  const requests: ReadableLogRecord[][] = [];
  for (let n = 0; n < count; n++) {
    const records = Array.from({ length: perRequest }, (_, i) => {
      const { seconds, body, attributes } = sshdLine(n * perRequest + i);
      return { timestamp: [seconds, 482113789] as [number, number], severityNumber: 9, body, attributes };
    });
    requests.push(await emitRecords({ resource, scope, records }));
  }
  return requests;
}

/**
 * One chain of `count` requests, each `perRequest` chained records and the checkpoint over them,
 * with the key source that holds the signing key (the verify stage checks the signatures).
 */
export async function chainedRequests(count: number, perRequest: number, parsed = false): Promise<{ requests: ReadableLogRecord[][]; keys: KeySource }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKeyPem(publicKey);
  const key = keyId(pem);
  let head = { seq: 0, hash: genesisHash };
  const requests: ReadableLogRecord[][] = [];
  for (let n = 0; n < count; n++) {
    const records = Array.from({ length: perRequest }, (_, i) => {
      const seq = n * perRequest + i + 1;
      const { seconds, body, attributes } = sshdLine(seq, parsed);
      const time = BigInt(seconds) * 1_000_000_000n + 482113789n;
      const canonical = canonicalRecord({ agent: agentId, seq, timeUnixNano: time, observedTimeUnixNano: BigInt(seconds) * 1_000_000_000n, severityNumber: 9, body, attributes, resource });
      const hash = chainHash(head.hash, canonical);
      const record = {
        timestamp: [seconds, 482113789] as [number, number],
        observedTimestamp: [seconds, 0] as [number, number],
        severityNumber: 9,
        body,
        attributes: { ...attributes, [chainAttr.seq]: seq, [chainAttr.hash]: hash, [chainAttr.prevHash]: head.hash },
      };
      head = { seq, hash };
      return record;
    });
    const time = 1_795_700_000_000_000_000n + BigInt(head.seq);
    const signed = signCheckpoint({ type: 'checkpoint', agent: agentId, key, seq: head.seq, hash: head.hash, timeUnixNano: time }, privateKey);
    const checkpoint = { timestamp: [Number(time / 1_000_000_000n), 0] as [number, number], body: `checkpoint ${head.seq}`, attributes: checkpointAttributes(signed) };
    requests.push(await emitRecords({ resource, scope, records: [...records, checkpoint] }));
  }
  const keys: KeySource = { trustedKeys: () => Promise.resolve([{ publicKey: pem }]), addSigningKey: () => Promise.resolve(false) };
  return { requests, keys };
}
