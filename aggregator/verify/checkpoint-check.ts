// Checks a signed checkpoint record (an unchained record with checkpointAttr.*) against the keys
// the aggregator holds for the agent that sent it: the key registered at enrollment and the keys
// learned from valid key_rotation statements, each valid only for its range of seqs
// (core/integrity/key-ring.ts). A pure function; the stage does the I/O.
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { verifyCheckpoint } from '../../core/integrity/checkpoint.ts';
import type { SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import { keyId } from '../../core/integrity/checkpoint.ts';
import { isChainHash } from '../../core/integrity/chain.ts';
import { hasErrorCode } from '../../core/errors.ts';
import { KeyRing, type TrustedKey } from '../../core/integrity/key-ring.ts';
import { checkpointAttr } from '../../core/wire.ts';
import type { Attributes } from '../log-record.ts';

export type CheckpointCheck =
  | { kind: 'none' }
  /** Checkpoint attributes present but not a statement (missing or malformed fields). */
  | { kind: 'malformed'; reason: string }
  | { kind: 'key_unknown'; checkpoint: SignedCheckpoint }
  /** Signed by a known key outside its range of seqs: before a rotation introduced it, or after one retired it. */
  | { kind: 'key_out_of_range'; checkpoint: SignedCheckpoint; from: number; until: number }
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

/**
 * Checks the checkpoint of `attributes` (if any) with the agent's keys, by key id and seq. A valid
 * key_rotation is not taken into `keys` here: the caller learns it (KeyRing#learn) once it kept it.
 */
export function checkCheckpoint(attributes: Attributes, agentId: string, keys: KeyRing): CheckpointCheck {
  const read = readCheckpoint(attributes, agentId);
  if (read === undefined) return { kind: 'none' };
  if (typeof read === 'string') return { kind: 'malformed', reason: read };
  const found = keys.lookup(read.key, read.seq, read.type === 'key_rotation' ? read.nextKey : undefined);
  if (found.kind === 'unknown') return { kind: 'key_unknown', checkpoint: read };
  const publicKey = found.publicKey;
  if (!verifyCheckpoint(read, parsedKeys.get(publicKey)?.object ?? publicKey)) return { kind: 'signature_invalid', checkpoint: read };
  if (found.kind === 'out_of_range') return { kind: 'key_out_of_range', checkpoint: read, from: found.from, until: found.until };
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

/** A key as the registry gives it: PEM or base64 SPKI, and for a learned key the rotation that introduced it. */
export interface RegisteredKey {
  publicKey: string;
  rotation?: { from: string; seq: number } | undefined;
}

/**
 * The agent's keys with their ranges of seqs; keys that are not Ed25519 PEM are left out and named in
 * `invalid`, learned keys whose rotation does not hold in seq order (signed by a key already retired
 * at that seq) in `ring.ignored`.
 */
export function keysById(registered: readonly (string | RegisteredKey)[]): { keys: KeyRing; invalid: string[] } {
  const trusted: TrustedKey[] = [];
  const invalid: string[] = [];
  for (const item of registered) {
    const key = typeof item === 'string' ? { publicKey: item } : item;
    const pem = asPem(key.publicKey);
    try {
      trusted.push({ id: parsedKey(pem).id, publicKey: pem, rotation: key.rotation });
    } catch (err) {
      if (!hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY')) throw err;
      invalid.push(key.publicKey.slice(0, 40));
    }
  }
  return { keys: new KeyRing(trusted), invalid };
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
