// Which key may sign for which sequence numbers (docs/integrity.md, "Keys"). A key is valid for a
// range of seqs: an enrolled (or given) key from seq 0, a key a key_rotation introduced from that
// rotation's seq; a key a rotation retired up to and including that rotation's seq. After K0 -> K1
// at seq S, K0 signs for seqs <= S and K1 for seqs >= S (both sign at S: the last checkpoint before
// the rotation and the first after it stand at the same head). A pure structure, shared by the
// aggregator (aggregator/verify/checkpoint-check.ts) and `ci-audit verify` (admin/verify/).
//
// Validity follows the seqs, not the order the statements were learned in: the rotations a ring
// starts with are replayed in seq order, and a rotation learned later retires its key only for the
// seqs after it. Rotations by one key are expected to name one next key: the agent keeps a waiting
// key until it switched to it, and after a crash announces the same rotation again, at a later head.
// Such a repeat (the retired key naming the key it was retired to) is accepted and changes nothing.

/** A key an agent may sign with, as the registry (or a keys file) gives it. */
export interface TrustedKey {
  /** Key id (keyId of the public key). */
  id: string;
  /** PEM (SPKI). */
  publicKey: string;
  /**
   * For a key learned from a valid key_rotation: the key that signed the rotation and the seq it
   * vouched for (the registry's `rotated_from` and `rotated_at_seq`). Absent: valid from seq 0.
   */
  rotation?: { from: string; seq: number } | undefined;
}

export type KeyLookup =
  | { kind: 'valid'; publicKey: string }
  | { kind: 'unknown' }
  /** The key is known, but not for this seq: before a rotation introduced it, or after one retired it. */
  | { kind: 'out_of_range'; publicKey: string; from: number; until: number };

interface Range {
  publicKey: string;
  from: number;
  /** Last seq it may sign for; Infinity until a rotation retires it. */
  until: number;
  /** The key the rotation that retired it introduced. */
  retiredTo?: string | undefined;
}

/** A rotation as the ring needs it: signer, seq, next key. */
export interface RotationStatement {
  key: string;
  seq: number;
  nextKey: string;
  nextPublicKey: string;
}

export class KeyRing {
  readonly #keys = new Map<string, Range>();
  /** Ids of given rotated keys whose rotation is not valid in seq order (left untrusted). */
  readonly ignored: string[] = [];

  constructor(keys: readonly TrustedKey[] = []) {
    const rotated: Array<{ key: TrustedKey; rotation: { from: string; seq: number } }> = [];
    for (const key of keys) {
      if (key.rotation === undefined) this.#widen(key.id, key.publicKey, 0);
      else rotated.push({ key, rotation: key.rotation });
    }
    rotated.sort((a, b) => a.rotation.seq - b.rotation.seq);
    // Seq by seq; at one seq, until nothing more applies (K0 -> K1 and K1 -> K2 may share a seq).
    for (let i = 0; i < rotated.length; ) {
      let end = i;
      while (end < rotated.length && rotated[end]!.rotation.seq === rotated[i]!.rotation.seq) end++;
      let group = rotated.slice(i, end);
      for (let progress = true; progress; ) {
        progress = false;
        const rest: typeof group = [];
        for (const r of group) {
          const statement = { key: r.rotation.from, seq: r.rotation.seq, nextKey: r.key.id, nextPublicKey: r.key.publicKey };
          if (this.lookup(statement.key, statement.seq, statement.nextKey).kind === 'valid') {
            this.learn(statement);
            progress = true;
          } else {
            rest.push(r);
          }
        }
        group = rest;
      }
      for (const r of group) this.ignored.push(r.key.id);
      i = end;
    }
  }

  get size(): number {
    return this.#keys.size;
  }

  /** The ids of the keys held, whatever their range. */
  ids(): string[] {
    return [...this.#keys.keys()];
  }

  /**
   * Whether `key` may sign a statement at `seq`. `nextKey`: for a key_rotation, the key it names (a
   * retired key repeating its own rotation is valid).
   */
  lookup(key: string, seq: number, nextKey?: string): KeyLookup {
    const range = this.#keys.get(key);
    if (range === undefined) return { kind: 'unknown' };
    if (seq >= range.from && seq <= range.until) return { kind: 'valid', publicKey: range.publicKey };
    if (seq > range.until && nextKey !== undefined && nextKey === range.retiredTo) return { kind: 'valid', publicKey: range.publicKey };
    return { kind: 'out_of_range', publicKey: range.publicKey, from: range.from, until: range.until };
  }

  /** Takes in a key_rotation whose signature verified with a key valid at its seq (lookup). */
  learn(r: RotationStatement): void {
    const signer = this.#keys.get(r.key);
    if (signer !== undefined && r.seq < signer.until) {
      signer.until = r.seq;
      signer.retiredTo = r.nextKey;
    }
    this.#widen(r.nextKey, r.nextPublicKey, r.seq);
  }

  #widen(id: string, publicKey: string, from: number): void {
    const range = this.#keys.get(id);
    if (range === undefined) this.#keys.set(id, { publicKey, from, until: Infinity });
    else range.from = Math.min(range.from, from);
  }
}
