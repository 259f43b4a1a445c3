// Signed checkpoints: every N records or T seconds the agent signs where its chain stands with its
// Ed25519 key, so that a chain rewritten consistently (every hash recomputed) no longer matches a
// signature nobody else can make. A key rotation is a checkpoint signed by the old key that names
// the next key, so that a verifier holding only the enrolled key can follow every later key.
//
// The signed bytes are the RFC 8785 text of the statement (docs/integrity.md):
//   {"agent":..,"hash":"<hex hash_seq>","key":"<key id>","seq":<n>,"time":"<ns>","type":"checkpoint","v":1}
// plus, for a rotation, "next_key":"<key id>","next_public_key":"<PEM>" and "type":"key_rotation".
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { CiAuditError } from '../errors.ts';
import { canonicalJson } from './canonical-json.ts';
import { checkpointAttr, integrityDataset, recordAttr } from '../wire.ts';
import { checkpointRecordId } from './document.ts';

export const checkpointVersion = 1;

export type CheckpointType = 'checkpoint' | 'key_rotation';

export interface CheckpointStatement {
  type: CheckpointType;
  agent: string;
  /** Id of the key that signs (keyId of its public key). */
  key: string;
  /** The chain head the statement vouches for: record `seq` has hash `hash` (seq 0: empty chain). */
  seq: number;
  hash: string;
  /** When the agent signed, nanoseconds since the epoch. */
  timeUnixNano: bigint;
  /** For a key rotation: the key that signs from now on. */
  nextKey?: string;
  nextPublicKey?: string;
}

export interface SignedCheckpoint extends CheckpointStatement {
  /** Ed25519 signature over `checkpointText(statement)`, base64. */
  signature: string;
}

/** The exact bytes (as text) that are signed. */
export function checkpointText(s: CheckpointStatement): string {
  const object: Record<string, string | number> = {
    v: checkpointVersion,
    type: s.type,
    agent: s.agent,
    key: s.key,
    seq: s.seq,
    hash: s.hash,
    time: s.timeUnixNano.toString(),
  };
  if (s.nextKey !== undefined) object.next_key = s.nextKey;
  if (s.nextPublicKey !== undefined) object.next_public_key = s.nextPublicKey;
  return canonicalJson(object);
}

/** A public key as PEM (SPKI) text, or the key object. */
export type PublicKeyInput = string | KeyObject;

function publicKeyObject(key: PublicKeyInput): KeyObject {
  if (typeof key !== 'string') return key;
  try {
    const object = createPublicKey(key);
    if (object.asymmetricKeyType !== 'ed25519') throw new Error(`a ${object.asymmetricKeyType ?? 'unknown'} key, not ed25519`);
    return object;
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_KEY', `the public key is not an Ed25519 key in PEM (SPKI) form: ${(cause as Error).message}`, { cause });
  }
}

/** A key's id: the first 32 hex digits of the SHA-256 of its SPKI DER encoding. */
export function keyId(publicKey: PublicKeyInput): string {
  const der = publicKeyObject(publicKey).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 32);
}

/** The PEM (SPKI) text of a public key, as enrollment registers it. */
export function publicKeyPem(publicKey: PublicKeyInput): string {
  return publicKeyObject(publicKey).export({ type: 'spki', format: 'pem' }).toString();
}

/**
 * The Ed25519 public key that enrollment registers, from its text: one PEM block labelled
 * `PUBLIC KEY` (SPKI), or the base64 of the SPKI DER alone (the two forms the registry holds).
 * Returns its PEM. Anything else throws CIA_ERR_INTEGRITY_KEY with the reason, and never the text,
 * which may be a secret: a private key above all (createPublicKey would quietly derive the public
 * half from one, so the label and the DER type are checked first), a certificate, another algorithm.
 */
export function enrollablePublicKey(text: string): string {
  const trimmed = text.trim();
  if (/PRIVATE KEY/.test(trimmed) || isPrivateKeyDer(base64Der(trimmed))) {
    throw publicKeyTextError('it is a PRIVATE key, which must never leave the agent; give the public half (the PUBLIC KEY block `ci-audit agent keygen` prints, or `openssl pkey -in <key> -pubout`)');
  }
  let der: Buffer | undefined;
  if (trimmed.startsWith('-----BEGIN')) {
    const label = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(trimmed)?.[1];
    if (label !== 'PUBLIC KEY') throw publicKeyTextError(label === undefined ? 'its PEM header is malformed' : `it is a PEM "${label}" block, not "PUBLIC KEY"`);
    const block = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END PUBLIC KEY-----$/.exec(trimmed);
    if (block === null) throw publicKeyTextError('it is not exactly one PEM "PUBLIC KEY" block');
    der = Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64');
  } else {
    der = base64Der(trimmed);
    if (der === undefined) throw publicKeyTextError('it is neither PEM nor base64');
  }
  let object: KeyObject;
  try {
    object = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw publicKeyTextError('it does not hold a SubjectPublicKeyInfo (SPKI) public key');
  }
  if (object.asymmetricKeyType !== 'ed25519') throw publicKeyTextError(`it is a ${object.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return object.export({ type: 'spki', format: 'pem' }).toString();
}

/** The bytes of a text that is only base64 (blanks and line breaks aside); undefined otherwise. */
function base64Der(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

function isPrivateKeyDer(der: Buffer | undefined): boolean {
  if (der === undefined) return false;
  try {
    createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return true;
  } catch {
    return false;
  }
}

function publicKeyTextError(reason: string): CiAuditError {
  return new CiAuditError('CIA_ERR_INTEGRITY_KEY', `not an Ed25519 public key in PEM (SPKI, "-----BEGIN PUBLIC KEY-----") or base64 SPKI DER form: ${reason}`);
}

/** Signs a statement with a private key (PEM PKCS#8 text or key object). */
export function signCheckpoint(statement: CheckpointStatement, privateKey: string | KeyObject): SignedCheckpoint {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const signature = sign(null, Buffer.from(checkpointText(statement), 'utf8'), key).toString('base64');
  return { ...statement, signature };
}

/** True when `signature` is the key's signature over the statement. Never throws on a bad signature. */
export function verifyCheckpoint(checkpoint: SignedCheckpoint, publicKey: PublicKeyInput): boolean {
  let signature: Buffer;
  try {
    signature = Buffer.from(checkpoint.signature, 'base64');
  } catch {
    return false;
  }
  if (signature.length !== 64) return false;
  return verify(null, Buffer.from(checkpointText(checkpoint), 'utf8'), publicKeyObject(publicKey), signature);
}

/**
 * A signed checkpoint as the attributes of the unchained record that carries it (dataset
 * `integrity`, record id `<type>:<key id>:<seq>`, checkpointRecordId); the aggregator reads them back.
 */
export function checkpointAttributes(c: SignedCheckpoint): Record<string, string | number> {
  const attributes: Record<string, string | number> = {
    [recordAttr.dataset]: integrityDataset,
    [recordAttr.recordId]: checkpointRecordId(c.type, c.key, c.seq),
    [checkpointAttr.type]: c.type,
    [checkpointAttr.seq]: c.seq,
    [checkpointAttr.hash]: c.hash,
    [checkpointAttr.time]: c.timeUnixNano.toString(),
    [checkpointAttr.key]: c.key,
    [checkpointAttr.signature]: c.signature,
  };
  if (c.nextKey !== undefined) attributes[checkpointAttr.nextKey] = c.nextKey;
  if (c.nextPublicKey !== undefined) attributes[checkpointAttr.nextPublicKey] = c.nextPublicKey;
  return attributes;
}
