// Batches the aggregator rejected as malformed (HTTP 400, 413, other 4xx), set aside in
// `<state_dir>/rejected/` so that they neither block shipping nor vanish. Each batch is two files:
// - `<id>.otlp.pb.gz`: the ExportLogsServiceRequest exactly as it would be sent (protobuf, gzip),
//   so that `ci-audit agent rejected resend` posts it unchanged and its records keep their record
//   ids and chain positions;
// - `<id>.json`: what happened (time, HTTP status, the aggregator's message, record count, chain
//   sequence range), written after the data: an entry counts only once its metadata is in place.
// Both are written durably (core/durable-file.ts) before the batch is acknowledged. Ids start with
// the UTC time, so that names sort oldest first. The folder is bounded by `output.rejected.max_bytes`:
// the oldest entries are deleted beyond it (their records were declared as a chain gap when they
// were set aside, so the chain stays honest; only their content is gone).
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../core/durable-file.ts';
import { CiAuditError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';

/** The folder of set-aside batches under the agent's state folder. */
export function rejectedDir(stateDir: string): string {
  return join(stateDir, 'rejected');
}

const dataSuffix = '.otlp.pb.gz';
const metaSuffix = '.json';
const idPattern = /^[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}$/;

/** What is known about a rejected batch when it is set aside. */
export interface RejectedBatchInfo {
  /** HTTP status of the rejection (0 when the agent could not even encode the batch). */
  status: number;
  /** The aggregator's message (already bounded and cleaned by the exporter). */
  message: string;
  records: number;
  /** Chain sequence numbers the batch holds, in contiguous runs (empty when unchained). */
  seqRanges: { first: number; last: number }[];
  firstRecordId?: string | undefined;
  lastRecordId?: string | undefined;
}

/** The metadata file of a set-aside batch (`<id>.json`). */
export interface RejectedEntry {
  version: 1;
  id: string;
  /** ISO time the batch was set aside. */
  set_aside_at: string;
  status: number;
  message: string;
  records: number;
  seq_ranges: { first: number; last: number }[];
  first_record_id?: string;
  last_record_id?: string;
  /** Name of the data file beside it. */
  data_file: string;
  data_bytes: number;
}

export interface RejectedStoreOptions {
  dir: string;
  /** `output.rejected.max_bytes`. */
  maxBytes: number;
  logger: Logger;
}

interface Held {
  id: string;
  bytes: number;
}

export class RejectedStore {
  readonly dir: string;
  #maxBytes: number;
  #logger: Logger;
  /** Complete entries, oldest first, with their bytes on disk (data + metadata). */
  #held: Held[];
  #bytes: number;
  /** Set-aside writes run one at a time, so the bound is enforced on a settled list. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(options: RejectedStoreOptions, held: Held[]) {
    this.dir = options.dir;
    this.#maxBytes = options.maxBytes;
    this.#logger = options.logger;
    this.#held = held;
    this.#bytes = held.reduce((sum, h) => sum + h.bytes, 0);
  }

  /**
   * Reads what the folder holds. A data file without its metadata (a crash between the two writes:
   * the batch was never acknowledged and is sent again) and temp files of interrupted writes are removed.
   */
  static async open(options: RejectedStoreOptions): Promise<RejectedStore> {
    let held: Held[];
    try {
      held = await scan(options.dir, true);
    } catch (err) {
      throw ioError(`cannot read ${options.dir}`, err, options.dir);
    }
    return new RejectedStore(options, held);
  }

  /** Set-aside batches held. */
  get count(): number {
    return this.#held.length;
  }

  /** Bytes of set-aside batches held (data and metadata files). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Writes a rejected batch (`body`: the gzip of its ExportLogsServiceRequest) and its metadata
   * durably, then deletes the oldest entries beyond `maxBytes`. Rejects with CIA_ERR_REJECTED_IO
   * when the folder cannot be written; nothing is then held for the batch.
   */
  setAside(body: Uint8Array, info: RejectedBatchInfo): Promise<RejectedEntry> {
    const run = this.#tail.then(() => this.#setAside(body, info));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #setAside(body: Uint8Array, info: RejectedBatchInfo): Promise<RejectedEntry> {
    const now = new Date();
    const id = `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
    const entry: RejectedEntry = {
      version: 1,
      id,
      set_aside_at: now.toISOString(),
      status: info.status,
      message: info.message,
      records: info.records,
      seq_ranges: info.seqRanges,
      ...(info.firstRecordId === undefined ? {} : { first_record_id: info.firstRecordId }),
      ...(info.lastRecordId === undefined ? {} : { last_record_id: info.lastRecordId }),
      data_file: id + dataSuffix,
      data_bytes: body.byteLength,
    };
    const meta = `${JSON.stringify(entry, null, 2)}\n`;
    const dataPath = join(this.dir, entry.data_file);
    try {
      await writeFileDurably(dataPath, body);
      await writeFileDurably(join(this.dir, id + metaSuffix), meta);
    } catch (err) {
      await rm(dataPath, { force: true }).catch(() => undefined);
      throw ioError(`cannot set aside a rejected batch in ${this.dir}`, err, this.dir);
    }
    const bytes = body.byteLength + Buffer.byteLength(meta);
    this.#held.push({ id, bytes });
    this.#bytes += bytes;
    await this.#evict();
    return entry;
  }

  /** Deletes the oldest entries while the folder holds more than `maxBytes`. */
  async #evict(): Promise<void> {
    // Counted afresh: `ci-audit agent rejected resend` may have removed entries meanwhile.
    this.#held = await scan(this.dir).catch(() => this.#held);
    this.#bytes = this.#held.reduce((sum, h) => sum + h.bytes, 0);
    while (this.#bytes > this.#maxBytes && this.#held.length > 0) {
      const oldest = this.#held[0]!;
      try {
        // Metadata first: a crash in between leaves a data file alone, which `open` removes.
        await rm(join(this.dir, oldest.id + metaSuffix), { force: true });
        await rm(join(this.dir, oldest.id + dataSuffix), { force: true });
      } catch (err) {
        this.#logger.error(
          { code: 'CIA_ERR_REJECTED_IO', id: oldest.id, err: (err as Error).message },
          'cannot delete the oldest set-aside batch; the rejected folder stays above output.rejected.max_bytes until it can',
        );
        return;
      }
      this.#held.shift();
      this.#bytes -= oldest.bytes;
      this.#logger.warn(
        { code: 'CIA_ERR_REJECTED_EVICTED', id: oldest.id, bytes: oldest.bytes, heldBytes: this.#bytes, maxBytes: this.#maxBytes },
        'set-aside batches exceed output.rejected.max_bytes: deleted the oldest (its records were declared as a chain gap when it was set aside)',
      );
    }
  }

}

/** The set-aside batches in `dir`, oldest first (for `ci-audit agent rejected list`). */
export async function listRejected(dir: string): Promise<RejectedEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`cannot read ${dir}`, err, dir);
  }
  const out: RejectedEntry[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith(metaSuffix) || !idPattern.test(name.slice(0, -metaSuffix.length))) continue;
    try {
      out.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as RejectedEntry);
    } catch (err) {
      // Removed meanwhile (evicted, re-sent): not listed.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw ioError(`cannot read ${join(dir, name)}`, err, dir);
    }
  }
  return out;
}

/** How many set-aside batches `dir` holds and their bytes (for /status and /metrics). */
export async function rejectedUsage(dir: string): Promise<{ batches: number; bytes: number }> {
  const held = await scan(dir).catch(() => [] as Held[]);
  return { batches: held.length, bytes: held.reduce((sum, h) => sum + h.bytes, 0) };
}

/** One set-aside batch: its metadata and the gzip of its request. */
export async function readRejected(dir: string, id: string): Promise<{ entry: RejectedEntry; body: Buffer }> {
  if (!idPattern.test(id)) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `${id} is not the id of a set-aside batch; ci-audit agent rejected list shows them`, { details: { id } });
  }
  try {
    const entry = JSON.parse(await readFile(join(dir, id + metaSuffix), 'utf8')) as RejectedEntry;
    const body = await readFile(join(dir, entry.data_file));
    return { entry, body };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CiAuditError('CIA_ERR_CLI_USAGE', `no set-aside batch ${id} in ${dir}; ci-audit agent rejected list shows them`, { details: { id, path: dir } });
    }
    throw ioError(`cannot read the set-aside batch ${id}`, err, dir);
  }
}

/** Deletes a set-aside batch (metadata first, as eviction does). */
export async function removeRejected(dir: string, id: string): Promise<void> {
  try {
    await rm(join(dir, id + metaSuffix), { force: true });
    await rm(join(dir, id + dataSuffix), { force: true });
  } catch (err) {
    throw ioError(`cannot remove the set-aside batch ${id}`, err, dir);
  }
}

/** Complete entries in `dir`, oldest first; `clean` removes what interrupted writes left. */
async function scan(dir: string, clean = false): Promise<Held[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const complete = new Set(names.filter((n) => n.endsWith(metaSuffix)).map((n) => n.slice(0, -metaSuffix.length)));
  const held: Held[] = [];
  for (const name of names.sort()) {
    if (clean && (name.includes('.tmp-') || (name.endsWith(dataSuffix) && !complete.has(name.slice(0, -dataSuffix.length))))) {
      await rm(join(dir, name), { force: true }).catch(() => undefined);
      continue;
    }
    if (!name.endsWith(metaSuffix)) continue;
    const id = name.slice(0, -metaSuffix.length);
    if (!idPattern.test(id)) continue;
    held.push({ id, bytes: (await sizeOf(join(dir, name))) + (await sizeOf(join(dir, id + dataSuffix))) });
  }
  return held;
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

function ioError(what: string, cause: unknown, path: string): CiAuditError {
  return new CiAuditError('CIA_ERR_REJECTED_IO', `${what}: ${(cause as Error).message}; check the folder's permissions and free space`, {
    cause,
    details: { path },
  });
}
