// Follows one file: keeps it open (so a renamed or deleted file can still be drained), reads the
// bytes past the last read position, splits them into lines and hands each line on with an ack that
// feeds the file's offset tracker. The read position runs ahead of the committed (acknowledged)
// offset; only the committed offset is ever written to the checkpoint.
import { open, type FileHandle } from 'node:fs/promises';
import { identityOf, type FileIdentity } from './identity.ts';
import { LineSplitter } from './line-splitter.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { fileRecord } from './record.ts';
import type { SourceRecord } from '../source.ts';

const READ_CHUNK_BYTES = 64 * 1024;

export interface OpenedFile {
  handle: FileHandle;
  identity: FileIdentity;
  size: number;
}

/** Opens a file and stats the handle, so the identity is that of the file actually opened. */
export async function openFile(path: string): Promise<OpenedFile | undefined> {
  const handle = await open(path, 'r');
  try {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) {
      await handle.close();
      return undefined;
    }
    return { handle, identity: identityOf(stats), size: Number(stats.size) };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

export interface FileReaderOptions {
  path: string;
  file: OpenedFile;
  /** Offset to start reading at: the checkpoint, or the start position for a new file. */
  offset: number;
  agentId: string;
  dataset: string;
  /** Called when the committed (acknowledged, contiguous) offset moves. */
  onCommit: (reader: FileReader, committed: number) => void;
}

/** What `readAvailable` found. */
export interface ReadResult {
  /** Lines emitted. */
  lines: number;
  /** True when the file is shorter than the read position (truncated or replaced in place). */
  shrunk: boolean;
}

export class FileReader {
  /** The path the file was last seen at. */
  path: string;
  readonly identity: FileIdentity;
  #handle: FileHandle;
  #agentId: string;
  #dataset: string;
  #splitter: LineSplitter;
  #tracker: OffsetTracker;
  #buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  #closed = false;

  constructor(options: FileReaderOptions) {
    this.path = options.path;
    this.identity = options.file.identity;
    this.#handle = options.file.handle;
    this.#agentId = options.agentId;
    this.#dataset = options.dataset;
    this.#splitter = new LineSplitter(options.offset);
    this.#tracker = new OffsetTracker(options.offset, (committed) => options.onCommit(this, committed));
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

  /**
   * Reads up to the current end of the file and emits each complete line, awaiting `emit` (the
   * backpressure). Stops early, between lines, when `stopped()` turns true; the reader must not be
   * used after that, as the rest of the chunk it had read is not emitted.
   */
  async readAvailable(emit: (record: SourceRecord) => Promise<void>, stopped: () => boolean): Promise<ReadResult> {
    let lines = 0;
    if (this.#closed) return { lines, shrunk: false };
    const size = Number((await this.#handle.stat({ bigint: true })).size);
    if (size < this.#splitter.nextOffset) return { lines, shrunk: true };
    while (!this.#closed && !stopped()) {
      const { bytesRead } = await this.#handle.read(this.#buffer, 0, this.#buffer.length, this.#splitter.nextOffset);
      if (bytesRead === 0) break;
      const observedAt = Date.now();
      for (const line of this.#splitter.push(this.#buffer.subarray(0, bytesRead))) {
        const ack = this.#tracker.track(line.end);
        await emit(fileRecord({ agentId: this.#agentId, dataset: this.#dataset, path: this.path, identity: this.identity }, line, observedAt, ack));
        lines++;
        if (stopped()) return { lines, shrunk: false };
      }
    }
    return { lines, shrunk: false };
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
