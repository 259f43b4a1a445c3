// Chained records as the aggregator's decoder hands them on, built with the agent's side of the
// contract (core/integrity): canonical record, chain hash, signed checkpoints.
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chainHash, genesisHash } from '../../../../core/integrity/chain.ts';
import { checkpointAttributes, keyId, publicKeyPem, signCheckpoint } from '../../../../core/integrity/checkpoint.ts';
import type { CheckpointType } from '../../../../core/integrity/checkpoint.ts';
import { canonicalRecord } from '../../../../core/integrity/record.ts';
import { chainAttr, recordAttr, resourceAttr } from '../../../../core/wire.ts';
import type { Attributes, DecodedLogRecord } from '../../../../aggregator/log-record.ts';

export function decoded(agentId: string, attributes: Attributes, body: string, timeUnixNano = 1_795_688_521_482_113_789n): DecodedLogRecord {
  return {
    resource: { [resourceAttr.agentId]: agentId, [resourceAttr.hostName]: 'runner-01', [resourceAttr.serviceName]: 'ci-audit-agent' },
    scope: { name: 'ci-audit.file', version: '0.1.0', attributes: {} },
    timeUnixNano,
    observedTimeUnixNano: timeUnixNano + 1000n,
    severityNumber: 9,
    severityText: '',
    body,
    attributes,
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '',
    spanId: '',
    eventName: '',
  };
}

/** Builds an agent's chain record by record, as the agent's chain processor does. */
export class ChainBuilder {
  readonly agentId: string;
  head = { seq: 0, hash: genesisHash };

  constructor(agentId: string) {
    this.agentId = agentId;
  }

  /** The next record (seq = head + 1), or one at `seq` linking to `prevHash`. */
  next(body: string, options: { seq?: number; prevHash?: string; attributes?: Attributes } = {}): DecodedLogRecord {
    const seq = options.seq ?? this.head.seq + 1;
    const prevHash = options.prevHash ?? this.head.hash;
    const attributes: Attributes = { [recordAttr.dataset]: 'auth', [recordAttr.recordId]: `r-${seq}`, ...options.attributes };
    const record = decoded(this.agentId, attributes, body, 1_795_688_521_000_000_000n + BigInt(seq));
    const canonical = canonicalRecord({
      agent: this.agentId,
      seq,
      timeUnixNano: record.timeUnixNano,
      observedTimeUnixNano: record.observedTimeUnixNano,
      severityNumber: record.severityNumber,
      body,
      attributes: attributes,
      resource: record.resource,
    });
    const hash = chainHash(prevHash, canonical);
    record.attributes[chainAttr.seq] = seq;
    record.attributes[chainAttr.hash] = hash;
    record.attributes[chainAttr.prevHash] = prevHash;
    this.head = { seq, hash };
    return record;
  }
}

export interface TestKey {
  privateKey: KeyObject;
  pem: string;
  id: string;
}

export function newKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKeyPem(publicKey);
  return { privateKey, pem, id: keyId(pem) };
}

/** A checkpoint record over `head`, signed by `key` (or claiming `key` and signed by `signer`). */
export function checkpointRecord(
  agentId: string,
  head: { seq: number; hash: string },
  key: TestKey,
  options: { type?: CheckpointType; next?: TestKey; signer?: TestKey; time?: bigint } = {},
): DecodedLogRecord {
  const time = options.time ?? 1_795_688_600_000_000_000n + BigInt(head.seq);
  const statement = {
    type: options.type ?? 'checkpoint',
    agent: agentId,
    key: key.id,
    seq: head.seq,
    hash: head.hash,
    timeUnixNano: time,
    ...(options.next === undefined ? {} : { nextKey: options.next.id, nextPublicKey: options.next.pem }),
  };
  const signed = signCheckpoint(statement, (options.signer ?? key).privateKey);
  const attributes: Attributes = checkpointAttributes(signed);
  return decoded(agentId, attributes, `checkpoint ${head.seq}`, time);
}
