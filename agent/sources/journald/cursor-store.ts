// The journald source's durable position: the cursor of the last entry such that it and every entry
// before it were acknowledged (or skipped by the filter). One small JSON file per source under
// `<state_dir>/journald/<source id>.json`, replaced atomically. Writes are coalesced: a burst of
// acks ends in one write.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CiAuditError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/logger.ts';
import { writeFileDurably } from '../../../core/durable-file.ts';

export const cursorFileVersion = 1;

interface CursorDocument {
  version: number;
  source: string;
  cursor: string;
  updated_at: string;
}

export function cursorPath(stateDir: string, sourceId: string): string {
  return join(stateDir, 'journald', `${sourceId}.json`);
}

/** Reads the saved cursor; undefined when there is none yet. Rejects with CIA_ERR_SOURCE_CHECKPOINT on a corrupt file. */
export async function readCursor(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CiAuditError('CIA_ERR_SOURCE_CHECKPOINT', `cannot read journald cursor ${file}: ${(cause as Error).message}`, { cause, details: { file } });
  }
  let doc: Partial<CursorDocument>;
  try {
    doc = JSON.parse(text) as Partial<CursorDocument>;
  } catch (cause) {
    throw new CiAuditError(
      'CIA_ERR_SOURCE_CHECKPOINT',
      `journald cursor file ${file} is not valid JSON (${(cause as Error).message}); move it away to read the journal from start_at again`,
      { cause, details: { file } },
    );
  }
  if (doc.version !== cursorFileVersion || typeof doc.cursor !== 'string') {
    throw new CiAuditError(
      'CIA_ERR_SOURCE_CHECKPOINT',
      `journald cursor file ${file} has version ${String(doc.version)} or no cursor; this agent reads version ${cursorFileVersion}`,
      { details: { file } },
    );
  }
  return doc.cursor;
}

export class CursorStore {
  readonly file: string;
  #sourceId: string;
  #logger: Logger;
  #cursor: string | undefined;
  #written: string | undefined;
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #failing = false;

  constructor(file: string, sourceId: string, logger: Logger, cursor: string | undefined) {
    this.file = file;
    this.#sourceId = sourceId;
    this.#logger = logger;
    this.#cursor = cursor;
    this.#written = cursor;
  }

  get cursor(): string | undefined {
    return this.#cursor;
  }

  set(cursor: string): void {
    if (cursor === this.#cursor) return;
    this.#cursor = cursor;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.flush().then(
        () => {
          if (!this.#failing) return;
          this.#failing = false;
          this.#logger.info({ file: this.file }, 'journald cursor written again');
        },
        (err: unknown) => {
          if (this.#failing) return;
          this.#failing = true;
          this.#logger.error(
            { code: 'CIA_ERR_SOURCE_CHECKPOINT', err: (err as Error).message },
            'cannot write the journald cursor; retrying with the next acknowledgement (entries after the last written cursor are sent again after a restart)',
          );
        },
      );
    });
  }

  /** Writes the cursor now if it changed; rejects with CIA_ERR_SOURCE_CHECKPOINT when the write fails. */
  flush(): Promise<void> {
    const run = this.#chain.then(() => this.#writeIfChanged());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #writeIfChanged(): Promise<void> {
    const cursor = this.#cursor;
    if (cursor === undefined || cursor === this.#written) return;
    const doc: CursorDocument = { version: cursorFileVersion, source: this.#sourceId, cursor, updated_at: new Date().toISOString() };
    try {
      await writeFileDurably(this.file, `${JSON.stringify(doc, null, 2)}\n`);
      this.#written = cursor;
    } catch (cause) {
      throw new CiAuditError('CIA_ERR_SOURCE_CHECKPOINT', `cannot write journald cursor ${this.file}: ${(cause as Error).message}`, { cause, details: { file: this.file } });
    }
  }
}
