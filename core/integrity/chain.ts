// The hash chain of DESIGN.md: hash_n = SHA-256(hash_{n-1} || canonical(record_n)), with the raw
// 32-byte previous hash and the canonical record's UTF-8 bytes. The first record of a chain links
// to the genesis hash (32 zero bytes). Hashes travel and are stored as lower-case hex.
import { createHash } from 'node:crypto';

/** The previous hash of an agent's first record. */
export const genesisHash = '0'.repeat(64);

const hexHash = /^[0-9a-f]{64}$/;

export function isChainHash(value: unknown): value is string {
  return typeof value === 'string' && hexHash.test(value);
}

/** hash_n from hash_{n-1} (hex) and the canonical text of record n. */
export function chainHash(previousHex: string, canonical: string): string {
  return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(canonical, 'utf8').digest('hex');
}

/** Where a chain stands: the last record's sequence number and hash (seq 0 + genesis: empty chain). */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const emptyChainHead: ChainHead = { seq: 0, hash: genesisHash };
