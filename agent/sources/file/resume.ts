// Where to start reading a file that was just opened: a pure decision over the checkpoint entry of
// its device + inode, the file's first bytes and size, and the start_at option.
import type { FileCheckpoint } from './checkpoint.ts';
import { fingerprintMatches } from './fingerprint.ts';

export interface ResumeDecision {
  offset: number;
  generation: number;
  /**
   * Why the checkpoint was not used as it is: `replaced` (another file now has this inode: its
   * first bytes differ), `beyond_eof` (the file is shorter than the checkpoint: truncated while the
   * agent was stopped). Both read the file from the start, in a new generation.
   */
  reason?: 'replaced' | 'beyond_eof';
}

export function resumePosition(
  checkpoint: FileCheckpoint | undefined,
  file: { prefix: Uint8Array; size: number },
  startAt: 'beginning' | 'end',
  atStartup: boolean,
): ResumeDecision {
  // start_at `end` applies to files present when the agent starts; a file that appears later is new
  // and read from its beginning.
  const fresh = atStartup && startAt === 'end' ? file.size : 0;
  if (checkpoint === undefined) return { offset: fresh, generation: 0 };
  if (checkpoint.fingerprint !== undefined && !fingerprintMatches(checkpoint.fingerprint, file.prefix)) {
    return { offset: 0, generation: checkpoint.generation + 1, reason: 'replaced' };
  }
  if (checkpoint.offset > file.size) return { offset: 0, generation: checkpoint.generation + 1, reason: 'beyond_eof' };
  return { offset: checkpoint.offset, generation: checkpoint.generation };
}
