// Replaces a small state file so that a crash at any moment leaves either the old or the new
// content, never a torn file: write a temp file, fsync it, rename it over the old one, fsync the
// folder (the rename is durable only once the directory entry is on disk).
// Agent checkpoints, journald cursors, the agent's credential and the aggregator's registry all go
// through here: one place for the sequence that makes a replacement durable.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Prefix of the temporary files: `<file>.tmp-<pid>-<random>`; a crash can leave one, which readers ignore. */
export function temporaryPrefix(file: string): string {
  return `${file}.tmp-`;
}

/**
 * Writes `text` to `file` atomically and durably, with `mode` (default 0600); a missing folder is
 * created with mode 0700. Throws the underlying error; callers wrap it with their own code.
 */
export async function writeFileDurably(file: string, text: string, mode = 0o600): Promise<void> {
  const dir = dirname(file);
  const tmp = `${temporaryPrefix(file)}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
