// A durable on-disk spool of mapped records, used while Elasticsearch is unavailable.
//
// One file per accepted batch, `<seq>.batch` (seq zero-padded, so names sort in arrival order):
// written to `<seq>.tmp`, fsynced, renamed, and the folder fsynced, before append() resolves. So a
// batch is either entirely there or not at all, also after SIGKILL or a power cut: a `.tmp` left
// behind was never acknowledged and is removed on open. A batch that cannot be parsed when read is
// moved aside to `<seq>.corrupt` (kept for an operator, logged), never deleted.
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

const batchPattern = /^(\d{16})\.batch$/;

export class Spool {
  readonly #dir: string;
  readonly #maxBytes: number;
  #nextSeq = 0;
  #bytes = 0;
  #batches: Array<{ name: string; bytes: number }> = [];
  /** Appends run one at a time: sequence numbers and the size check stay consistent. */
  #tail: Promise<unknown> = Promise.resolve();

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
      const match = batchPattern.exec(name);
      if (match === null) continue;
      const size = (await io(`reading ${name}`, () => stat(join(options.dir, name)))).size;
      spool.#batches.push({ name, bytes: size });
      spool.#bytes += size;
      spool.#nextSeq = Math.max(spool.#nextSeq, Number(match[1]) + 1);
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

  get full(): boolean {
    return this.#bytes >= this.#maxBytes;
  }

  /** Resolves once the batch is on disk (fsynced, renamed, folder fsynced): then it may be acknowledged. */
  append(records: readonly MappedRecord[]): Promise<void> {
    const run = this.#tail.then(() => this.#append(records));
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

  /** The oldest batch, or undefined when empty. A corrupt one is moved aside and the next returned. */
  async peek(): Promise<SpooledBatch | undefined> {
    for (;;) {
      const first = this.#batches[0];
      if (first === undefined) return undefined;
      const path = join(this.#dir, first.name);
      const text = await io(`reading ${path}`, () => readFile(path, 'utf8'));
      const records = parseBatch(text);
      if (records !== undefined) return { name: first.name, records };
      await io(`moving aside ${path}`, () => rename(path, path.replace(/\.batch$/, '.corrupt')));
      this.#drop(first.name);
      throw new CiAuditError('CIA_ERR_SPOOL_IO', `spool batch ${path} is corrupt; moved aside as .corrupt for inspection`, { details: { file: path } });
    }
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
