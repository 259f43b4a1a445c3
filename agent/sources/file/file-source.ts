// The file source: finds files by glob (finder), follows each with a reader (reader), tells files
// apart by device + inode checked against a fingerprint of the first bytes (identity, fingerprint,
// resume) and keeps one checkpoint per file (checkpoint). Changes are noticed by chokidar watching
// the directories of the patterns, with a poll as a fallback for missed events and for filesystems
// where watching does not work (NFS, some container mounts). docs/sources.md describes every
// rotation case and where data can still be lost.
import { stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import type { FileSourceConfig } from '../../../config/schema.ts';
import type { Logger } from '../../../core/logger.ts';
import { SinkWrites } from '../sink-writes.ts';
import type { RecordSink, Source, SourceRecord, WriteResult } from '../source.ts';
import { CheckpointStore, type FileCheckpoint } from './checkpoint.ts';
import { findFiles, matchesFile, watchPlan, type FileMatcher } from './finder.ts';
import { fileKeyOf, identityKey, identityOf, type FileIdentity } from './identity.ts';
import { FileReader, openFile, type NotRegularKind } from './reader.ts';
import { fileGapRecord } from './record.ts';
import { resumePosition } from './resume.ts';

export interface FileSourceOptions {
  config: FileSourceConfig;
  agentId: string;
  /** The agent's state folder; checkpoints go to `<stateDir>/checkpoints/<source id>.json`. */
  stateDir: string;
  logger: Logger;
  /** Overrides the source's poll_interval_ms (tests). */
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
  /** A read error was already reported (reset by a successful read). */
  errorReported: boolean;
  /** When the file was opened or last gave a line (Date.now()); close_inactive_ms counts from here. */
  activeAt: number;
}

/**
 * A file closed for inactivity (read to its end, all acknowledged, unchanged for
 * close_inactive_ms). Its checkpoint stays; it is opened again once its path shows another size,
 * modification time or identity.
 */
interface Inactive {
  identity: FileIdentity;
  key: string;
  size: bigint;
  mtimeNs: bigint;
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
  /** Files closed for inactivity, by path. */
  #inactive = new Map<string, Inactive>();
  /** Matching paths that are not regular files (FIFOs, sockets, devices), skipped and reported once; forgotten once not found. */
  #notRegular = new Map<string, NotRegularKind>();
  /**
   * Inactive files whose path went away, by identity key, with the order in which they went: their
   * checkpoints are collected by the first poll whose search began after that, unless found again.
   */
  #vanished = new Map<string, { identity: FileIdentity; seq: number }>();
  #vanishSeq = 0;
  /**
   * Files let go once their path went away (drained, acknowledged) that still had a name, by
   * identity key, with their checkpoint (no longer in the store): renamed, maybe to a path that
   * matches include, where they resume at that checkpoint in the same generation instead of from 0.
   * Forgotten by the first poll whose search began after they were let go and found them at no path.
   */
  #departed = new Map<string, { checkpoint: FileCheckpoint; seq: number }>();
  /** Discoveries run one after another, so one file is never opened twice. */
  #discovery: Promise<void> = Promise.resolve();
  #loops = new Set<Promise<void>>();
  /** A poll's glob search is running. */
  #finding = false;
  /** max_open_files was hit and reported; reset when a file is let go (not when one is closed as inactive: a folder of more files than the limit would warn at every turn). */
  #limitReported = false;
  #stopping = false;
  /** Writes waiting for room downstream; released when the source stops. */
  #writes = new SinkWrites();
  #stopped: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  /** The checkpoints were written for the last time: later acks are ignored. */
  #final = false;

  constructor(options: FileSourceOptions) {
    this.id = options.config.id;
    this.#config = options.config;
    this.#agentId = options.agentId;
    this.#stateDir = options.stateDir;
    this.#logger = options.logger.child({ source: options.config.id });
    this.#pollIntervalMs = options.pollIntervalMs ?? options.config.poll_interval_ms;
    this.#matcher = { include: options.config.include, exclude: options.config.exclude };
  }

  /** Followed files: path, committed offset and read offset. For tests and status output. */
  files(): { path: string; committed: number; readOffset: number }[] {
    return [...this.#tails.values()].map((t) => ({ path: t.reader.path, committed: t.reader.committed, readOffset: t.reader.readOffset }));
  }

  async start(sink: RecordSink): Promise<void> {
    if (this.#sink !== undefined) throw new Error(`file source ${this.id} started twice`);
    this.#sink = sink;
    this.#store = await CheckpointStore.open(this.#stateDir, this.id, this.#logger);

    const paths = await this.#find();
    for (const path of paths) await this.#track(path, true);
    await this.#reportVanished(paths);
    // stop() came while starting (a blocked downstream released): no watcher or poll to outlive it.
    if (this.#stopping) return;

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
    if (this.#stopping) return;

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
    this.#writes.releaseAll();
    clearInterval(this.#poll);
    await this.#watcher?.close();
    await this.#discovery;
    await Promise.allSettled([...this.#loops]);
  }

  async #close(): Promise<void> {
    await this.stop();
    for (const tail of this.#tails.values()) await tail.reader.close();
    // The final positions came in with the acks of the pipeline's flush (readers pass them on in a
    // microtask, which has run by now); acks arriving later are ignored.
    this.#final = true;
    await this.#store?.flush();
    this.#logger.info({ files: this.#store?.entries().length ?? 0 }, 'file source closed');
  }

  /**
   * Checkpoints of files that are gone (not found at any path) are collected: nothing is left to
   * read from them. Each is reported first, as a warning and a gap record, since lines written
   * after its checkpoint were never read; the entry is dropped once that record is acknowledged,
   * so a crash before then reports it again rather than never.
   */
  async #reportVanished(paths: readonly string[]): Promise<void> {
    const store = this.#store!;
    // Files found but not opened (max_open_files) are still there: their checkpoints stay.
    const present = new Set(this.#tails.keys());
    for (const path of paths) {
      try {
        present.add(identityKey(identityOf(await stat(path, { bigint: true }))));
      } catch {
        // Gone since the search: its checkpoint is collected like any vanished file's.
      }
    }
    for (const entry of store.entries()) {
      if (present.has(identityKey(entry))) continue;
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_GAP', path: entry.path, offset: entry.offset },
        'a checkpointed file disappeared while the agent was stopped (rotated away and pruned, or deleted); lines written after its checkpoint may be lost',
      );
      const key = fileKeyOf(this.#agentId, entry, entry.generation, entry.fingerprint?.sha256 ?? '');
      const record = fileGapRecord({ dataset: this.#config.dataset, path: entry.path, sourceId: this.id }, key, entry.offset, Date.now(), () =>
        store.delete(entry),
      );
      const room = this.#write(record);
      if (room !== true) await room;
    }
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
    if (this.#stopping || !matchesFile(path, this.#matcher)) return;
    if (this.#byPath.has(path)) {
      // Known path: but is it still the same file? A rename followed at once by a new file at the
      // old name can reach us as a mere `change` (or only through the poll), never as unlink + add.
      this.#discovery = this.#discovery.then(() => this.#checkReplaced(path));
      return;
    }
    if (this.#inactive.has(path)) {
      this.#discovery = this.#discovery.then(() => this.#checkInactive(path));
      return;
    }
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
    const config = this.#config;
    if (this.#tails.size >= config.max_open_files) {
      if (!this.#limitReported) {
        this.#limitReported = true;
        this.#logger.warn(
          { code: 'CIA_ERR_SOURCE_OPEN_FILES', path, max_open_files: config.max_open_files, open: this.#tails.size },
          'max_open_files reached: further files wait until a followed file is let go or closed as inactive (close_inactive_ms); raise max_open_files, or narrow include',
        );
      }
      return undefined;
    }
    let opened;
    try {
      opened = await openFile(path, config.fingerprint_bytes);
    } catch (err) {
      this.#logger.warn({ code: 'CIA_ERR_SOURCE_READ', path, err: (err as Error).message }, 'cannot open file');
      return undefined;
    }
    if ('skipped' in opened) {
      this.#skipNotRegular(path, opened.skipped);
      return undefined;
    }
    this.#notRegular.delete(path);
    const key = identityKey(opened.identity);
    const known = this.#tails.get(key);
    if (known !== undefined) {
      // The same file under another name (renamed, or a hard link): keep the reader we have, and
      // keep it open even if its old name went away first.
      await opened.handle.close();
      this.#byPath.set(path, key);
      known.reader.path = path;
      known.removed = false;
      return undefined;
    }
    const store = this.#store!;
    // A file let go when its old name went away, found under a new one: it goes on where it was.
    const departed = this.#departed.get(key);
    if (departed !== undefined) this.#departed.delete(key);
    const checkpoint = store.get(opened.identity) ?? departed?.checkpoint;
    const decision = resumePosition(checkpoint, opened, config.start_at, atStartup);
    if (decision.reason === 'beyond_eof') {
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_TRUNCATED', path, checkpoint: checkpoint?.offset, size: opened.size, generation: decision.generation },
        'file is shorter than its checkpoint (truncated while stopped); reading it again from the beginning',
      );
    } else if (decision.reason === 'replaced') {
      this.#logger.warn(
        { code: 'CIA_ERR_SOURCE_TRUNCATED', path, checkpoint: checkpoint?.offset, generation: decision.generation },
        'another file now has the inode of a checkpointed file (its first bytes differ); reading it from the beginning',
      );
    }
    const reader = new FileReader({
      path,
      file: opened,
      offset: decision.offset,
      generation: decision.generation,
      agentId: this.#agentId,
      dataset: config.dataset,
      fingerprintBytes: config.fingerprint_bytes,
      maxLineBytes: config.max_line_bytes,
      overLong: config.long_lines,
      partialLineTimeoutMs: config.partial_line_timeout_ms,
      ...(config.multiline === undefined
        ? {}
        : {
            multiline: {
              startPattern: new RegExp(config.multiline.start_pattern),
              negate: config.multiline.negate,
              maxLines: config.multiline.max_lines,
              maxBytes: config.multiline.max_bytes,
              timeoutMs: config.multiline.timeout_ms,
            },
          }),
      onCommit: (r, committed) => {
        // Not for a reader let go meanwhile: its checkpoint was collected (or kept at its end, if inactive).
        if (!this.#final && this.#tails.get(identityKey(r.identity))?.reader === r) store.set(r.identity, r.path, committed, r.fingerprint, r.generation);
      },
    });
    // Record the start position, so a file started at its end stays started there after a restart.
    store.set(opened.identity, path, decision.offset, reader.fingerprint, decision.generation);
    const tail: Tail = { reader, busy: false, again: false, removed: false, errorReported: false, activeAt: Date.now() };
    this.#tails.set(key, tail);
    this.#byPath.set(path, key);
    this.#logger.debug({ path, offset: decision.offset, generation: decision.generation, resumed: checkpoint !== undefined }, 'following file');
    return tail;
  }

  /**
   * A matching path that is not a regular file is never read: a FIFO would hold the source until a
   * writer came, a device could be read without end. Warned once per path (and kind); a directory,
   * which a pattern such as `dir/**` matches as a matter of course, only at debug level.
   */
  #skipNotRegular(path: string, kind: NotRegularKind): void {
    if (this.#notRegular.get(path) === kind) return;
    this.#notRegular.set(path, kind);
    if (kind === 'directory') {
      this.#logger.debug({ path }, 'a directory matches include; skipped');
      return;
    }
    this.#logger.warn(
      { code: 'CIA_ERR_SOURCE_NOT_REGULAR', path, kind },
      `${path} is a ${kind}, not a regular file: skipped, never opened (only regular files are tailed); add it to exclude or narrow include`,
    );
  }

  #onChange(path: string): void {
    const key = this.#byPath.get(path);
    const tail = key === undefined ? undefined : this.#tails.get(key);
    if (tail !== undefined) this.#schedule(tail);
    this.#discover(path);
  }

  /** When another file now stands at a followed path, let the old one drain and follow the new one. */
  async #checkReplaced(path: string): Promise<void> {
    const key = this.#byPath.get(path);
    if (this.#stopping || key === undefined) return;
    let current: string;
    try {
      current = identityKey(identityOf(await stat(path, { bigint: true })));
    } catch {
      return; // gone: the unlink event (or the next poll) handles it
    }
    if (current === key) return;
    this.#onUnlink(path);
    const tail = await this.#track(path, false);
    if (tail !== undefined) this.#schedule(tail);
  }

  /** An inactive file's path was seen again (event or poll): open it again if it changed. */
  async #checkInactive(path: string): Promise<void> {
    const entry = this.#inactive.get(path);
    if (this.#stopping || entry === undefined) return;
    let stats;
    try {
      stats = await stat(path, { bigint: true });
    } catch {
      return; // gone: the unlink event (or the next poll) collects it
    }
    const key = identityKey(identityOf(stats));
    if (key === entry.key && stats.size === entry.size && stats.mtimeNs === entry.mtimeNs) return;
    this.#inactive.delete(path);
    // Another file at the path: the old one was renamed or deleted; collect its checkpoint unless found again.
    if (key !== entry.key) this.#vanished.set(entry.key, { identity: entry.identity, seq: ++this.#vanishSeq });
    // Resumes at the checkpoint when device, inode and first bytes still match (resume.ts). At the
    // limit, the path waits like any file not yet opened, its checkpoint kept.
    const tail = await this.#track(path, false);
    if (tail !== undefined) this.#schedule(tail);
  }

  /**
   * Checkpoints of inactive files whose path went away, unless the file was found at another path
   * meanwhile (renamed within include): nothing more can be read from them. Runs after a poll's
   * discoveries, so a renamed file was tracked (or, at the limit, is among `paths`) by then.
   */
  async #collectVanished(paths: readonly string[], upTo: number): Promise<void> {
    if (this.#vanished.size === 0 && this.#departed.size === 0) return;
    const found = new Set([...this.#tails.keys(), ...[...this.#inactive.values()].map((e) => e.key)]);
    for (const path of paths) {
      if (this.#byPath.has(path) || this.#inactive.has(path)) continue;
      try {
        found.add(identityKey(identityOf(await stat(path, { bigint: true }))));
      } catch {
        // gone as well
      }
    }
    for (const [key, gone] of this.#vanished) {
      // Gone after this search began: its new name may not be in `paths` yet; the next poll decides.
      if (gone.seq > upTo) continue;
      this.#vanished.delete(key);
      if (!found.has(key)) this.#store?.delete(gone.identity);
    }
    // Found at a path not followed yet (max_open_files): kept until that path is tracked.
    for (const [key, gone] of this.#departed) if (gone.seq <= upTo && !found.has(key)) this.#departed.delete(key);
  }

  #onUnlink(path: string): void {
    const inactive = this.#inactive.get(path);
    if (inactive !== undefined) {
      this.#inactive.delete(path);
      this.#vanished.set(inactive.key, { identity: inactive.identity, seq: ++this.#vanishSeq });
      return;
    }
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
    const upTo = this.#vanishSeq;
    void this.#find().then((paths) => {
      for (const path of paths) this.#discover(path);
      const found = new Set(paths);
      for (const path of this.#notRegular.keys()) if (!found.has(path)) this.#notRegular.delete(path);
      for (const path of this.#inactive.keys()) {
        // Gone without an unlink event (missed, or a filesystem without events).
        if (!found.has(path)) this.#onUnlink(path);
      }
      // The next search waits for this one's checks (a stat per known path), so that with many
      // files and a short interval the discovery queue cannot grow without end.
      this.#discovery = this.#discovery
        .then(() => this.#collectVanished(paths, upTo))
        .then(() => {
          this.#finding = false;
        });
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

  #write(record: SourceRecord): WriteResult {
    return this.#writes.write(this.#sink!, record);
  }

  async #readLoop(tail: Tail): Promise<void> {
    const stopped = (): boolean => this.#stopping;
    const emit = (record: SourceRecord): WriteResult => this.#write(record);
    let idle: boolean;
    do {
      tail.again = false;
      try {
        const result = await tail.reader.readAvailable(emit, stopped);
        tail.errorReported = false;
        idle = result.lines === 0;
        if (!idle || result.restarted !== undefined) tail.activeAt = Date.now();
        if (result.restarted !== undefined) {
          this.#logger.warn(
            { code: 'CIA_ERR_SOURCE_TRUNCATED', path: tail.reader.path, ...result.restarted, generation: tail.reader.generation },
            result.restarted.reason === 'truncated'
              ? 'file shrank below the read position (truncated, e.g. copytruncate); reading it again from the beginning'
              : 'the first bytes of the file changed (rewritten in place); reading it again from the beginning',
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
    const reader = tail.reader;
    // A file whose name is gone (rotated out of the patterns, or deleted) is let go only once it
    // was read to its end, its last partial line went out and every line was acknowledged: the
    // open descriptor keeps its bytes readable however long downstream is blocked.
    if (tail.removed && !this.#stopping && idle && reader.pendingBytes === 0 && reader.outstanding === 0) {
      const key = identityKey(reader.identity);
      this.#tails.delete(key);
      this.#store?.delete(reader.identity);
      this.#limitReported = false;
      // Set at once, before any await: a new name of the file may be tracked meanwhile.
      const checkpoint: FileCheckpoint = { ...reader.identity, path: reader.path, offset: reader.committed, fingerprint: reader.fingerprint, generation: reader.generation };
      this.#departed.set(key, { checkpoint, seq: ++this.#vanishSeq });
      // Deleted (no name left): nothing can find it again, and its inode may be reused once closed.
      const links = await reader.links().catch(() => 0);
      if (links === 0 && this.#departed.get(key)?.checkpoint === checkpoint) this.#departed.delete(key);
      await reader.close();
      this.#logger.debug({ path: reader.path }, 'file removed, drained and acknowledged; let go');
    } else if (
      !tail.removed &&
      !this.#stopping &&
      idle &&
      reader.pendingBytes === 0 &&
      reader.outstanding === 0 &&
      Date.now() - tail.activeAt >= this.#config.close_inactive_ms
    ) {
      await this.#closeInactive(tail);
    }
  }

  /**
   * Closes a file read to its end and acknowledged that did not change for close_inactive_ms, so
   * files waiting for max_open_files get their turn. Its checkpoint (at its end) stays; the size
   * and modification time kept here tell the poll when to open it again.
   */
  async #closeInactive(tail: Tail): Promise<void> {
    const reader = tail.reader;
    let stats;
    try {
      stats = await stat(reader.path, { bigint: true });
    } catch {
      return; // gone: the unlink event lets it go once drained
    }
    const key = identityKey(identityOf(stats));
    // Grown since the read, or another file at the path: not inactive.
    if (this.#stopping || key !== identityKey(reader.identity) || Number(stats.size) !== reader.readOffset || reader.committed !== reader.readOffset) return;
    this.#tails.delete(key);
    for (const [path, k] of this.#byPath) if (k === key) this.#byPath.delete(path);
    this.#inactive.set(reader.path, { identity: reader.identity, key, size: stats.size, mtimeNs: stats.mtimeNs });
    await reader.close();
    this.#logger.debug({ path: reader.path, offset: reader.committed }, 'file inactive: closed, checkpoint kept');
  }
}
