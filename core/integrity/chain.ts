// The hash chain of DESIGN.md: hash_n = SHA-256(hash_{n-1} || canonical(record_n)), with the raw
// 32-byte previous hash and the canonical record's UTF-8 bytes. The first record of a chain links
// to the genesis hash (32 zero bytes). Hashes travel and are stored as lower-case hex.
import { createHash, hash } from 'node:crypto';
import { canonicalRecordBytes, type AttestedRecord } from './record.ts';

/** The previous hash of an agent's first record. */
export const genesisHash = '0'.repeat(64);

const hexHash = /^[0-9a-f]{64}$/;

export function isChainHash(value: unknown): value is string {
  return typeof value === 'string' && hexHash.test(value);
}

/** hash_n from hash_{n-1} (hex) and the canonical text of record n. */
export function chainHash(previousHex: string, canonical: string): string {
  // One buffer and the one-shot hash, not a Hash object fed twice: a quarter less per record, for
  // every record on the agent and again on the aggregator. The buffer is reused up to 64 KiB.
  const most = 32 + canonical.length * 3;
  const buffer = most <= hashScratch.length ? hashScratch : Buffer.allocUnsafe(most);
  // Text that is not 64 hex digits hashes as Buffer.from(text, 'hex') reads it, as it always did.
  if (buffer.write(previousHex, 0, 32, 'hex') !== 32 || previousHex.length !== 64) {
    return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(canonical, 'utf8').digest('hex');
  }
  const length = 32 + buffer.write(canonical, 32, 'utf8');
  return hash('sha256', buffer.subarray(0, length), 'hex');
}

const hashScratch = Buffer.allocUnsafe(64 * 1024);

/**
 * chainHash(previousHex, canonicalRecord(record, resourceText)) without the canonical text as a
 * string: the record is written as UTF-8 right after the previous hash's bytes and hashed in one
 * shot (the agent, for every record).
 */
export function chainHashOfRecord(previousHex: string, record: AttestedRecord, resourceText?: string): string {
  return hashAfterPrevious(previousHex, canonicalRecordBytes(record, resourceText, 32));
}

/**
 * chainHashOfRecord, and the canonical text it hashed (canonicalRecord(record, resourceText)), from
 * one writing of the text: the aggregator, which stores the text, wrote it as a string and then
 * chainHash encoded that string to UTF-8 again to hash it.
 */
export function chainHashAndText(previousHex: string, record: AttestedRecord, resourceText?: string): { hash: string; canonical: string } {
  const bytes = canonicalRecordBytes(record, resourceText, 32);
  // The writer's bytes are ASCII and UTF-8 encodings of strings (a lone surrogate already U+FFFD),
  // so this text encodes back to exactly them: the hash is chainHash(previousHex, canonical).
  const canonical = bytes.toString('utf8', 32);
  return { hash: hashAfterPrevious(previousHex, bytes), canonical };
}

/** SHA-256 of `bytes`, whose first 32 bytes are left for the previous hash: they are filled in here. */
function hashAfterPrevious(previousHex: string, bytes: Buffer): string {
  if (bytes.write(previousHex, 0, 32, 'hex') !== 32 || previousHex.length !== 64) {
    return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(bytes.subarray(32)).digest('hex');
  }
  return hash('sha256', bytes, 'hex');
}

/** Where a chain stands: the last record's sequence number and hash (seq 0 + genesis: empty chain). */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const emptyChainHead: ChainHead = { seq: 0, hash: genesisHash };
