// Replaces a small state file so that a crash at any moment leaves either the old or the new
// content, never a torn file: write a temp file, fsync it, rename it over the old one, fsync the
// folder (the rename is durable only once the directory entry is on disk).
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `text` to `file` atomically and durably. A crash leaves at most a stray `<file>.tmp-<pid>`, which readers ignore. */
export async function writeFileDurably(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(tmp, 'w', 0o600);
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
