// The file source: finds files by glob (finder), follows each with a reader, and keeps one
// checkpoint per file identity (checkpoint). Changes are noticed by chokidar watching the
// directories of the patterns, with a modest poll as a fallback for missed events and for
// filesystems where watching does not work (NFS, some container mounts).
//
// Known limitations of this walking skeleton (the sources issue handles them): rotation by rename
// drains the old file only until its `unlink` event; truncation or in-place rewrite is detected and
// logged but not followed; inode reuse after a delete is not told apart (no fingerprint); a line
// without a newline waits forever and its length is not limited; one descriptor per file.
import { watch, type FSWatcher } from 'chokidar';
import type { FileSourceConfig } from '../../../config/schema.ts';
import type { Logger } from '../../../core/logger.ts';
import type { RecordSink, Source, SourceRecord } from '../source.ts';
import { CheckpointStore } from './checkpoint.ts';
import { findFiles, matchesFile, watchPlan, type FileMatcher } from './finder.ts';
import { identityKey } from './identity.ts';
import { FileReader, openFile } from './reader.ts';

export interface FileSourceOptions {
  config: FileSourceConfig;
  agentId: string;
  /** The agent's state folder; checkpoints go to `<stateDir>/checkpoints/<source id>.json`. */
  stateDir: string;
  logger: Logger;
  /** How often every followed file is checked for new bytes and the globs are searched again, in ms. Default: 1000. */
  pollIntervalMs?: number;
}

interface Tail {
  reader: FileReader;
  /** A read loop is running. */
  busy: boolean;
  /** Something changed while the loop ran: read once more. */
  again: boolean;
  /** The path is gone: close the reader after the next read. */
  removed: boolean;
  /** A shrink was already reported. */
  shrinkReported: boolean;
  /** A read error was already reported (reset by a successful read). */
  errorReported: boolean;
}

export class FileSource implements Source {
  readonly id: string;
  #config: FileSourceConfig;
  #agentId: string;
  #stateDir: string;
  #logger: Logger;
  #pollIntervalMs: number;
  #matcher: FileMatcher;

  #sink: RecordSink | undefined;
  #store: CheckpointStore | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  /** Followed files by identity key. */
  #tails = new Map<string, Tail>();
  /** Identity key of the file at each followed path. */
  #byPath = new Map<string, string>();
  /** Discoveries run one after another, so one file is never opened twice. */
  #discovery: Promise<void> = Promise.resolve();
  #loops = new Set<Promise<void>>();
  /** A poll's glob search is running. */
  #finding = false;
  #stopping = false;
  #stopSignal: Promise<void>;
  #signalStop: () => void;
  #stopped: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: FileSourceOptions) {
    this.id = options.config.id;
    this.#config = options.config;
    this.#agentId = options.agentId;
    this.#stateDir = options.stateDir;
    this.#logger = options.logger.child({ source: options.config.id });
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#matcher = { include: options.config.include, exclude: options.config.exclude };
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#stopSignal = promise;
    this.#signalStop = resolve;
  }

  /** Followed files: path, committed offset and read offset. For tests and status output. */
  files(): { path: string; committed: number; readOffset: number }[] {
    return [...this.#tails.values()].map((t) => ({ path: t.reader.path, committed: t.reader.committed, readOffset: t.reader.readOffset }));
  }

  async start(sink: RecordSink): Promise<void> {
    if (this.#sink !== undefined) throw new Error(`file source ${this.id} started twice`);
    this.#sink = sink;
    this.#store = await CheckpointStore.open(this.#stateDir, this.id, this.#logger);

    for (const path of await this.#find()) await this.#track(path, true);
    // Entries of files that are gone are dropped: nothing is left to read from them.
    this.#store.retainOnly(new Set(this.#tails.keys()));

    const plan = watchPlan(this.#config.include);
    const watcher = watch(plan.roots, {
      ignoreInitial: true,
      // Rotation must see the real unlink/add, not a merged `change`.
      atomic: false,
      ...(plan.depth === undefined ? {} : { depth: plan.depth }),
      ignored: (path, stats) => stats?.isFile() === true && !matchesFile(path, this.#matcher),
    });
    this.#watcher = watcher;
    watcher.on('add', (path) => this.#discover(path));
    watcher.on('change', (path) => this.#onChange(path));
    watcher.on('unlink', (path) => this.#onUnlink(path));
    watcher.on('error', (err) => this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', err: String(err) }, 'file watcher error; polling continues'));
    await new Promise<void>((resolve) => watcher.once('ready', resolve));

    this.#poll = setInterval(() => this.#pollOnce(), this.#pollIntervalMs);
    for (const tail of this.#tails.values()) this.#schedule(tail);
    this.#logger.info({ files: this.#tails.size, include: this.#config.include }, 'file source started');
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    this.#signalStop();
    clearInterval(this.#poll);
    await this.#watcher?.close();
    await this.#discovery;
    await Promise.allSettled([...this.#loops]);
  }

  async #close(): Promise<void> {
    await this.stop();
    for (const tail of this.#tails.values()) await tail.reader.close();
    // The final positions came in with the acks of the pipeline's flush.
    await this.#store?.flush();
    this.#logger.info({ files: this.#store?.entries().length ?? 0 }, 'file source closed');
  }

  async #find(): Promise<string[]> {
    try {
      return await findFiles(this.#matcher);
    } catch (err) {
      this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', err: (err as Error).message }, 'cannot search for files');
      return [];
    }
  }

  #discover(path: string): void {
    if (this.#stopping || this.#byPath.has(path) || !matchesFile(path, this.#matcher)) return;
    this.#discovery = this.#discovery.then(async () => {
      if (this.#stopping || this.#byPath.has(path)) return;
      const tail = await this.#track(path, false);
      if (tail !== undefined) this.#schedule(tail);
    });
  }

  /**
   * Starts following the file at `path`. A file known from the checkpoint resumes there; a new
   * file starts at its beginning, or at its end when it was there at start-up and start_at is `end`
   * (files that appear later are always read from their beginning: they are new).
   */
  async #track(path: string, atStartup: boolean): Promise<Tail | undefined> {
    let opened;
    try {
      opened = await openFile(path);
    } catch (err) {
      this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', path, err: (err as Error).message }, 'cannot open file');
      return undefined;
    }
    if (opened === undefined) return undefined;
    const key = identityKey(opened.identity);
    const known = this.#tails.get(key);
    if (known !== undefined) {
      // The same file under another name (renamed, or a hard link): keep the reader we have.
      await opened.handle.close();
      this.#byPath.set(path, key);
      return undefined;
    }
    const store = this.#store!;
    const checkpoint = store.get(opened.identity);
    let offset: number;
    if (checkpoint !== undefined && checkpoint.offset <= opened.size) {
      offset = checkpoint.offset;
    } else if (checkpoint !== undefined) {
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_READ', path, checkpoint: checkpoint.offset, size: opened.size },
        'file is shorter than its checkpoint (truncated while stopped?); reading it from the beginning',
      );
      offset = 0;
    } else {
      offset = atStartup && this.#config.start_at === 'end' ? opened.size : 0;
    }
    const reader = new FileReader({
      path,
      file: opened,
      offset,
      agentId: this.#agentId,
      dataset: this.#config.dataset,
      onCommit: (r, committed) => {
        if (this.#closed === undefined) store.set(r.identity, r.path, committed);
      },
    });
    // Record the start position, so a file started at its end stays started there after a restart.
    store.set(opened.identity, path, offset);
    const tail: Tail = { reader, busy: false, again: false, removed: false, shrinkReported: false, errorReported: false };
    this.#tails.set(key, tail);
    this.#byPath.set(path, key);
    this.#logger.debug({ path, offset, resumed: checkpoint !== undefined }, 'following file');
    return tail;
  }

  #onChange(path: string): void {
    const key = this.#byPath.get(path);
    const tail = key === undefined ? undefined : this.#tails.get(key);
    if (tail === undefined) this.#discover(path);
    else this.#schedule(tail);
  }

  #onUnlink(path: string): void {
    const key = this.#byPath.get(path);
    if (key === undefined) return;
    this.#byPath.delete(path);
    const tail = this.#tails.get(key);
    // Still reachable under another path: keep following it there.
    if (tail === undefined || [...this.#byPath.values()].includes(key)) return;
    // Drain what was written before the delete through the open descriptor, then let go.
    tail.removed = true;
    this.#schedule(tail);
  }

  #pollOnce(): void {
    if (this.#stopping) return;
    for (const tail of this.#tails.values()) this.#schedule(tail);
    if (this.#finding) return;
    this.#finding = true;
    void this.#find().then((paths) => {
      this.#finding = false;
      for (const path of paths) this.#discover(path);
    });
  }

  /** Runs the tail's read loop, or asks the running one to read once more. */
  #schedule(tail: Tail): void {
    if (this.#stopping) return;
    if (tail.busy) {
      tail.again = true;
      return;
    }
    tail.busy = true;
    const loop = this.#readLoop(tail).finally(() => {
      tail.busy = false;
      this.#loops.delete(loop);
    });
    this.#loops.add(loop);
  }

  async #readLoop(tail: Tail): Promise<void> {
    const stopped = (): boolean => this.#stopping;
    const emit = (record: SourceRecord): Promise<void> => Promise.race([this.#sink!.write(record), this.#stopSignal]);
    do {
      tail.again = false;
      try {
        const result = await tail.reader.readAvailable(emit, stopped);
        tail.errorReported = false;
        if (result.shrunk && !tail.shrinkReported) {
          tail.shrinkReported = true;
          this.#logger.warn(
            { code: 'CIA_ERR_SOURCE_READ', path: tail.reader.path, offset: tail.reader.readOffset },
            'file shrank below the read position (truncated or rewritten); truncation is not followed yet, new lines in it are not read',
          );
        }
      } catch (err) {
        if (!tail.errorReported) {
          tail.errorReported = true;
          this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', path: tail.reader.path, err: (err as Error).message }, 'cannot read file; retrying');
        }
        return;
      }
    } while (tail.again && !this.#stopping);
    if (tail.removed && !this.#stopping) {
      // Let go of the file. Acks of its lines still in flight keep moving its checkpoint entry,
      // which is dropped at the next start when the file is not found again.
      this.#tails.delete(identityKey(tail.reader.identity));
      await tail.reader.close();
      this.#logger.debug({ path: tail.reader.path }, 'file removed and drained');
    }
  }
}
