// The agent's durable buffer: records appended to numbered segment files under
// `<state_dir>/buffer/`, read back and sent in order, and each segment removed once every entry in
// it was acknowledged by the aggregator. Appends are group-committed: everything appended while a
// write is in progress goes out in the next write, with one fsync, so `fsync: always` costs one
// fsync per write round, not per record.
//
// A record's `onDurable` callback (its source ack) runs once the entry is as durable as the fsync
// policy makes it: `always` after the fsync of its write round, `interval` after the next periodic
// fsync, `never` as soon as it is written (in the page cache: it survives the agent being killed,
// not the machine losing power). The source checkpoint therefore never claims more than the
// buffer holds.
import { mkdir, open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CiAuditError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { writeFileDurably } from '../../core/durable-file.ts';
import { encodeEntry, entryHeaderBytes, entryLengthAt, scanEntries, segmentFileName, segmentIndexOf, type ScanProblem } from './segment-format.ts';

export type FsyncPolicy = 'always' | 'interval' | 'never';
export type OverflowPolicy = 'block' | 'drop_oldest';

export interface DiskBufferOptions {
  /** Folder of the segment files (`<state_dir>/buffer`). */
  dir: string;
  /** Bytes of segment files beyond which the overflow policy applies. */
  maxBytes: number;
  /** A segment is closed and a new one started once it holds this many bytes. */
  segmentBytes: number;
  fsync: FsyncPolicy;
  /** Period of the fsync under `interval`, in ms. */
  fsyncIntervalMs: number;
  overflow: OverflowPolicy;
  logger: Logger;
}

/** Damage found in a segment when the buffer was opened: the entries after `offset` are lost. */
export interface RecoveredDamage {
  segment: string;
  reason: ScanProblem;
  offset: number;
  lostBytes: number;
}

export interface DroppedSegment {
  segment: string;
  /** The entries it held, in order (a segment is at most `segmentBytes`). */
  payloads: Buffer[];
}

export interface BufferedEntry {
  payload: Buffer;
  /** Index of the segment holding it and the entry's position there; hand both back to `ack`. */
  segment: number;
  ordinal: number;
}

/** Name of the file that keeps, per segment, how many leading entries the aggregator acknowledged. */
export const cursorFileName = 'acked.json';

/** How often the acknowledged prefixes are saved while they change, in ms (fewer re-sent records after a crash). */
const cursorSaveIntervalMs = 1000;

interface Segment {
  index: number;
  path: string;
  /** Bytes of intact entries in the file (written, or found intact when opened). */
  bytes: number;
  entries: number;
  acked: number;
  /** Leading entries all acknowledged: where a restart resumes in this segment. */
  prefix: number;
  /** Acknowledged entries beyond `prefix` (a rejected batch before them is never acknowledged). */
  later: Set<number>;
  /** Where reading starts (after the prefix a previous run acknowledged). */
  startOffset: number;
  sealed: boolean;
  /** `onDrop` refused to drop it. */
  pinned?: boolean;
}

interface Pending {
  frame: Buffer;
  onDurable: (() => void) | undefined;
}

/** Bytes of appended records held in memory for the next write round before `hasRoom` turns false. */
const maxPendingBytes = 4 * 1024 * 1024;

/** Largest read from a segment at once. */
const readChunkBytes = 1024 * 1024;

export class DiskBuffer {
  #o: DiskBufferOptions;
  #segments: Segment[] = [];
  #active: Segment;
  #handle: FileHandle;
  #usedBytes = 0;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #committing: Promise<void> | undefined;
  /** Callbacks of entries written but not yet fsynced (`interval`). */
  #awaitingSync: (() => void)[] = [];
  #syncTimer: NodeJS.Timeout | undefined;
  #reader = { segment: 0, offset: 0, ordinal: 0 };
  /**
   * The segment being read, open: kept from one read to the next, where opening and closing the
   * file for every read (up to a batch of entries) cost the agent about 2% of its CPU while shipping.
   */
  #readHandle: { index: number; handle: FileHandle } | undefined;
  #cursorTimer: NodeJS.Timeout | undefined;
  #cursorDirty = false;
  #cursorSaving: Promise<void> | undefined;
  #roomWaiters: (() => void)[] = [];
  #dataWaiters: (() => void)[] = [];
  #closed = false;
  /**
   * Called with each segment `drop_oldest` is about to evict (its payloads, for the gap record).
   * Returning false keeps the segment for good (it holds only notices of loss, which must not be
   * lost in turn); the buffer may then exceed `maxBytes` by such segments.
   */
  onDrop: ((dropped: DroppedSegment) => boolean) | undefined;

  private constructor(o: DiskBufferOptions, segments: Segment[], active: Segment, handle: FileHandle) {
    this.#o = o;
    this.#segments = segments;
    this.#active = active;
    this.#handle = handle;
    this.#usedBytes = segments.reduce((n, s) => n + s.bytes, 0);
    const first = segments[0] ?? active;
    this.#reader = { segment: first.index, offset: first.startOffset, ordinal: first.prefix };
    this.#cursorTimer = setInterval(() => void this.#saveCursor(), cursorSaveIntervalMs);
    this.#cursorTimer.unref();
    if (o.fsync === 'interval') {
      this.#syncTimer = setInterval(() => void this.#syncNow(), o.fsyncIntervalMs);
      this.#syncTimer.unref();
    }
  }

  /** Opens the buffer folder, checks every segment left by an earlier run, and starts a new segment. */
  static async open(o: DiskBufferOptions): Promise<{ buffer: DiskBuffer; damage: RecoveredDamage[] }> {
    const damage: RecoveredDamage[] = [];
    const segments: Segment[] = [];
    try {
      await mkdir(o.dir, { recursive: true, mode: 0o700 });
      const names = (await readdir(o.dir)).filter((n) => segmentIndexOf(n) !== undefined).sort();
      const prefixes = await readCursor(join(o.dir, cursorFileName), o.logger);
      for (const name of names) {
        const path = join(o.dir, name);
        const bytes = await readFile(path);
        const scan = scanEntries(bytes, { final: true });
        const prefix = Math.min(prefixes.get(name) ?? 0, scan.payloads.length);
        let startOffset = 0;
        for (let i = 0; i < prefix; i++) startOffset += entryHeaderBytes + scan.payloads[i]!.length;
        if (scan.problem !== undefined) {
          // Not truncated: the segment is read only up to its intact end, and removed once sent.
          // Should the agent die before then, the same damage is found again and reported under the
          // same record id, so the gap is not doubled in Elasticsearch.
          damage.push({ segment: name, reason: scan.problem.reason, offset: scan.consumed, lostBytes: bytes.length - scan.consumed });
        }
        segments.push({ index: segmentIndexOf(name) ?? 0, path, bytes: scan.consumed, entries: scan.payloads.length, acked: prefix, prefix, later: new Set(), startOffset, sealed: true });
      }
      // A cursor entry can outlive its segment (a crash, or a failed save, after the segment was
      // removed). The new segment's number is past every one the cursor names, so that such an
      // entry never applies to a new file of the same name: its records would be skipped.
      let last = segments.at(-1)?.index ?? -1;
      for (const name of prefixes.keys()) last = Math.max(last, segmentIndexOf(name) ?? -1);
      const index = last + 1;
      const active: Segment = { index, path: join(o.dir, segmentFileName(index)), bytes: 0, entries: 0, acked: 0, prefix: 0, later: new Set(), startOffset: 0, sealed: false };
      const handle = await open(active.path, 'a', 0o600);
      segments.push(active);
      return { buffer: new DiskBuffer(o, segments, active, handle), damage };
    } catch (cause) {
      throw new CiAuditError('CIA_ERR_BUFFER_IO', `cannot open the disk buffer in ${o.dir}: ${(cause as Error).message}; check that the folder is writable (agent.state_dir)`, {
        cause,
        details: { path: o.dir, option: 'agent.state_dir' },
      });
    }
  }

  /** Bytes held in segment files. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Entries appended (or found at start) and not yet acknowledged. */
  get unacknowledged(): number {
    let n = this.#pending.length;
    for (const s of this.#segments) n += s.entries - s.acked;
    return n;
  }

  /** Segment files on disk. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /**
   * False while appended records wait in memory for the disk beyond `maxPendingBytes` (either
   * policy: memory stays bounded when the disk is slower than the sources), and under `block` once
   * the buffer holds `maxBytes`. True once closed.
   */
  get hasRoom(): boolean {
    if (this.#closed) return true;
    if (this.#pendingBytes >= maxPendingBytes) return false;
    return this.#o.overflow === 'drop_oldest' || this.#usedBytes + this.#pendingBytes < this.#o.maxBytes;
  }

  /** Resolves once `hasRoom` (at once if it is). */
  waitForRoom(): Promise<void> {
    if (this.hasRoom) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Queues `payload` for the next write round; `onDurable` runs once it is durable per the fsync policy. */
  append(payload: Uint8Array, onDurable?: () => void): void {
    const frame = encodeEntry(payload);
    this.#pending.push({ frame, onDurable });
    this.#pendingBytes += frame.length;
    this.#committing ??= this.#commitLoop();
  }

  /** Resolves once everything appended so far is written and, unless `never`, fsynced (its callbacks ran). */
  async flushed(): Promise<void> {
    while (this.#committing !== undefined) await this.#committing;
    await this.#syncNow();
  }

  /** Resolves when new entries were written (or the buffer closes). */
  dataAvailable(): Promise<void> {
    return new Promise((resolve) => this.#dataWaiters.push(resolve));
  }

  /** True when the reader has read everything written. */
  get caughtUp(): boolean {
    return this.#reader.segment === this.#active.index && this.#reader.offset >= this.#active.bytes;
  }

  /** The next written entries in order, at most `maxEntries`; empty when the reader caught up. */
  async read(maxEntries: number): Promise<BufferedEntry[]> {
    for (;;) {
      const seg = this.#segments.find((s) => s.index >= this.#reader.segment);
      if (seg === undefined) return [];
      if (seg.index !== this.#reader.segment) this.#reader = { segment: seg.index, offset: seg.startOffset, ordinal: seg.prefix };
      if (this.#reader.offset < seg.bytes) {
        const payloads = await this.#readFrom(seg, maxEntries);
        const first = this.#reader.ordinal;
        this.#reader.ordinal += payloads.length;
        return payloads.map((payload, i) => ({ payload, segment: seg.index, ordinal: first + i }));
      }
      if (!seg.sealed) return [];
      // On to the next segment, after what an earlier run saw acknowledged there: the check at the
      // top of the loop only places the reader when it skips over a segment number.
      const next = this.#segments.find((s) => s.index > seg.index);
      this.#reader = next === undefined ? { segment: seg.index + 1, offset: 0, ordinal: 0 } : { segment: next.index, offset: next.startOffset, ordinal: next.prefix };
      await this.#removeIfDone(seg);
    }
  }

  /** One entry of segment `segment` was acknowledged; the segment goes once all of its entries are. */
  ack(segment: number, ordinal: number): void {
    this.ackRange(segment, ordinal, ordinal);
  }

  /** Entries `first` to `last` of segment `segment` were acknowledged, as `ack` for each. */
  ackRange(segment: number, first: number, last: number): void {
    const seg = this.#segments.find((s) => s.index === segment);
    if (seg === undefined) return;
    let changed = false;
    for (let ordinal = Math.max(first, seg.prefix); ordinal <= last; ordinal++) {
      if (seg.later.has(ordinal)) continue;
      seg.acked++;
      seg.later.add(ordinal);
      changed = true;
    }
    if (!changed) return;
    while (seg.later.delete(seg.prefix)) seg.prefix++;
    this.#cursorDirty = true;
    void this.#removeIfDone(seg);
  }

  /** Writes and syncs what is pending and closes the file. Unread entries stay for the next start. */
  async close(): Promise<void> {
    await this.flushed();
    this.#closed = true;
    clearInterval(this.#syncTimer);
    clearInterval(this.#cursorTimer);
    await this.#handle.close().catch(() => undefined);
    await this.#closeReadHandle();
    // Nothing is written any more: a segment whose every entry was acknowledged can go, the
    // active one included, so that a clean restart sends nothing twice.
    for (const seg of [...this.#segments]) {
      if (seg.acked >= seg.entries) await this.#remove(seg);
    }
    this.#cursorDirty = true;
    await this.#saveCursor();
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
    this.wake();
  }

  /** Wakes a reader waiting in `dataAvailable` (when stopping). */
  wake(): void {
    for (const resolve of this.#dataWaiters.splice(0)) resolve();
  }

  /**
   * Saves the acknowledged prefix of each segment (durably), when it changed. A save in progress
   * is waited for, then the state it did not include is saved: `close` must leave the cursor of
   * the segments it removed, not of those a timer's save saw a moment before.
   */
  async #saveCursor(): Promise<void> {
    while (this.#cursorSaving !== undefined) await this.#cursorSaving;
    if (!this.#cursorDirty) return;
    this.#cursorDirty = false;
    const prefixes: Record<string, number> = {};
    for (const seg of this.#segments) if (seg.prefix > 0) prefixes[segmentFileName(seg.index)] = seg.prefix;
    this.#cursorSaving = writeFileDurably(join(this.#o.dir, cursorFileName), JSON.stringify({ version: 1, prefixes }))
      .then(() => undefined)
      .catch((err: unknown) => {
        // Only costs re-sent records (same ids) after a restart.
        this.#cursorDirty = true;
        this.#o.logger.warn({ code: 'CIA_ERR_BUFFER_IO', err: (err as Error).message }, 'cannot save the disk buffer cursor; more records are sent again after a restart');
      })
      .finally(() => {
        this.#cursorSaving = undefined;
      });
    return this.#cursorSaving;
  }

  async #readFrom(seg: Segment, maxEntries: number): Promise<Buffer[]> {
    if (this.#readHandle?.index !== seg.index) {
      await this.#closeReadHandle();
      this.#readHandle = { index: seg.index, handle: await open(seg.path, 'r') };
    }
    const handle = this.#readHandle.handle;
    try {
      const available = seg.bytes - this.#reader.offset;
      let want = Math.min(available, readChunkBytes);
      for (;;) {
        const chunk = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(chunk, 0, want, this.#reader.offset);
        const bytes = chunk.subarray(0, bytesRead);
        const scan = scanEntries(bytes, { final: false, maxEntries });
        if (scan.payloads.length > 0) {
          this.#reader.offset += scan.consumed;
          return scan.payloads;
        }
        // One entry larger than a chunk: read exactly that entry.
        const need = entryLengthAt(bytes);
        if (need === undefined || need <= want || need > available) {
          // Cannot happen for bytes this buffer wrote or checked; skip the rest rather than loop.
          this.#o.logger.error({ code: 'CIA_ERR_BUFFER_CORRUPT', segment: seg.path, offset: this.#reader.offset }, 'unreadable buffer entry; skipping the rest of the segment');
          this.#reader.offset = seg.bytes;
          return [];
        }
        want = need;
      }
    } catch (err) {
      // Opened again on the next attempt.
      await this.#closeReadHandle();
      throw err;
    }
  }

  async #closeReadHandle(): Promise<void> {
    const reading = this.#readHandle;
    this.#readHandle = undefined;
    await reading?.handle.close().catch(() => undefined);
  }

  async #removeIfDone(seg: Segment): Promise<void> {
    if (!seg.sealed || seg.acked < seg.entries || this.#reader.segment <= seg.index) return;
    await this.#remove(seg);
  }

  async #remove(seg: Segment): Promise<void> {
    const at = this.#segments.indexOf(seg);
    if (at < 0) return;
    this.#segments.splice(at, 1);
    this.#usedBytes -= seg.bytes;
    if (this.#readHandle?.index === seg.index) await this.#closeReadHandle();
    try {
      await rm(seg.path, { force: true });
    } catch (err) {
      this.#o.logger.error({ code: 'CIA_ERR_BUFFER_IO', path: seg.path, err: (err as Error).message }, 'cannot remove a delivered buffer segment');
    }
    this.#releaseRoom();
  }

  #releaseRoom(): void {
    if (!this.hasRoom) return;
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
  }

  async #commitLoop(): Promise<void> {
    try {
      // Let the writes of this turn of the event loop gather into one round.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#pending.length > 0) {
        const round = this.#pending.splice(0);
        const written = { entries: 0, bytes: 0 };
        let failure: unknown;
        try {
          await this.#writeRound(round, written);
        } catch (err) {
          failure = err;
        }
        this.#pendingBytes -= written.bytes;
        if (written.entries > 0) {
          this.#releaseRoom();
          this.wake();
        }
        if (failure === undefined) continue;
        // Disk full or failing: keep the records not yet written in memory (they count against
        // maxBytes, so the sources stop under `block`) and try again. Those written before the
        // failure stay written: writing them again would send them twice and run their callbacks twice.
        this.#pending.unshift(...round.slice(written.entries));
        this.#o.logger.error({ code: 'CIA_ERR_BUFFER_IO', path: this.#active.path, err: (failure as Error).message }, 'cannot write to the disk buffer; retrying in 1 s');
        await this.#handle.truncate(this.#active.bytes).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (this.#closed) return;
      }
    } finally {
      // Here, and not in a callback a microtask later: an append made once the last round is
      // written (a writer woken by #releaseRoom) must start a new loop, not join this ending one.
      this.#committing = undefined;
    }
  }

  /** Writes `round` in order; `written` counts what reached the file, also when a later part fails. */
  async #writeRound(round: Pending[], written: { entries: number; bytes: number }): Promise<void> {
    let group: Pending[] = [];
    let groupBytes = 0;
    const writeGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      // Gathered by the kernel: joined here first, every entry was copied once more.
      const { bytesWritten } = await this.#handle.writev(group.map((p) => p.frame));
      if (bytesWritten !== groupBytes) throw new Error(`short write: ${bytesWritten} of ${groupBytes} bytes`);
      this.#active.bytes += groupBytes;
      this.#active.entries += group.length;
      this.#usedBytes += groupBytes;
      written.entries += group.length;
      written.bytes += groupBytes;
      const callbacks = group.flatMap((p) => (p.onDurable === undefined ? [] : [p.onDurable]));
      if (this.#o.fsync === 'never') this.#runAll(callbacks);
      else this.#awaitingSync.push(...callbacks);
      group = [];
      groupBytes = 0;
    };
    for (const p of round) {
      if (this.#o.overflow === 'drop_oldest' && this.#usedBytes + groupBytes + p.frame.length > this.#o.maxBytes) {
        // Make room before writing on: what is written so far counts, then the oldest unsent go.
        await writeGroup();
        await this.#evictFor(p.frame.length);
      }
      if (this.#active.bytes + groupBytes > 0 && this.#active.bytes + groupBytes + p.frame.length > this.#o.segmentBytes) {
        await writeGroup();
        await this.#roll();
      }
      group.push(p);
      groupBytes += p.frame.length;
    }
    await writeGroup();
    if (this.#o.fsync === 'always') await this.#syncNow();
  }

  /**
   * Seals the active segment (synced, so that its callbacks may run) and starts the next. Nothing
   * changes until the next file is open (and its name durable): should that fail, the active
   * segment and its handle are still the pair the commit loop's retry writes to and truncates.
   */
  async #roll(): Promise<void> {
    if (this.#o.fsync !== 'never') await this.#syncNow();
    const index = this.#active.index + 1;
    const next: Segment = { index, path: join(this.#o.dir, segmentFileName(index)), bytes: 0, entries: 0, acked: 0, prefix: 0, later: new Set(), startOffset: 0, sealed: false };
    const handle = await open(next.path, 'a', 0o600);
    if (this.#o.fsync !== 'never') {
      // The new file's name must be durable too, or a crash could lose the whole segment.
      try {
        const dir = await open(this.#o.dir, 'r');
        await dir.sync().finally(() => dir.close());
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
    }
    const sealed = this.#handle;
    this.#active.sealed = true;
    this.#handle = handle;
    this.#segments.push(next);
    this.#active = next;
    await sealed.close().catch(() => undefined);
  }

  async #syncNow(): Promise<void> {
    if (this.#awaitingSync.length === 0 || this.#closed) return;
    const callbacks = this.#awaitingSync.splice(0);
    const handle = this.#handle;
    try {
      await handle.datasync();
    } catch (err) {
      // A segment sealed meanwhile was synced before it was closed; otherwise try again next time.
      if (handle === this.#handle) {
        this.#awaitingSync.unshift(...callbacks);
        this.#o.logger.error({ code: 'CIA_ERR_BUFFER_IO', path: this.#active.path, err: (err as Error).message }, 'cannot fsync the disk buffer');
        return;
      }
    }
    this.#runAll(callbacks);
  }

  #runAll(callbacks: (() => void)[]): void {
    for (const cb of callbacks) {
      try {
        cb();
      } catch (err) {
        this.#o.logger.error({ err: (err as Error).message }, 'record ack failed');
      }
    }
  }

  /** `drop_oldest`: removes the oldest segments nothing was read from until `incoming` more bytes fit. */
  async #evictFor(incoming: number): Promise<void> {
    while (this.#usedBytes + incoming > this.#o.maxBytes) {
      const victim = this.#segments.find((s) => s.sealed && s.pinned !== true && s.index > this.#reader.segment);
      if (victim === undefined) return; // only segments being sent (or pinned) are left: over the limit by those
      const scan = scanEntries(await readFile(victim.path), { final: true });
      // The reader may have moved into it meanwhile: then it is being sent, not dropped.
      if (victim.index <= this.#reader.segment) continue;
      if (this.onDrop?.({ segment: segmentFileName(victim.index), payloads: scan.payloads }) === false) {
        victim.pinned = true;
        continue;
      }
      await this.#remove(victim);
    }
  }
}

/** The saved prefixes; a missing or unreadable file means none (records are then sent again, never lost). */
async function readCursor(file: string, logger: Logger): Promise<Map<string, number>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; prefixes?: unknown };
    if (parsed.version !== 1 || typeof parsed.prefixes !== 'object' || parsed.prefixes === null) throw new Error('unknown format');
    return new Map(Object.entries(parsed.prefixes).filter((e): e is [string, number] => Number.isSafeInteger(e[1]) && (e[1] as number) > 0));
  } catch (err) {
    logger.warn({ code: 'CIA_ERR_BUFFER_CORRUPT', path: file, err: (err as Error).message }, 'ignoring an unreadable disk buffer cursor; its records are sent again (same ids)');
    return new Map();
  }
}
