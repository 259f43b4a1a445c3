// Signed checkpoints as verify reads them, from checkpoint documents in Elasticsearch and from
// lines of the aggregator's anchor file, and the keys an agent may sign with: the ones registered
// (or given with --keys) plus every key a valid key_rotation by an already trusted key introduced,
// each valid only for its range of seqs (core/integrity/key-ring.ts).
import { keyId, verifyCheckpoint, type SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import { isChainHash } from '../../core/integrity/chain.ts';
import { KeyRing } from '../../core/integrity/key-ring.ts';
import type { AgentPublicKey } from './keys.ts';
import { valueAt, type Source } from './remap.ts';

export type AttestationOrigin = 'index' | 'anchor';

/** A signed statement about where an agent's chain stood, and where verify read it. */
export interface Attestation {
  origin: AttestationOrigin;
  statement: SignedCheckpoint;
  /** Checkpoint document: its id, index and time; anchor line: its line number. */
  _id?: string;
  _index?: string;
  '@timestamp'?: string;
  line?: number;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function seqOf(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The statement fields in their wire/anchor names; undefined when one is missing or malformed. */
export function statementFrom(fields: Record<string, unknown>, agent: string): SignedCheckpoint | undefined {
  const type = fields.type;
  const seq = seqOf(fields.seq);
  const hash = fields.hash;
  const key = text(fields.key);
  const signature = text(fields.signature);
  const time = fields.time;
  if ((type !== 'checkpoint' && type !== 'key_rotation') || seq === undefined || !isChainHash(hash) || key === undefined || signature === undefined) return undefined;
  if (typeof time !== 'string' || !/^\d{1,20}$/.test(time)) return undefined;
  const statement: SignedCheckpoint = { type, agent, key, seq, hash, timeUnixNano: BigInt(time), signature };
  const nextKey = text(fields.next_key);
  const nextPublicKey = text(fields.next_public_key);
  if (nextKey !== undefined) statement.nextKey = nextKey;
  if (nextPublicKey !== undefined) statement.nextPublicKey = nextPublicKey;
  return statement;
}

/** A checkpoint document's statement (ci_audit.checkpoint.*, agent.id). */
export function attestationFromDocument(hit: { _id?: string | null; _index: string; _source?: Source }): Attestation | { malformed: string; agent: string; where: Pick<Attestation, '_id' | '_index' | '@timestamp'> } {
  const source = hit._source ?? {};
  const agent = text(valueAt(source, 'agent.id')) ?? '';
  const fields = valueAt(source, 'ci_audit.checkpoint');
  const statement = typeof fields === 'object' && fields !== null ? statementFrom(fields as Record<string, unknown>, agent) : undefined;
  const timestamp = text(valueAt(source, '@timestamp'));
  const where = { ...(hit._id == null ? {} : { _id: hit._id }), _index: hit._index, ...(timestamp === undefined ? {} : { '@timestamp': timestamp }) };
  if (statement === undefined) return { malformed: `checkpoint document ${hit._id ?? ''} lacks a well-formed statement (type, seq, hash, time, key, signature)`, agent, where };
  return { origin: 'index', statement, ...where };
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string } | { ok: 'unknown'; reason: string };

/**
 * One agent's trusted keys, each for its range of seqs, growing with valid rotations (statements
 * are checked in sequence order; at one seq, rotations first: ChainChecker#attestation).
 */
export class AgentKeys {
  readonly #ring: KeyRing;

  constructor(publicKeys: readonly AgentPublicKey[]) {
    this.#ring = new KeyRing(
      publicKeys.map((k) => (typeof k === 'string' ? { id: keyId(k), publicKey: k } : { id: keyId(k.publicKey), publicKey: k.publicKey, rotation: k.rotation })),
    );
  }

  get size(): number {
    return this.#ring.size;
  }

  /** Whether the statement's key is valid at its seq (nothing checked, nothing learned). */
  admits(statement: SignedCheckpoint): boolean {
    return this.#ring.lookup(statement.key, statement.seq, statement.type === 'key_rotation' ? statement.nextKey : undefined).kind === 'valid';
  }

  /** Checks the signature; a valid rotation adds its next key. `unknown`: no key to check with at all. */
  check(statement: SignedCheckpoint): SignatureCheck {
    if (this.#ring.size === 0) return { ok: 'unknown', reason: 'no public key is known for this agent (give --registry or --keys)' };
    const found = this.#ring.lookup(statement.key, statement.seq, statement.type === 'key_rotation' ? statement.nextKey : undefined);
    if (found.kind === 'unknown') return { ok: false, reason: `signed by key ${statement.key}, which is neither registered nor introduced by a valid key rotation` };
    if (!verifyCheckpoint(statement, found.publicKey)) return { ok: false, reason: `the signature does not verify with key ${statement.key}` };
    if (found.kind === 'out_of_range') {
      return {
        ok: false,
        reason:
          statement.seq > found.until
            ? `signed by key ${statement.key}, which a key rotation at seq ${found.until} retired: it is valid only up to seq ${found.until}`
            : `signed by key ${statement.key}, which a key rotation introduced at seq ${found.from}: it is valid only from seq ${found.from}`,
      };
    }
    if (statement.type === 'key_rotation') {
      if (statement.nextKey === undefined || statement.nextPublicKey === undefined) return { ok: false, reason: 'a key rotation without next_key and next_public_key' };
      let id: string;
      try {
        id = keyId(statement.nextPublicKey);
      } catch {
        return { ok: false, reason: 'the rotation\'s next_public_key is not an Ed25519 public key' };
      }
      if (id !== statement.nextKey) return { ok: false, reason: `the rotation names key ${statement.nextKey} but its public key has id ${id}` };
      this.#ring.learn({ key: statement.key, seq: statement.seq, nextKey: id, nextPublicKey: statement.nextPublicKey });
    }
    return { ok: true };
  }
}
