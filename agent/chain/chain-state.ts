// Where the agent's chain stands across restarts: <state_dir>/chain.json, replaced atomically
// (temp file, fsync, rename, fsync of the folder).
//
//   {"version":1,"agent":"<id>","committed":{"seq":n,"hash":"<hex>"},"reserved":r,"clean":bool,"key":"<key id>"}
//
// `committed`: every record up to seq is committed (acknowledged by the aggregator, or durable in the
// disk buffer). `reserved`: no sequence number above it was ever handed out; numbers are reserved a
// block at a time, durably, before the first of them is used. `clean`: the agent stopped with every
// handed-out number committed, so the chain continues at committed.seq + 1.
//
// Writes come from two places: the asynchronous writer (commits, reservations ahead of need) and a
// synchronous fallback when records outran the reservation. Each write carries a generation; a write
// only renames its file into place when no newer generation has been renamed (core/durable-file.ts
// checks and renames in one turn of the event loop), so the file never goes back to an older
// reservation.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably, writeFileDurablySync } from '../../core/durable-file.ts';
import { CiAuditError } from '../../core/errors.ts';
import { emptyChainHead, isChainHash, type ChainHead } from '../../core/integrity/chain.ts';

export const chainStateVersion = 1;

export interface ChainStateData {
  version: typeof chainStateVersion;
  agent: string;
  committed: ChainHead;
  reserved: number;
  clean: boolean;
  /** Id of the key that signs the agent's checkpoints. */
  key: string;
}

export function chainStatePath(stateDir: string): string {
  return join(stateDir, 'chain.json');
}

function stateError(message: string, file: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_INTEGRITY_STATE', message, { details: { path: file }, ...(cause === undefined ? {} : { cause }) });
}

/**
 * The saved state, or a new chain (seq 0, genesis hash, nothing reserved, clean) when there is no
 * file. A file that is not a chain state of this agent is refused: guessing would either fork the
 * chain or hide a loss.
 */
export async function readChainState(file: string, agent: string, key: string): Promise<ChainStateData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
      return { version: chainStateVersion, agent, committed: { ...emptyChainHead }, reserved: 0, clean: true, key };
    }
    throw stateError(`cannot read the chain state ${file}: ${(cause as Error).message}`, file, cause);
  }
  const fix = `restore it from a backup, or move it away to start a new chain (the aggregator then reports the break)`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw stateError(`the chain state ${file} is not valid JSON (${(cause as Error).message}); ${fix}`, file, cause);
  }
  const s = parsed as Partial<ChainStateData> | null;
  const committed = s?.committed as Partial<ChainHead> | undefined;
  if (
    s === null ||
    typeof s !== 'object' ||
    s.version !== chainStateVersion ||
    typeof s.agent !== 'string' ||
    typeof committed !== 'object' ||
    committed === null ||
    !Number.isSafeInteger(committed.seq) ||
    (committed.seq as number) < 0 ||
    !isChainHash(committed.hash) ||
    !Number.isSafeInteger(s.reserved) ||
    (s.reserved as number) < (committed.seq as number) ||
    typeof s.clean !== 'boolean' ||
    typeof s.key !== 'string'
  ) {
    throw stateError(`the chain state ${file} is not a version ${chainStateVersion} chain state (committed seq and hash, reserved >= committed, clean, key); ${fix}`, file);
  }
  if (s.agent !== agent) {
    throw stateError(`the chain state ${file} belongs to agent ${s.agent}, but agent.id is ${agent}; fix agent.id or use another state_dir`, file);
  }
  return s as ChainStateData;
}

/** Writes chain states in order; see the file comment. */
export class ChainStateWriter {
  readonly file: string;
  #generation = 0;
  #renamed = 0;
  #inFlight: Promise<void> | undefined;
  /** Set while a write is in flight: write again with the newest state when it is done. */
  #again: (() => ChainStateData) | undefined;
  /** The state most recently made durable. */
  #durable: ChainStateData;

  constructor(file: string, durable: ChainStateData) {
    this.file = file;
    this.#durable = durable;
  }

  get durable(): ChainStateData {
    return this.#durable;
  }

  /**
   * Writes the state `snapshot` returns when the write starts; while a write is in flight, once
   * more after it with the newest state (calls in between coalesce). Errors are reported to
   * `onError` (the caller logs them); the next write tries again.
   */
  schedule(snapshot: () => ChainStateData, onError: (err: Error) => void): void {
    if (this.#inFlight !== undefined) {
      this.#again = snapshot;
      return;
    }
    this.#inFlight = this.#writeAsync(snapshot())
      .catch((err: unknown) => onError(err as Error))
      .finally(() => {
        this.#inFlight = undefined;
        const again = this.#again;
        this.#again = undefined;
        if (again !== undefined) this.schedule(again, onError);
      });
  }

  /** Resolves when no write is in flight. */
  async idle(): Promise<void> {
    while (this.#inFlight !== undefined) await this.#inFlight;
  }

  /** Writes `state` before returning (the fallback when records outran the reservation, and start-up). */
  writeSync(state: ChainStateData): void {
    const generation = ++this.#generation;
    try {
      writeFileDurablySync(this.file, `${JSON.stringify(state)}\n`);
    } catch (cause) {
      throw stateError(`cannot write the chain state ${this.file}: ${(cause as Error).message}`, this.file, cause);
    }
    this.#renamed = generation;
    this.#noteDurable(state);
  }

  async #writeAsync(state: ChainStateData): Promise<void> {
    const generation = ++this.#generation;
    let replaced: boolean;
    try {
      // A newer state written meanwhile (synchronously) must not be replaced by this older one.
      replaced = await writeFileDurably(this.file, `${JSON.stringify(state)}\n`, {
        replaceIf: () => {
          if (generation < this.#renamed) return false;
          this.#renamed = generation;
          return true;
        },
      });
    } catch (cause) {
      throw stateError(`cannot write the chain state ${this.file}: ${(cause as Error).message}`, this.file, cause);
    }
    if (replaced) this.#noteDurable(state);
  }

  #noteDurable(state: ChainStateData): void {
    // Reservations only grow in what is on disk (see the generation check); keep the largest.
    if (state.reserved >= this.#durable.reserved || state.clean) this.#durable = state;
    else this.#durable = { ...state, reserved: this.#durable.reserved };
  }
}
