// Durable read positions of a file source: per file identity (device + inode) the offset just past
// the last line the aggregator acknowledged. One JSON file per source under
// `<state_dir>/checkpoints/<source id>.json`, with a version tag, written atomically: a temporary
// file is written and fsynced, renamed over the old one, and the directory fsynced, so a crash
// leaves either the old or the new checkpoint, never a torn one.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CiAuditError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/logger.ts';
import { identityKey, type FileIdentity } from './identity.ts';

/** Version of the checkpoint file format; a file with another version is refused, not guessed at. */
export const checkpointVersion = 1;

export interface FileCheckpoint extends FileIdentity {
  /** Path the file had when the checkpoint was written (informational: identity decides). */
  path: string;
  /** Offset just past the last acknowledged line. */
  offset: number;
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
  if (version !== checkpointVersion) throw invalid(`has version ${JSON.stringify(version)}, this agent reads version ${checkpointVersion}`);
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
    return { dev: e.dev, ino: e.ino, path: e.path, offset: e.offset };
  });
}

/** Writes a checkpoint file atomically (temp file, fsync, rename, fsync of the directory). */
export async function writeCheckpoints(file: string, sourceId: string, files: readonly FileCheckpoint[]): Promise<void> {
  const doc: CheckpointDocument = { version: checkpointVersion, source: sourceId, updated_at: new Date().toISOString(), files: [...files] };
  const dir = dirname(file);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    // The rename is durable only once the directory entry is on disk.
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new CiAuditError('CIA_ERR_SOURCE_CHECKPOINT', `cannot write checkpoint ${file}: ${(cause as Error).message}`, {
      cause,
      details: { file },
    });
  }
}

/**
 * The checkpoints of one source, in memory and on disk. `set` updates memory and schedules a write.
 * Writes run one at a time and are coalesced: a write carries every change made before it started.
 * A failed background write is logged once and retried with the next change or `flush`.
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

  private constructor(file: string, sourceId: string, logger: Logger, entries: FileCheckpoint[]) {
    this.file = file;
    this.#sourceId = sourceId;
    this.#logger = logger;
    for (const e of entries) this.#entries.set(identityKey(e), e);
  }

  /** Loads the source's checkpoint; rejects with CIA_ERR_SOURCE_CHECKPOINT when it is unreadable or corrupt. */
  static async open(stateDir: string, sourceId: string, logger: Logger): Promise<CheckpointStore> {
    const file = checkpointPath(stateDir, sourceId);
    return new CheckpointStore(file, sourceId, logger, await readCheckpoints(file));
  }

  get(id: FileIdentity): FileCheckpoint | undefined {
    return this.#entries.get(identityKey(id));
  }

  entries(): FileCheckpoint[] {
    return [...this.#entries.values()];
  }

  set(id: FileIdentity, path: string, offset: number): void {
    const current = this.#entries.get(identityKey(id));
    if (current !== undefined && current.offset === offset && current.path === path) return;
    this.#entries.set(identityKey(id), { dev: id.dev, ino: id.ino, path, offset });
    this.#markDirty();
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
    // Yield first, so that the acks of one batch end up in one write.
    setImmediate(() => {
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
    });
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
