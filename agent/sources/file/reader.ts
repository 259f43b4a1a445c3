// Follows one file: keeps it open (so a renamed or deleted file can still be drained), reads the
// bytes past the last read position, splits them into lines and hands each line on with an ack that
// feeds the file's offset tracker. The read position runs ahead of the committed (acknowledged)
// offset; only the committed offset is ever written to the checkpoint.
//
// Truncation (copytruncate, `> file`) and in-place replacement are found by the size falling below
// the read position or by the first bytes no longer matching the fingerprint: the file is then read
// again from the start under a new generation, so its new lines get new record ids.
import { createHash } from 'node:crypto';
import { constants, type BigIntStats, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { SourceRecord, WriteResult } from '../source.ts';
import { fingerprintOf, readPrefix, type Fingerprint } from './fingerprint.ts';
import { fileKeyOf, identityOf, type FileIdentity } from './identity.ts';
import { LineSplitter, type Line, type OverLongPolicy } from './line-splitter.ts';
import { MultilineJoiner, type MultilineOptions } from './multiline.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { fileRecord } from './record.ts';

/**
 * Bytes read at a time. The lines of a chunk are cut from one string decoded for the whole chunk
 * (line-splitter.ts), which lives, with the chunk's Line objects, until its last line is handed on:
 * at 256 KiB the strings went to the large-object space and stayed there until a full GC. At 64 KiB
 * (about 430 auth lines, most of the young generation's 4 MB of allocation once parsed and chained)
 * nearly every scavenge found a chunk half done, and one that waited for room in the queue was
 * promoted; at 16 KiB, `bench/ship.ts --agent` promoted 55-61 -> 22 MB per 200,000 lines, with
 * half the full GCs.
 */
const READ_CHUNK_BYTES = 16 * 1024;

/**
 * Read buffers shared by all readers. A buffer is needed only from a read until its bytes are
 * split (the splitter copies what it keeps and decodes lines into strings), so a thousand open
 * files do not each hold one; a few are kept for reuse.
 */
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 4;

function takeBuffer(): Buffer {
  return spareBuffers.pop() ?? Buffer.allocUnsafe(READ_CHUNK_BYTES);
}

function giveBack(buffer: Buffer): void {
  if (spareBuffers.length < MAX_SPARE_BUFFERS) spareBuffers.push(buffer);
}

export interface OpenedFile {
  handle: FileHandle;
  identity: FileIdentity;
  size: number;
  /** The file's first bytes, up to the fingerprint size. */
  prefix: Buffer;
}

/** What a path that is not a regular file is; only regular files are tailed. */
export type NotRegularKind = 'directory' | 'FIFO' | 'socket' | 'character device' | 'block device' | 'unknown file type';

/** A path skipped by `openFile`: not a regular file. */
export interface SkippedFile {
  skipped: NotRegularKind;
}

function notRegularKind(stats: Stats | BigIntStats): NotRegularKind | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return 'directory';
  if (stats.isFIFO()) return 'FIFO';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  return 'unknown file type';
}

/**
 * Opens a regular file and stats the handle, so the identity is that of the file actually opened.
 * Anything else is skipped, not read: opening a FIFO for reading waits for a writer (forever, if
 * none comes), and opening a device can have effects of its own. The path is looked at first, so
 * such a file is not opened at all; the open itself does not block either (O_NONBLOCK, which reads
 * of a regular file ignore), and the handle is checked again, since the path may have been replaced
 * in between.
 */
export async function openFile(path: string, fingerprintBytes: number): Promise<OpenedFile | SkippedFile> {
  const before = notRegularKind(await stat(path));
  if (before !== undefined) return { skipped: before };
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  let opened: OpenedFile | SkippedFile;
  try {
    const stats = await handle.stat({ bigint: true });
    const kind = notRegularKind(stats);
    if (kind === undefined) {
      const size = Number(stats.size);
      return { handle, identity: identityOf(stats), size, prefix: await readPrefix(handle, Math.min(size, fingerprintBytes)) };
    }
    opened = { skipped: kind };
  } catch (err) {
    await handle.close();
    throw err;
  }
  await handle.close();
  return opened;
}

export interface FileReaderOptions {
  path: string;
  file: OpenedFile;
  /** Offset to start reading at: the checkpoint, or the start position for a new file. */
  offset: number;
  /** Generation of the file at its inode (from the checkpoint; 0 for a file never seen). */
  generation: number;
  agentId: string;
  dataset: string;
  fingerprintBytes: number;
  maxLineBytes: number;
  overLong: OverLongPolicy;
  /** A line without newline is emitted (flagged partial) after this long without new bytes, in ms. */
  partialLineTimeoutMs: number;
  /** Join lines into multiline records; a record being collected is emitted after `timeoutMs` without a new line. */
  multiline?: MultilineOptions & { timeoutMs: number };
  /** Called when the committed (acknowledged, contiguous) offset moves, or the generation changes. */
  onCommit: (reader: FileReader, committed: number) => void;
}

/** What `readAvailable` found. */
export interface ReadResult {
  /** Lines emitted. */
  lines: number;
  /** Set when the file was found truncated or replaced and is being read again from the start. */
  restarted?: { reason: 'truncated' | 'replaced'; readOffset: number; size: number };
}

export class FileReader {
  /** The path the file was last seen at. */
  path: string;
  readonly identity: FileIdentity;
  #handle: FileHandle;
  #options: FileReaderOptions;
  #generation: number;
  #splitter: LineSplitter;
  #tracker: OffsetTracker;
  /** The file's first bytes as far as known, up to the fingerprint size. */
  #head: Buffer;
  #fingerprint: Fingerprint;
  /** File key for lines ending at or past the fingerprint size (the common case), once known. */
  #fullKey: string | undefined;
  /** When the pending partial line last grew. */
  #partialSince = 0;
  #joiner: MultilineJoiner | undefined;
  /** When the multiline record being collected last got a line. */
  #joinedAt = 0;
  #closed = false;
  /** A checkpoint update for the acks of this tick is scheduled. */
  #commitQueued = false;

  constructor(options: FileReaderOptions) {
    this.path = options.path;
    this.identity = options.file.identity;
    this.#handle = options.file.handle;
    this.#options = options;
    this.#generation = options.generation;
    this.#head = options.file.prefix;
    this.#fingerprint = fingerprintOf(this.#head);
    this.#splitter = this.#newSplitter(options.offset);
    this.#tracker = this.#newTracker(options.offset);
    if (options.multiline !== undefined) this.#joiner = new MultilineJoiner(options.multiline);
  }

  /** Offset just past the last acknowledged line. */
  get committed(): number {
    return this.#tracker.committed;
  }

  /** Offset of the next byte to read. */
  get readOffset(): number {
    return this.#splitter.nextOffset;
  }

  /** Lines emitted and not yet acknowledged. */
  get outstanding(): number {
    return this.#tracker.outstanding;
  }

  get generation(): number {
    return this.#generation;
  }

  get fingerprint(): Fingerprint {
    return this.#fingerprint;
  }

  /** Bytes read and not emitted yet: a line waiting for its newline, a multiline record being collected. */
  get pendingBytes(): number {
    return this.#splitter.partialLength + (this.#joiner?.pendingBytes ?? 0);
  }

  /** The records a line completes: the line itself, or what the multiline joiner gives back. */
  #join(line: Line, now: number): Line[] {
    if (this.#joiner === undefined) return [line];
    this.#joinedAt = now;
    return this.#joiner.push(line);
  }

  #newSplitter(offset: number): LineSplitter {
    return new LineSplitter(offset, { maxLineBytes: this.#options.maxLineBytes, overLong: this.#options.overLong });
  }

  #newTracker(offset: number): OffsetTracker {
    const tracker: OffsetTracker = new OffsetTracker(offset, () => {
      // Acks come a batch at a time, synchronously: the checkpoint is updated once for the batch,
      // in a microtask, instead of once per line (that was a tenth of the hand-off's cost).
      if (this.#commitQueued) return;
      this.#commitQueued = true;
      queueMicrotask(() => {
        this.#commitQueued = false;
        // Acks of lines from before a truncation must not move the new generation's checkpoint.
        if (tracker === this.#tracker) this.#options.onCommit(this, tracker.committed);
      });
    });
    return tracker;
  }

  /**
   * Reads up to the current end of the file and emits each complete line, awaiting `emit` (the
   * backpressure). Stops early, between lines, when `stopped()` turns true; the reader must not be
   * used after that, as the rest of the chunk it had read is not emitted.
   * `flushPartial` emits a pending line without newline even before its timeout (file let go).
   */
  async readAvailable(emit: (record: SourceRecord) => WriteResult, stopped: () => boolean, flushPartial = false): Promise<ReadResult> {
    const result: ReadResult = { lines: 0 };
    if (this.#closed) return result;
    const size = Number((await this.#handle.stat({ bigint: true })).size);
    const restart = await this.#checkReplaced(size);
    if (restart !== undefined) result.restarted = restart;
    const before = this.#splitter.nextOffset;
    while (!this.#closed && !stopped()) {
      const position = this.#splitter.nextOffset;
      const buffer = takeBuffer();
      let lines: Line[];
      try {
        const { bytesRead } = await this.#handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        this.#growHead(chunk, position);
        lines = this.#splitter.push(chunk);
      } finally {
        giveBack(buffer);
      }
      const observedAt = Date.now();
      for (const line of lines) {
        if (this.#joiner === undefined) {
          // One record per line (no array per line: this loop runs for every line read).
          // Await only when downstream is full: a promise per line would cost more than the line.
          const room = emit(this.#record(line, observedAt));
          if (room !== true) await room;
          result.lines++;
          if (stopped()) return result;
          continue;
        }
        for (const record of this.#join(line, observedAt)) {
          const room = emit(this.#record(record, observedAt));
          if (room !== true) await room;
          result.lines++;
          if (stopped()) return result;
        }
      }
    }
    if (stopped()) return result;
    const now = Date.now();
    if (this.#splitter.partialLength > 0) {
      if (this.#splitter.nextOffset !== before) this.#partialSince = now;
      if (flushPartial || now - this.#partialSince >= this.#options.partialLineTimeoutMs) {
        const line = this.#splitter.flushPartial();
        for (const record of line === undefined ? [] : this.#join(line, now)) {
          await emit(this.#record(record, now));
          result.lines++;
        }
      }
    }
    const timeoutMs = this.#options.multiline?.timeoutMs ?? 0;
    if (this.#joiner?.pending === true && (flushPartial || now - this.#joinedAt >= timeoutMs)) {
      const record = this.#joiner.flush();
      if (record !== undefined && !stopped()) {
        await emit(this.#record(record, now));
        result.lines++;
      }
    }
    return result;
  }

  #record(line: Line, observedAt: number): SourceRecord {
    const tracker = this.#tracker;
    return fileRecord({ dataset: this.#options.dataset, path: this.path }, this.#keyFor(line.end), line, observedAt, tracker, tracker.trackLine(line.end));
  }

  /** The file key for a line ending at `end`: it covers the file's bytes up to the line or the fingerprint size. */
  #keyFor(end: number): string {
    const n = this.#options.fingerprintBytes;
    if (end >= n && this.#head.length >= n) {
      this.#fullKey ??= fileKeyOf(this.#options.agentId, this.identity, this.#generation, this.#fingerprint.sha256);
      return this.#fullKey;
    }
    const sha = createHash('sha256').update(this.#head.subarray(0, Math.min(end, this.#head.length))).digest('hex');
    return fileKeyOf(this.#options.agentId, this.identity, this.#generation, sha);
  }

  /** Keeps the first bytes of the file while they are read, so the fingerprint grows with a short file. */
  #growHead(chunk: Buffer, position: number): void {
    const n = this.#options.fingerprintBytes;
    const have = this.#head.length;
    if (have >= n || position > have || position + chunk.length <= have) return;
    this.#head = Buffer.concat([this.#head, chunk.subarray(have - position, Math.min(chunk.length, n - position))]);
    this.#fingerprint = fingerprintOf(this.#head);
  }

  /** Detects a truncated or replaced file and starts it over, in a new generation, from offset 0. */
  async #checkReplaced(size: number): Promise<ReadResult['restarted']> {
    const readOffset = this.#splitter.nextOffset;
    let reason: 'truncated' | 'replaced' | undefined;
    if (size < readOffset) {
      reason = 'truncated';
    } else if (this.#head.length > 0) {
      // Cheap enough per read (one pread of at most the fingerprint size), and it catches a
      // copytruncate after which the file grew past the read position before we looked.
      const now = await readPrefix(this.#handle, this.#head.length);
      if (!now.equals(this.#head)) reason = 'replaced';
    }
    if (reason === undefined) return undefined;
    this.#generation++;
    this.#fullKey = undefined;
    this.#head = await readPrefix(this.#handle, Math.min(size, this.#options.fingerprintBytes));
    this.#fingerprint = fingerprintOf(this.#head);
    this.#splitter = this.#newSplitter(0);
    this.#tracker = this.#newTracker(0);
    if (this.#options.multiline !== undefined) this.#joiner = new MultilineJoiner(this.#options.multiline);
    this.#options.onCommit(this, 0);
    return { reason, readOffset, size };
  }

  /** How many names the open file has now (0: deleted; still more than 0 after a rename). */
  async links(): Promise<number> {
    return Number((await this.#handle.stat({ bigint: true })).nlink);
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}
