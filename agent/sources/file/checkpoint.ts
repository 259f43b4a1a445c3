// Durable read positions of a file source: per file identity (device + inode) the offset just past
// the last line the aggregator acknowledged. One JSON file per source under
// `<state_dir>/checkpoints/<source id>.json`, with a version tag, written atomically: a temporary
// file is written and fsynced, renamed over the old one, and the directory fsynced, so a crash
// leaves either the old or the new checkpoint, never a torn one.
import { readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CiAuditError } from '../../../core/errors.ts';
import { temporaryPrefix, writeFileDurably } from '../../../core/durable-file.ts';
import type { Logger } from '../../../core/logger.ts';
import type { Fingerprint } from './fingerprint.ts';
import { identityKey, type FileIdentity } from './identity.ts';

/**
 * Version of the checkpoint file format; a file with another version is refused, not guessed at.
 * Version 1 (no fingerprint, no generation) is read and upgraded: its fingerprint is taken from
 * the file on the next start.
 */
export const checkpointVersion = 2;

export interface FileCheckpoint extends FileIdentity {
  /** Path the file had when the checkpoint was written (informational: identity decides). */
  path: string;
  /** Offset just past the last acknowledged line. */
  offset: number;
  /** Fingerprint of the file's first bytes; absent in entries upgraded from version 1. */
  fingerprint?: Fingerprint;
  /** Bumped each time the file at this inode was truncated or replaced; part of the record ids. */
  generation: number;
}

interface CheckpointDocument {
  version: typeof checkpointVersion;
  source: string;
  updated_at: string;
  files: FileCheckpoint[];
}

export function checkpointPath(stateDir: string, sourceId: string): string {
  return join(stateDir, 'checkpoints', `${sourceId}.json`);
}

/** Reads a checkpoint file; a missing file is an empty checkpoint (first start). */
export async function readCheckpoints(file: string): Promise<FileCheckpoint[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CiAuditError('CIA_ERR_SOURCE_CHECKPOINT', `cannot read checkpoint ${file}: ${(cause as Error).message}`, {
      cause,
      details: { file },
    });
  }
  const invalid = (why: string): CiAuditError =>
    new CiAuditError(
      'CIA_ERR_SOURCE_CHECKPOINT',
      `checkpoint ${file} ${why}; move it aside to start the source afresh (files are then read per start_at, ` +
        'and lines already shipped are sent again with the same record ids)',
      { details: { file } },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid('is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw invalid('is not a JSON object');
  const version = (doc as { version?: unknown }).version;
  if (version !== checkpointVersion && version !== 1) throw invalid(`has version ${JSON.stringify(version)}, this agent reads version ${checkpointVersion}`);
  const files = (doc as { files?: unknown }).files;
  if (!Array.isArray(files)) throw invalid('has no "files" list');
  return files.map((f: unknown, i) => {
    const e = f as Partial<Record<keyof FileCheckpoint, unknown>>;
    if (
      typeof e.dev !== 'string' ||
      typeof e.ino !== 'string' ||
      typeof e.path !== 'string' ||
      typeof e.offset !== 'number' ||
      !Number.isSafeInteger(e.offset) ||
      e.offset < 0
    ) {
      throw invalid(`has a malformed entry files[${i}]`);
    }
    const generation = e.generation ?? 0;
    if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) throw invalid(`has a malformed generation in files[${i}]`);
    const fp = e.fingerprint as Partial<Fingerprint> | undefined;
    if (fp !== undefined && (typeof fp !== 'object' || fp === null || typeof fp.bytes !== 'number' || typeof fp.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(fp.sha256))) {
      throw invalid(`has a malformed fingerprint in files[${i}]`);
    }
    const entry: FileCheckpoint = { dev: e.dev, ino: e.ino, path: e.path, offset: e.offset, generation };
    if (fp !== undefined) entry.fingerprint = { bytes: fp.bytes!, sha256: fp.sha256! };
    return entry;
  });
}

/** Writes a checkpoint file atomically (temp file, fsync, rename, fsync of the directory). */
export async function writeCheckpoints(file: string, sourceId: string, files: readonly FileCheckpoint[]): Promise<void> {
  const doc: CheckpointDocument = { version: checkpointVersion, source: sourceId, updated_at: new Date().toISOString(), files: [...files] };
  // Serialised before the first await: the store updates its entries in place.
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  try {
    await writeFileDurably(file, text);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_SOURCE_CHECKPOINT', `cannot write checkpoint ${file}: ${(cause as Error).message}`, {
      cause,
      details: { file },
    });
  }
}

/**
 * Removes temporary files of writes that never reached their rename (the agent was killed during a
 * write). The checkpoint itself is untouched by such a write, so nothing is read from them.
 */
async function removeStrayTemps(file: string, logger: Logger): Promise<void> {
  const prefix = basename(temporaryPrefix(file));
  let names: string[];
  try {
    names = await readdir(dirname(file));
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    await rm(join(dirname(file), name), { force: true });
    logger.info({ file: join(dirname(file), name) }, 'removed the temporary file of an interrupted checkpoint write');
  }
}

/** How long a changed checkpoint waits before it is written, by default, in ms. */
export const defaultCheckpointIntervalMs = 1000;

/**
 * The checkpoints of one source, in memory and on disk. `set` updates memory (it runs for every
 * acknowledgement, so it only changes numbers) and schedules a write `intervalMs` later. Writes run
 * one at a time and are coalesced: a write carries every change made before it started. Writing
 * on a timer rather than per batch keeps fsync off the read path (fsyncs occupy the threads that
 * also serve file reads); the cost is that after a SIGKILL up to `intervalMs` of acknowledged lines
 * are sent again, under the same ids. A failed background write is logged once and retried with
 * the next change or `flush`.
 */
export class CheckpointStore {
  readonly file: string;
  #sourceId: string;
  #logger: Logger;
  #entries = new Map<string, FileCheckpoint>();
  #dirty = false;
  #scheduled = false;
  /** Tail of the chain of writes; never rejects. */
  #chain: Promise<void> = Promise.resolve();
  #failing = false;
  #intervalMs: number;

  private constructor(file: string, sourceId: string, logger: Logger, entries: FileCheckpoint[], intervalMs: number) {
    this.file = file;
    this.#sourceId = sourceId;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
    for (const e of entries) this.#entries.set(identityKey(e), e);
  }

  /** Loads the source's checkpoint; rejects with CIA_ERR_SOURCE_CHECKPOINT when it is unreadable or corrupt. */
  static async open(stateDir: string, sourceId: string, logger: Logger, intervalMs = defaultCheckpointIntervalMs): Promise<CheckpointStore> {
    const file = checkpointPath(stateDir, sourceId);
    const entries = await readCheckpoints(file);
    await removeStrayTemps(file, logger);
    return new CheckpointStore(file, sourceId, logger, entries, intervalMs);
  }

  get(id: FileIdentity): FileCheckpoint | undefined {
    return this.#entries.get(identityKey(id));
  }

  entries(): FileCheckpoint[] {
    return [...this.#entries.values()];
  }

  set(id: FileIdentity, path: string, offset: number, fingerprint: Fingerprint, generation: number): void {
    const key = identityKey(id);
    const current = this.#entries.get(key);
    if (current === undefined) {
      this.#entries.set(key, { dev: id.dev, ino: id.ino, path, offset, fingerprint, generation });
    } else {
      if (current.offset === offset && current.path === path && current.generation === generation && current.fingerprint === fingerprint) return;
      // In place: no allocation per acknowledgement. A write serialises the entries synchronously,
      // so a write in progress never sees a half-updated entry.
      current.offset = offset;
      current.path = path;
      current.generation = generation;
      current.fingerprint = fingerprint;
    }
    this.#markDirty();
  }

  /** Forgets one file (drained and acknowledged, and gone from every followed path). */
  delete(id: FileIdentity): void {
    if (this.#entries.delete(identityKey(id))) this.#markDirty();
  }

  /** Forgets the entries of files not in `keep` (identity keys), e.g. files deleted while stopped. */
  retainOnly(keep: ReadonlySet<string>): void {
    for (const key of [...this.#entries.keys()]) {
      if (!keep.has(key)) {
        this.#entries.delete(key);
        this.#markDirty();
      }
    }
  }

  /** Writes pending changes now; rejects with CIA_ERR_SOURCE_CHECKPOINT when the write fails. */
  flush(): Promise<void> {
    const run = this.#chain.then(() => this.#writeIfDirty());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #markDirty(): void {
    this.#dirty = true;
    if (this.#scheduled) return;
    this.#scheduled = true;
    const timer = setTimeout(() => {
      this.#scheduled = false;
      this.flush().then(
        () => {
          if (!this.#failing) return;
          this.#failing = false;
          this.#logger.info({ source: this.#sourceId, file: this.file }, 'checkpoint written again');
        },
        (err: unknown) => {
          if (this.#failing) return;
          this.#failing = true;
          this.#logger.error(
            { code: 'CIA_ERR_SOURCE_CHECKPOINT', source: this.#sourceId, err: (err as Error).message },
            'cannot write checkpoint; retrying with the next acknowledgement (lines after the last written checkpoint are sent again after a restart)',
          );
        },
      );
    }, this.#intervalMs);
    // A pending write must not keep the process alive: close() flushes.
    timer.unref();
  }

  async #writeIfDirty(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      await writeCheckpoints(this.file, this.#sourceId, [...this.#entries.values()]);
    } catch (err) {
      this.#dirty = true;
      throw err;
    }
  }
}
