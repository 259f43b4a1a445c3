// Checks a signed checkpoint record (an unchained record with checkpointAttr.*) against the keys
// the aggregator holds for the agent that sent it: the key registered at enrollment and the keys
// learned from valid key_rotation statements. A pure function; the stage does the I/O.
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { verifyCheckpoint } from '../../core/integrity/checkpoint.ts';
import type { SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import { keyId } from '../../core/integrity/checkpoint.ts';
import { isChainHash } from '../../core/integrity/chain.ts';
import { hasErrorCode } from '../../core/errors.ts';
import { checkpointAttr } from '../../core/wire.ts';
import type { Attributes } from '../log-record.ts';

export type CheckpointCheck =
  | { kind: 'none' }
  /** Checkpoint attributes present but not a statement (missing or malformed fields). */
  | { kind: 'malformed'; reason: string }
  | { kind: 'key_unknown'; checkpoint: SignedCheckpoint }
  | { kind: 'signature_invalid'; checkpoint: SignedCheckpoint }
  /** A key_rotation whose next_public_key is not the key next_key names. */
  | { kind: 'next_key_mismatch'; checkpoint: SignedCheckpoint }
  | { kind: 'valid'; checkpoint: SignedCheckpoint };

/** The statement a checkpoint record carries, as agent `agentId`; a reason when it is not one. */
export function readCheckpoint(attributes: Attributes, agentId: string): SignedCheckpoint | string | undefined {
  const type = attributes[checkpointAttr.type];
  if (type === undefined) return undefined;
  if (type !== 'checkpoint' && type !== 'key_rotation') return `${checkpointAttr.type} is ${typeof type === 'string' ? JSON.stringify(type) : `a ${typeof type}`}, not checkpoint or key_rotation`;
  const rawSeq = attributes[checkpointAttr.seq];
  const seq = typeof rawSeq === 'bigint' ? Number(rawSeq) : rawSeq;
  const hash = attributes[checkpointAttr.hash];
  const time = attributes[checkpointAttr.time];
  const key = attributes[checkpointAttr.key];
  const signature = attributes[checkpointAttr.signature];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return `${checkpointAttr.seq} is not a sequence number`;
  if (!isChainHash(hash)) return `${checkpointAttr.hash} is not a hex SHA-256`;
  if (typeof time !== 'string' || !/^\d{1,20}$/.test(time)) return `${checkpointAttr.time} is not nanoseconds as a decimal string`;
  if (typeof key !== 'string' || key === '') return `${checkpointAttr.key} is missing`;
  if (typeof signature !== 'string' || signature === '') return `${checkpointAttr.signature} is missing`;
  const checkpoint: SignedCheckpoint = { type, agent: agentId, key, seq, hash, timeUnixNano: BigInt(time), signature };
  const nextKey = attributes[checkpointAttr.nextKey];
  const nextPublicKey = attributes[checkpointAttr.nextPublicKey];
  if (nextKey !== undefined) {
    if (typeof nextKey !== 'string') return `${checkpointAttr.nextKey} is not a string`;
    checkpoint.nextKey = nextKey;
  }
  if (nextPublicKey !== undefined) {
    if (typeof nextPublicKey !== 'string') return `${checkpointAttr.nextPublicKey} is not a string`;
    checkpoint.nextPublicKey = nextPublicKey;
  }
  if (type === 'key_rotation' && (checkpoint.nextKey === undefined || checkpoint.nextPublicKey === undefined)) {
    return `a key_rotation needs ${checkpointAttr.nextKey} and ${checkpointAttr.nextPublicKey}`;
  }
  return checkpoint;
}

/** Checks the checkpoint of `attributes` (if any) with the agent's public keys, by key id. */
export function checkCheckpoint(attributes: Attributes, agentId: string, keys: ReadonlyMap<string, string>): CheckpointCheck {
  const read = readCheckpoint(attributes, agentId);
  if (read === undefined) return { kind: 'none' };
  if (typeof read === 'string') return { kind: 'malformed', reason: read };
  const publicKey = keys.get(read.key);
  if (publicKey === undefined) return { kind: 'key_unknown', checkpoint: read };
  if (!verifyCheckpoint(read, parsedKeys.get(publicKey)?.object ?? publicKey)) return { kind: 'signature_invalid', checkpoint: read };
  if (read.type === 'key_rotation' && !namesKey(read.nextPublicKey!, read.nextKey!)) return { kind: 'next_key_mismatch', checkpoint: read };
  return { kind: 'valid', checkpoint: read };
}

function namesKey(pem: string, id: string): boolean {
  try {
    return keyId(pem) === id;
  } catch (err) {
    if (hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) return false;
    throw err;
  }
}

/** Public keys (PEM) by key id; keys that are not Ed25519 PEM are left out and named in `invalid`. */
export function keysById(publicKeys: readonly string[]): { keys: Map<string, string>; invalid: string[] } {
  const keys = new Map<string, string>();
  const invalid: string[] = [];
  for (const registered of publicKeys) {
    const pem = asPem(registered);
    try {
      keys.set(parsedKey(pem).id, pem);
    } catch (err) {
      if (!hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) throw err;
      invalid.push(registered.slice(0, 40));
    }
  }
  return { keys, invalid };
}

/**
 * Valid public keys already parsed, by PEM text. The stage reads an agent's keys once a request,
 * and parsing each (for its id, then again to verify the checkpoint) took half as much CPU as the
 * signature check itself (100 µs against 200): each key is parsed once. Bounded, since key
 * rotations keep adding keys.
 */
const parsedKeys = new Map<string, { id: string; object: KeyObject }>();
const maxParsedKeys = 1024;

/** The key's id and key object; throws CIA_ERR_INTEGRITY_KEY (from keyId) when it is not an Ed25519 key. */
function parsedKey(pem: string): { id: string; object: KeyObject } {
  let parsed = parsedKeys.get(pem);
  if (parsed === undefined) {
    // keyId checks the key (Ed25519, PEM SPKI) and throws what callers expect for a bad one.
    parsed = { id: keyId(pem), object: createPublicKey(pem) };
    if (parsedKeys.size >= maxParsedKeys) parsedKeys.clear();
    parsedKeys.set(pem, parsed);
  }
  return parsed;
}

/** The registry holds a key as PEM or as bare base64 of its SPKI DER; both become PEM. */
function asPem(key: string): string {
  const text = key.trim();
  if (text.startsWith('-----BEGIN')) return text;
  const lines = text.replace(/\s+/g, '').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}
