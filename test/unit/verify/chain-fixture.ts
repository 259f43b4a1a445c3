// Builds what the aggregator would have indexed for an agent's chain: chained records and signed
// checkpoint documents, mapped by the real mapToEcs from records hashed and signed with the real
// core/integrity functions, plus the anchor file's lines. Used by the unit tests and by the
// tamper matrix against a real Elasticsearch.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mapToEcs, type EcsDocument } from '../../../aggregator/map/ecs.ts';
import type { Attributes, DecodedLogRecord } from '../../../aggregator/log-record.ts';
import { chainHash, genesisHash } from '../../../core/integrity/chain.ts';
import { checkpointAttributes, keyId, publicKeyPem, signCheckpoint, type CheckpointType, type SignedCheckpoint } from '../../../core/integrity/checkpoint.ts';
import { canonicalRecord } from '../../../core/integrity/record.ts';
import { chainAttr, recordAttr, resourceAttr } from '../../../core/wire.ts';

// The anchor file's lines as the aggregator writes them.
export { anchorLine } from '../../../aggregator/verify/anchor.ts';

export interface SigningKey {
  privateKey: KeyObject;
  publicPem: string;
  id: string;
}

export function newSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicPem = publicKeyPem(publicKey);
  return { privateKey, publicPem, id: keyId(publicPem) };
}

export interface IndexedDoc {
  _id: string;
  /** The data stream it goes to. */
  stream: string;
  document: EcsDocument;
}

/** A hit as a search returns it, from the backing index Elasticsearch would pick. */
export function asHit(doc: IndexedDoc): { _id: string; _index: string; _source: Record<string, unknown> } {
  return { _id: doc._id, _index: `.ds-${doc.stream}-2026.11.26-000001`, _source: JSON.parse(JSON.stringify(doc.document)) as Record<string, unknown> };
}

export const ingested = new Date('2026-11-26T10:00:00.000Z');
const baseTime = 1_795_000_000_000_000_000n;

export interface ChainRecord {
  seq: number;
  hash: string;
  prevHash: string;
  canonical: string;
  doc: IndexedDoc;
}

export interface Chain {
  agent: string;
  namespace: string;
  key: SigningKey;
  records: ChainRecord[];
  checkpoints: { statement: SignedCheckpoint; doc: IndexedDoc }[];
}

function resource(agent: string): Attributes {
  return { [resourceAttr.hostName]: `host-${agent}`, [resourceAttr.serviceName]: 'ci-audit-agent', [resourceAttr.serviceVersion]: '0.1.0', [resourceAttr.agentId]: agent };
}

export interface RecordContent {
  user?: string;
  body?: string;
  extra?: Attributes;
}

/** The decoded record of line `seq` of the agent (before chaining). */
export function lineRecord(agent: string, seq: number, content: RecordContent = {}): DecodedLogRecord {
  const user = content.user ?? `user${seq % 7}`;
  return {
    resource: resource(agent),
    scope: { name: 'ci-audit.file', version: '0.1.0', attributes: {} },
    timeUnixNano: baseTime + BigInt(seq) * 1_000_000_123n,
    observedTimeUnixNano: baseTime + BigInt(seq) * 1_000_000_123n + 5000n,
    severityNumber: 9,
    severityText: '',
    body: content.body ?? `runner sshd[${1000 + seq}]: Accepted publickey for ${user} from 203.0.113.${seq % 250} port ${40000 + seq} ssh2`,
    attributes: {
      [recordAttr.dataset]: 'auth',
      [recordAttr.recordId]: `auth-${seq}`,
      [recordAttr.logFilePath]: '/var/log/auth.log',
      [recordAttr.logOffset]: seq * 120,
      'user.name': user,
      'source.ip': `203.0.113.${seq % 250}`,
      'event.outcome': 'success',
      ...content.extra,
    },
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '',
    spanId: '',
    eventName: '',
  };
}

/** Chains a record after `prev` (hash of the record before it) and maps it as the aggregator does. */
export function chainRecord(agent: string, namespace: string, seq: number, prev: string, record: DecodedLogRecord): ChainRecord {
  const canonical = canonicalRecord({
    agent,
    seq,
    timeUnixNano: record.timeUnixNano,
    observedTimeUnixNano: record.observedTimeUnixNano,
    severityNumber: record.severityNumber,
    body: record.body,
    attributes: record.attributes,
    resource: record.resource,
  });
  const hash = chainHash(prev, canonical);
  const chained: DecodedLogRecord = { ...record, attributes: { ...record.attributes, [chainAttr.seq]: seq, [chainAttr.hash]: hash, [chainAttr.prevHash]: prev } };
  const mapped = mapToEcs(chained, { namespace, ingested, chain: { canonical, verified: true } });
  return { seq, hash, prevHash: prev, canonical, doc: { _id: mapped.id!, stream: mapped.dataStream, document: mapped.document } };
}

/** A signed statement over (seq, hash) and its checkpoint document as the aggregator maps it. */
export function checkpoint(agent: string, namespace: string, key: SigningKey, seq: number, hash: string, options: { type?: CheckpointType; next?: SigningKey } = {}): { statement: SignedCheckpoint; doc: IndexedDoc } {
  const statement = signCheckpoint(
    {
      type: options.type ?? 'checkpoint',
      agent,
      key: key.id,
      seq,
      hash,
      timeUnixNano: baseTime + BigInt(seq) * 1_000_000_123n + 7000n,
      ...(options.next === undefined ? {} : { nextKey: options.next.id, nextPublicKey: options.next.publicPem }),
    },
    key.privateKey,
  );
  const attributes: Attributes = checkpointAttributes(statement);
  const record: DecodedLogRecord = { ...lineRecord(agent, seq), body: `checkpoint at seq ${seq}`, timeUnixNano: statement.timeUnixNano, attributes };
  const mapped = mapToEcs(record, { namespace, ingested });
  return { statement, doc: { _id: mapped.id!, stream: mapped.dataStream, document: mapped.document } };
}

/** An agent's chain of `count` records with a signed checkpoint every `every` records. */
export function buildChain(agent: string, namespace: string, count: number, every: number, key: SigningKey = newSigningKey()): Chain {
  const chain: Chain = { agent, namespace, key, records: [], checkpoints: [] };
  let prev = genesisHash;
  for (let seq = 1; seq <= count; seq++) {
    const r = chainRecord(agent, namespace, seq, prev, lineRecord(agent, seq));
    chain.records.push(r);
    prev = r.hash;
    if (seq % every === 0) chain.checkpoints.push(checkpoint(agent, namespace, key, seq, r.hash));
  }
  return chain;
}
