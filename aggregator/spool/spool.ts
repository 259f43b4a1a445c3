// A durable on-disk spool of mapped records, used while Elasticsearch is unavailable.
//
// One file per accepted batch, `<seq>.batch` (seq zero-padded, so names sort in arrival order):
// written to `<seq>.tmp`, fsynced, renamed, and the folder fsynced, before append() resolves. So a
// batch is either entirely there or not at all, also after SIGKILL or a power cut: a `.tmp` left
// behind was never acknowledged and is removed on open. A batch that cannot be parsed when read is
// moved aside to `<seq>.corrupt`, and one holding records Elasticsearch refused for good (dead
// letter refused too) to `<seq>.rejected`: kept for an operator, never deleted nor overwritten.
// Sequence numbers continue past every file kept in the folder, also after a restart.
//
// File format: a header line `{"spool":1,"count":N}`, then N lines of JSON MappedRecord.
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CiAuditError } from '../../core/errors.ts';
import type { MappedRecord } from '../map/ecs.ts';

export interface SpoolOptions {
  dir: string;
  /** Largest total size of the batches in bytes; append() beyond it throws CIA_ERR_SPOOL_FULL. */
  maxBytes: number;
}

export interface SpooledBatch {
  /** File name of the batch, for ack(). */
  name: string;
  records: MappedRecord[];
}

/** Why a batch is kept aside for an operator instead of being drained. */
export type KeptReason = 'corrupt' | 'rejected';

/** Every file that takes a sequence number: batches waiting and batches kept aside. */
const numberedPattern = /^(\d{16})\.(batch|corrupt|rejected)$/;

export class Spool {
  readonly #dir: string;
  readonly #maxBytes: number;
  #nextSeq = 0;
  #bytes = 0;
  #batches: Array<{ name: string; bytes: number }> = [];
  /** Appends run one at a time: sequence numbers and the size check stay consistent. */
  #tail: Promise<unknown> = Promise.resolve();
  /** Appends called and not settled yet. */
  #appending = 0;

  private constructor(options: SpoolOptions) {
    this.#dir = options.dir;
    this.#maxBytes = options.maxBytes;
  }

  /** Opens (creating) the spool folder, drops unacknowledged `.tmp` files, and counts what is there. */
  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    await io(`creating the spool folder ${options.dir}`, () => mkdir(options.dir, { recursive: true, mode: 0o700 }));
    const names = await io(`listing ${options.dir}`, () => readdir(options.dir));
    for (const name of names.sort()) {
      if (name.endsWith('.tmp')) {
        await io(`removing ${name}`, () => rm(join(options.dir, name), { force: true }));
        continue;
      }
      const match = numberedPattern.exec(name);
      if (match === null) continue;
      // Kept files take part in the numbering too: a later batch must not be set aside over them.
      spool.#nextSeq = Math.max(spool.#nextSeq, Number(match[1]) + 1);
      if (match[2] !== 'batch') continue;
      const size = (await io(`reading ${name}`, () => stat(join(options.dir, name)))).size;
      spool.#batches.push({ name, bytes: size });
      spool.#bytes += size;
    }
    return spool;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Batches waiting. */
  get size(): number {
    return this.#batches.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#batches.length === 0;
  }

  /** Appends under way: each adds a batch (or fails). While one is, a write that bypassed the spool could overtake it. */
  get appending(): number {
    return this.#appending;
  }

  get full(): boolean {
    return this.#bytes >= this.#maxBytes;
  }

  /** Resolves once the batch is on disk (fsynced, renamed, folder fsynced): then it may be acknowledged. */
  append(records: readonly MappedRecord[]): Promise<void> {
    this.#appending++;
    const run = this.#tail.then(() => this.#append(records)).finally(() => {
      this.#appending--;
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #append(records: readonly MappedRecord[]): Promise<void> {
    const text = `${JSON.stringify({ spool: 1, count: records.length })}\n${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
    const bytes = Buffer.byteLength(text);
    if (this.#bytes + bytes > this.#maxBytes) {
      throw new CiAuditError(
        'CIA_ERR_SPOOL_FULL',
        `the spool ${this.#dir} holds ${this.#bytes} bytes; ${bytes} more would exceed spool.max_bytes (${this.#maxBytes}) while Elasticsearch is unavailable`,
        { details: { dir: this.#dir, bytes: this.#bytes } },
      );
    }
    const seq = this.#nextSeq++;
    const name = `${String(seq).padStart(16, '0')}.batch`;
    const tmp = join(this.#dir, `${String(seq).padStart(16, '0')}.tmp`);
    await io(`writing ${tmp}`, async () => {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, join(this.#dir, name));
      await syncDir(this.#dir);
    });
    this.#batches.push({ name, bytes });
    this.#bytes += bytes;
  }

  /** The oldest batch, or undefined when empty. A corrupt one is moved aside and CIA_ERR_SPOOL_IO thrown. */
  async peek(): Promise<SpooledBatch | undefined> {
    return (await this.peekUpTo(0))[0];
  }

  /**
   * The oldest batches, in order, as many as `maxBytes` of files hold but at least one; none when
   * empty. So a drain reads a bounded part of the spool, never all of it. A corrupt oldest batch is
   * moved aside to `.corrupt` and CIA_ERR_SPOOL_IO thrown; a corrupt later one ends the list (it is
   * the oldest next time).
   */
  async peekUpTo(maxBytes: number): Promise<SpooledBatch[]> {
    const out: SpooledBatch[] = [];
    let bytes = 0;
    for (const entry of this.#batches.slice()) {
      if (out.length > 0 && bytes + entry.bytes > maxBytes) break;
      const path = join(this.#dir, entry.name);
      const text = await io(`reading ${path}`, () => readFile(path, 'utf8'));
      const records = parseBatch(text);
      if (records === undefined) {
        if (out.length > 0) break;
        const kept = await this.setAside(entry.name, 'corrupt');
        throw new CiAuditError('CIA_ERR_SPOOL_IO', `spool batch ${path} is corrupt; moved aside as ${kept} for inspection`, { details: { file: path, kept } });
      }
      out.push({ name: entry.name, records });
      bytes += entry.bytes;
    }
    return out;
  }

  /**
   * Moves a batch out of the drain into a file kept for an operator, `<seq>.corrupt` or
   * `<seq>.rejected`, and returns that file's path. An existing file is never replaced: when the
   * name is taken (a file put there by hand), the batch gets the next free sequence number.
   */
  async setAside(name: string, reason: KeptReason): Promise<string> {
    const from = join(this.#dir, name);
    let to = join(this.#dir, name.replace(/\.batch$/, `.${reason}`));
    while (await exists(to)) to = join(this.#dir, `${String(this.#nextSeq++).padStart(16, '0')}.${reason}`);
    await io(`moving ${from} aside to ${to}`, async () => {
      await rename(from, to);
      await syncDir(this.#dir);
    });
    this.#drop(name);
    return to;
  }

  /** Removes a batch once Elasticsearch holds its records. */
  async ack(name: string): Promise<void> {
    await io(`removing ${name}`, () => rm(join(this.#dir, name), { force: true }));
    this.#drop(name);
  }

  #drop(name: string): void {
    const i = this.#batches.findIndex((b) => b.name === name);
    if (i < 0) return;
    this.#bytes -= this.#batches[i]!.bytes;
    this.#batches.splice(i, 1);
  }
}

/** The records of a batch file, or undefined when it is not one (truncated, edited, other format). */
export function parseBatch(text: string): MappedRecord[] | undefined {
  const lines = text.split('\n');
  if (lines.at(-1) !== '') return undefined;
  lines.pop();
  try {
    const header = JSON.parse(lines[0] ?? '') as { spool?: unknown; count?: unknown };
    if (header.spool !== 1 || header.count !== lines.length - 1) return undefined;
    return lines.slice(1).map((l) => JSON.parse(l) as MappedRecord);
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CiAuditError('CIA_ERR_SPOOL_IO', `spool: checking ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function io<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_SPOOL_IO', `spool: ${what} failed: ${(cause as Error).message}`, { cause });
  }
}
