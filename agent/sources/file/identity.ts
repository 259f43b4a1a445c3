// A file's identity: device and inode (they survive renames, so rotation by `mv` keeps the file's
// position) checked against a fingerprint of the first bytes (fingerprint.ts), which tells a new
// file from a deleted one whose inode was reused. Device and inode are decimal strings from a
// bigint stat, since inode numbers on some filesystems exceed 2^53.
import { createHash } from 'node:crypto';
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

/**
 * The part of a record id that names the file contents: agent, device, inode, generation (bumped
 * each time the file at this inode was found truncated or replaced) and the hash of the file's
 * first bytes up to the line (`prefixSha256`). New contents at a reused inode therefore get new
 * ids even when the checkpoint of the old file was already collected.
 */
export function fileKeyOf(agentId: string, id: FileIdentity, generation: number, prefixSha256: string): string {
  // Newline-separated: none of the parts can contain one (agent ids are [A-Za-z0-9._-]).
  return createHash('sha256').update(`${agentId}\n${id.dev}\n${id.ino}\n${generation}\n${prefixSha256}`).digest('hex').slice(0, 32);
}
