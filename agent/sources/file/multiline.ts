// Joins lines into multiline records (stack traces, continuation lines): a line that matches the
// start pattern (or, with `negate`, one that does not) starts a record; the lines after it are
// appended until the next start. Pure and synchronous. A record covers its first line's offset to
// its last line's end, so the checkpoint moves past the whole record only once it was
// acknowledged, and a restart reads it again from its first line. Limits on lines and bytes end a
// record early, flagged `split` (the rest comes as a record flagged `continued`): nothing is dropped.
import type { Line } from './line-splitter.ts';

export interface MultilineOptions {
  startPattern: RegExp;
  /** Start a record at lines that do NOT match the pattern instead. */
  negate: boolean;
  maxLines: number;
  maxBytes: number;
}

/** A joined record: a Line whose text holds its lines separated by `\n`, plus how many lines it joins. */
export interface MultilineRecord extends Line {
  lines: number;
}

export class MultilineJoiner {
  #options: MultilineOptions;
  #current: MultilineRecord | undefined;
  #bytes = 0;

  constructor(options: MultilineOptions) {
    this.#options = options;
  }

  /** A record is being collected (its lines are read but not emitted). */
  get pending(): boolean {
    return this.#current !== undefined;
  }

  /** File bytes covered by the record being collected (0 when none). */
  get pendingBytes(): number {
    return this.#current === undefined ? 0 : this.#current.end - this.#current.offset;
  }

  /** Adds the next line; returns the records it completes, in order. */
  push(line: Line): MultilineRecord[] {
    const out: MultilineRecord[] = [];
    const starts = this.#options.startPattern.test(line.text) !== this.#options.negate;
    // A fragment of an over-long or partial line continues the line before it, whatever it says.
    const startsRecord = starts && line.continued !== true;
    if (this.#current !== undefined && startsRecord) out.push(this.#take());
    if (this.#current === undefined) {
      this.#current = { ...line, lines: 1 };
      this.#bytes = Buffer.byteLength(line.text);
    } else {
      const size = Buffer.byteLength(line.text) + 1;
      if (this.#current.lines >= this.#options.maxLines || this.#bytes + size > this.#options.maxBytes) {
        const full = this.#take();
        full.split = true;
        out.push(full);
        this.#current = { ...line, lines: 1, continued: true };
        this.#bytes = size - 1;
      } else {
        this.#append(line, size);
      }
    }
    return out;
  }

  /** Emits the record being collected (timeout, or the file is let go). */
  flush(): MultilineRecord | undefined {
    return this.#current === undefined ? undefined : this.#take();
  }

  #append(line: Line, size: number): void {
    const cur = this.#current!;
    cur.text = `${cur.text}\n${line.text}`;
    cur.end = line.end;
    cur.lines++;
    this.#bytes += size;
    if (line.invalidUtf8) cur.invalidUtf8 = true;
    if (line.nulBytes === true) cur.nulBytes = true;
    if (line.truncatedFrom !== undefined) cur.truncatedFrom = line.truncatedFrom;
    // The record ends where its last line does: partial if that one was.
    if (line.partial === true) cur.partial = true;
    else delete cur.partial;
    if (line.split === true) cur.split = true;
    else delete cur.split;
  }

  #take(): MultilineRecord {
    const record = this.#current!;
    this.#current = undefined;
    this.#bytes = 0;
    return record;
  }
}
