// The anchor file: every checkpoint whose signature verified, one JSON line each, appended and
// fsynced before the request that carried it is acknowledged. It lives outside Elasticsearch, so
// that someone who can rewrite the index (and recompute every hash) still cannot make `ci-audit
// verify` agree with the anchors an operator kept elsewhere (a WORM volume, a log shipper).
//
// A line is the same bytes whenever the same checkpoint is anchored again (a re-sent request after
// the aggregator restarted): readers treat identical lines as one.
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SignedCheckpoint } from '../../core/integrity/checkpoint.ts';
import { canonicalJson } from '../../core/integrity/canonical-json.ts';
import { CiAuditError } from '../../core/errors.ts';

export const anchorVersion = 1;

/** One anchor line as JSON (RFC 8785 text, so identical checkpoints give identical lines). */
export function anchorLine(checkpoint: SignedCheckpoint): string {
  const line: Record<string, string | number> = {
    v: anchorVersion,
    type: checkpoint.type,
    agent: checkpoint.agent,
    key: checkpoint.key,
    seq: checkpoint.seq,
    hash: checkpoint.hash,
    time: checkpoint.timeUnixNano.toString(),
    signature: checkpoint.signature,
  };
  if (checkpoint.nextKey !== undefined) line.next_key = checkpoint.nextKey;
  if (checkpoint.nextPublicKey !== undefined) line.next_public_key = checkpoint.nextPublicKey;
  return canonicalJson(line);
}

/** Most recently anchored checkpoints remembered, so that a re-send within one run adds no line. */
const rememberedLines = 10_000;

export class AnchorFile {
  readonly file: string;
  readonly #handle: FileHandle;
  readonly #recent = new Set<string>();
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(file: string, handle: FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  /** Opens (creates) the file for appending. Throws CIA_ERR_INTEGRITY_ANCHOR when it cannot. */
  static async open(file: string): Promise<AnchorFile> {
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o750 });
      return new AnchorFile(file, await open(file, 'a', 0o640));
    } catch (cause) {
      throw anchorError(`cannot open the anchor file ${file} (integrity.anchor_file) for appending: ${(cause as Error).message}`, file, cause);
    }
  }

  /** Appends one line per checkpoint not anchored before in this run, then fsyncs. Calls run one after the other. */
  append(checkpoints: readonly SignedCheckpoint[]): Promise<void> {
    const lines = checkpoints.map(anchorLine).filter((line) => !this.#recent.has(line));
    if (lines.length === 0) return this.#tail;
    const run = this.#tail.then(() => this.#write(lines));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #write(lines: string[]): Promise<void> {
    if (this.#closed) throw anchorError(`the anchor file ${this.file} is closed`, this.file);
    try {
      await this.#handle.appendFile(`${lines.join('\n')}\n`, 'utf8');
      await this.#handle.sync();
    } catch (cause) {
      throw anchorError(`cannot append to the anchor file ${this.file} (integrity.anchor_file): ${(cause as Error).message}; the request is not acknowledged`, this.file, cause);
    }
    for (const line of lines) {
      this.#recent.add(line);
      if (this.#recent.size > rememberedLines) this.#recent.delete(this.#recent.values().next().value!);
    }
  }

  /** Waits for pending appends and closes the file. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#tail;
    this.#closed = true;
    await this.#handle.close();
  }
}

function anchorError(message: string, file: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_INTEGRITY_ANCHOR', message, { details: { file }, ...(cause === undefined ? {} : { cause }) });
}
