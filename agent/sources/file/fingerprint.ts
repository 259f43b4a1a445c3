// The content half of a file's identity: a SHA-256 of the file's first bytes (1 KiB by default).
// Device + inode alone cannot tell a new file from a deleted one whose inode the filesystem handed
// out again; the first bytes can. A file shorter than the fingerprint size has a shorter
// fingerprint that grows with the file (as the OpenTelemetry Collector does): a stored fingerprint
// matches a file when it is the hash of the file's first `bytes` bytes.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

export interface Fingerprint {
  /** How many leading bytes were hashed (less than the fingerprint size for a short file). */
  bytes: number;
  /** Hex SHA-256 of those bytes. */
  sha256: string;
}

export const defaultFingerprintBytes = 1024;

export function fingerprintOf(prefix: Uint8Array): Fingerprint {
  return { bytes: prefix.length, sha256: createHash('sha256').update(prefix).digest('hex') };
}

/** True when `stored` fingerprints the start of the file whose first bytes are `prefix`. */
export function fingerprintMatches(stored: Fingerprint, prefix: Uint8Array): boolean {
  if (prefix.length < stored.bytes) return false;
  return fingerprintOf(prefix.subarray(0, stored.bytes)).sha256 === stored.sha256;
}

/** Reads the first `size` bytes (at most) of an open file. */
export async function readPrefix(handle: FileHandle, size: number): Promise<Buffer> {
  const buffer = Buffer.alloc(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(buffer, filled, size - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
