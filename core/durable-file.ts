// Replaces a small state file so that a crash at any moment leaves either the old or the new
// content, never a torn file: write a temp file, fsync it, rename it over the old one, fsync the
// folder (the rename is durable only once the directory entry is on disk).
// Agent checkpoints, journald cursors, the agent's credential and the aggregator's registry all go
// through here: one place for the sequence that makes a replacement durable.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Prefix of the temporary files: `<file>.tmp-<pid>-<random>`; a crash can leave one, which readers ignore. */
export function temporaryPrefix(file: string): string {
  return `${file}.tmp-`;
}

function temporaryName(file: string): string {
  return `${temporaryPrefix(file)}${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface DurableWriteOptions {
  /** File mode of the new file. Default: 0600. */
  mode?: number;
  /**
   * Asked after the temp file is on disk, right before the rename: false leaves the old file in
   * place (the temp file is removed). The check and the rename run in the same turn of the event
   * loop (a synchronous rename), so that a writer that interleaves synchronous and asynchronous
   * writes (the chain state) never lets an older write land after a newer one.
   */
  replaceIf?: () => boolean;
}

/**
 * Writes `text` to `file` atomically and durably; a missing folder is created with mode 0700.
 * Resolves true once the new content is in place, false when `replaceIf` declined. Throws the
 * underlying error; callers wrap it with their own code.
 */
export async function writeFileDurably(file: string, text: string | Uint8Array, options: DurableWriteOptions = {}): Promise<boolean> {
  const { mode = 0o600, replaceIf } = options;
  const dir = dirname(file);
  const tmp = temporaryName(file);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(text, typeof text === 'string' ? 'utf8' : null);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (replaceIf === undefined) {
      await rename(tmp, file);
    } else if (replaceIf()) {
      renameSync(tmp, file);
    } else {
      await rm(tmp, { force: true });
      return false;
    }
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    return true;
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** writeFileDurably, blocking: for the rare write that must be on disk before the caller goes on. */
export function writeFileDurablySync(file: string, text: string, mode = 0o600): void {
  const dir = dirname(file);
  const tmp = temporaryName(file);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
