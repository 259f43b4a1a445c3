// A file's identity is its device and inode: it survives renames (rotation by `mv`) and tells a new
// file at an old path from the old one. Both are kept as decimal strings from a bigint stat, since
// inode numbers on some filesystems exceed 2^53. A later issue adds a fingerprint of the first
// bytes, for inodes that are reused after a delete.
import type { BigIntStats } from 'node:fs';

export interface FileIdentity {
  dev: string;
  ino: string;
}

export function identityOf(stats: Pick<BigIntStats, 'dev' | 'ino'>): FileIdentity {
  return { dev: stats.dev.toString(), ino: stats.ino.toString() };
}

/** A map key for an identity. */
export function identityKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}
