// Splits the bytes of a file into lines. Pure and synchronous, so that it is tested on bytes alone.
// A line ends with `\n`; a `\r` right before it belongs to the ending (`\r\n`). Bytes after the
// last newline are a partial line: they wait for their newline (or for `flushPartial`, which the
// reader calls after the partial-line timeout), so a writer halfway through a line is not shipped
// half a line. A line longer than `maxLineBytes` is split into flagged fragments or truncated and
// flagged, so memory stays bounded and nothing is dropped silently.
import { isAscii, isUtf8 } from 'node:buffer';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const NUL = 0x00;

/** What to do with a line longer than the limit. */
export type OverLongPolicy = 'split' | 'truncate';

export interface LineSplitterOptions {
  /** Longest line content kept, in bytes. Default: 1 MiB. */
  maxLineBytes?: number;
  /** `split` (default): fragments of at most maxLineBytes (cut between characters), each flagged; `truncate`: the head is kept, the rest skipped, flagged. */
  overLong?: OverLongPolicy;
}

/** One line (or a flagged piece of one). Optional flags are present only when set. */
export interface Line {
  /** The line decoded as UTF-8, without its ending; invalid bytes become U+FFFD, NUL bytes are removed. */
  text: string;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Byte offset just past what this record covers (the ending, or the fragment): where reading resumes. */
  end: number;
  /** True when the bytes were not valid UTF-8 (and `text` holds replacement characters). */
  invalidUtf8: boolean;
  /** Set when the line was longer than the limit and only its head is in `text`: the line's length in bytes. */
  truncatedFrom?: number;
  /** A fragment of an over-long line that continues in the next record. */
  split?: true;
  /** Emitted without its newline (partial-line timeout); the rest of the line, if it comes, is a new record. */
  partial?: true;
  /** The rest of a line whose head was emitted before (as a fragment or a partial line). */
  continued?: true;
  /** The line held NUL bytes, which were removed from `text`. */
  nulBytes?: true;
}

export const defaultMaxLineBytes = 1024 * 1024;

const empty = Buffer.alloc(0);

export class LineSplitter {
  readonly maxLineBytes: number;
  readonly overLong: OverLongPolicy;
  /** Kept bytes of the pending line (at most maxLineBytes): the start of `#room`. */
  #partial: Buffer = empty;
  /**
   * Where the pending line's bytes are kept, grown by doubling: a line longer than a read is then
   * copied about twice in all, where a buffer made anew for each read copied it once per read
   * (a 1 MiB line in 16 KiB reads: 34 MB). Not Buffer.concat or Buffer.from: they cut small
   * buffers from Node.js's shared 8 KiB pool, and a pending line waits across a read, long enough
   * to be promoted with its view; the pool slab it pins then waits for a full GC, which a tail
   * whose records die young seldom runs: 2.5 MB more per 3 million lines in bench/tail.ts.
   */
  #room: Buffer = empty;
  /** File offset where the pending line starts. */
  #partialOffset: number;
  /** Bytes of the pending line skipped after the limit (truncate policy). */
  #skipped = 0;
  /** The last byte skipped was a `\r`: the `\r` of a `\r\n` ending if the newline comes next. */
  #skippedCr = false;
  /** The next line continues one whose head was already emitted. */
  #continued = false;

  /** @param offset file offset of the first byte that will be pushed */
  constructor(offset = 0, options: LineSplitterOptions = {}) {
    this.#partialOffset = offset;
    this.maxLineBytes = options.maxLineBytes ?? defaultMaxLineBytes;
    this.overLong = options.overLong ?? 'split';
  }

  /** File offset of the next byte `push` expects. */
  get nextOffset(): number {
    return this.#partialOffset + this.#partial.length + this.#skipped;
  }

  /** Offset where the pending partial line starts: a reader resumes here after a restart. */
  get partialOffset(): number {
    return this.#partialOffset;
  }

  /** Bytes waiting for their newline (kept plus skipped; a \r held after a full line's content too). */
  get partialLength(): number {
    return this.#partial.length + this.#skipped;
  }

  /** Adds the next bytes of the file and returns the lines they complete, in order. */
  push(chunk: Uint8Array): Line[] {
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const lines: Line[] = [];
    const max = this.maxLineBytes;
    let pos = 0;
    if (this.#partial.length > 0 || this.#skipped > 0) {
      // A chunk rarely ends at a newline, so most chunks start with the rest of a pending line:
      // finish it first, so that the fast path below can take the rest of the chunk.
      const nl = data.indexOf(NEWLINE);
      this.#append(data, 0, nl === -1 ? data.length : nl, lines);
      if (nl === -1) return lines;
      this.#endLine(lines);
      pos = nl + 1;
    }
    pos = this.#pushAscii(data, pos, lines);
    while (pos < data.length) {
      const nl = data.indexOf(NEWLINE, pos);
      const stop = nl === -1 ? data.length : nl;
      if (this.#partial.length === 0 && this.#skipped === 0 && nl !== -1) {
        // The common case: a whole line inside the chunk, decoded straight from the read buffer.
        // The limit is on the content: the \r of a \r\n ending does not count.
        const contentEnd = nl > pos && data[nl - 1] === CARRIAGE_RETURN ? nl - 1 : nl;
        if (contentEnd - pos <= max) {
          lines.push(this.#line(data.subarray(pos, contentEnd), this.#partialOffset, this.#partialOffset + nl - pos + 1));
          this.#partialOffset += nl - pos + 1;
          pos = stop + 1;
          continue;
        }
      }
      this.#append(data, pos, stop, lines);
      if (nl !== -1) this.#endLine(lines);
      pos = stop + 1;
    }
    return lines;
  }

  /**
   * The fast path for the common case: no line pending, and the complete lines of `data` from
   * `from` on are ASCII without NUL. They are decoded with one call for the whole run (where a
   * byte is a character, so byte offsets are string indexes) and cut into substrings, instead of a
   * buffer view, a UTF-8 scan and a decode per line. Stops at the first over-long line. Returns
   * where the rest starts.
   */
  #pushAscii(data: Buffer, from: number, lines: Line[]): number {
    if (this.#partial.length > 0 || this.#skipped > 0 || this.#continued) return from;
    const last = data.lastIndexOf(NEWLINE);
    if (last < from) return from;
    const run = data.subarray(from, last + 1);
    if (!isAscii(run) || run.indexOf(NUL) !== -1) return from;
    const text = run.toString('latin1');
    const max = this.maxLineBytes;
    let i = 0;
    while (i < text.length) {
      const nl = text.indexOf('\n', i);
      const contentEnd = nl > i && text.charCodeAt(nl - 1) === CARRIAGE_RETURN ? nl - 1 : nl;
      if (contentEnd - i > max) break;
      const offset = this.#partialOffset;
      this.#partialOffset = offset + nl - i + 1;
      lines.push({ text: text.slice(i, contentEnd), offset, end: this.#partialOffset, invalidUtf8: false });
      i = nl + 1;
    }
    return from + i;
  }

  /**
   * Emits the pending bytes as a line flagged `partial` (the partial-line timeout ran out, or the
   * file is let go). Returns undefined when nothing is pending.
   */
  flushPartial(): Line | undefined {
    if (this.partialLength === 0) return undefined;
    const line = this.#finish(this.#partial, this.nextOffset);
    line.partial = true;
    this.#continued = true;
    return line;
  }

  /**
   * Adds `data[from, to)` (no newline in it) to the pending line, applying the length limit. The
   * limit is on the line's content: a `\r` right after a full line's content is held (one byte
   * over) until the next byte tells whether it is the `\r` of a `\r\n` ending.
   */
  #append(data: Buffer, from: number, to: number, lines: Line[]): void {
    const max = this.maxLineBytes;
    while (from < to) {
      if (this.#skipped > 0) {
        this.#skipped += to - from;
        this.#skippedCr = data[to - 1] === CARRIAGE_RETURN;
        return;
      }
      const kept = this.#partial.length;
      if (kept < max) {
        const take = Math.min(max - kept, to - from);
        this.#keep(data, from, from + take);
        from += take;
        continue;
      }
      if (kept === max && to - from === 1 && data[from] === CARRIAGE_RETURN) {
        // The last byte before the newline (or of the chunk): maybe the ending's \r.
        this.#keep(data, from, to);
        return;
      }
      // Over the limit: cut after the last whole character of the first maxLineBytes bytes.
      const cut = this.#cutAt(kept === max ? data[from]! : this.#partial[max]!);
      if (this.overLong === 'truncate') {
        // The head is kept; the rest of the line (the bytes of a character cut by the limit, a
        // held \r, what follows up to the newline) is skipped and counted.
        this.#skipped = kept - cut + (to - from);
        this.#skippedCr = data[to - 1] === CARRIAGE_RETURN;
        this.#partial = this.#partial.subarray(0, cut);
        return;
      }
      // Split: the fragment goes out now; the bytes after the cut start a new (continued) record.
      const rest = this.#partial.subarray(cut);
      const line = this.#finish(this.#partial.subarray(0, cut), this.#partialOffset + cut);
      line.split = true;
      lines.push(line);
      this.#continued = true;
      if (rest.length > 0) this.#keep(rest, 0, rest.length);
    }
  }

  /**
   * Where to cut a line at the limit, `next` being the byte just past its first maxLineBytes bytes:
   * before a character the limit would cut in two (its bytes are backed over, at most 3), so both
   * fragments stay valid UTF-8; at the limit when the cut falls between characters, or when the
   * bytes there are not valid UTF-8 anyway. Runs once per fragment of an over-long line only.
   */
  #cutAt(next: number): number {
    const max = this.maxLineBytes;
    if ((next & 0xc0) !== 0x80) return max; // `next` starts a character (or is no part of one)
    const p = this.#partial;
    let start = max - 1;
    while (start > 0 && start > max - 3 && (p[start]! & 0xc0) === 0x80) start--;
    const lead = p[start]!;
    const length = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    // No lead byte there, or its character ends before the limit (then `next` is a stray byte).
    if (start === 0 || length <= max - start) return max;
    // The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF.
    const second = start + 1 < max ? p[start + 1]! : next;
    if ((lead === 0xe0 && second < 0xa0) || (lead === 0xed && second > 0x9f) || (lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return max;
    return start;
  }

  /**
   * Copies `data[from, to)` after the pending bytes (`data` may be the caller's read buffer, which
   * it reuses). The room grows by doubling, up to maxLineBytes + 1 (a held \r).
   */
  #keep(data: Buffer, from: number, to: number): void {
    const kept = this.#partial.length;
    const need = kept + to - from;
    if (need > this.#room.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.maxLineBytes + 1, Math.max(need, 2 * this.#room.length, 256)));
      this.#partial.copy(grown, 0);
      this.#room = grown;
    }
    data.copy(this.#room, kept, from, to);
    this.#partial = this.#room.subarray(0, need);
  }

  /** The newline of the pending line was found. */
  #endLine(lines: Line[]): void {
    let content = this.#partial;
    // The \r of a \r\n ending is no part of the line, nor of its length when truncated.
    let ending = 0;
    if (this.#skipped > 0) {
      if (this.#skippedCr) ending = 1;
    } else if (content.length > 0 && content[content.length - 1] === CARRIAGE_RETURN) {
      content = content.subarray(0, content.length - 1);
    }
    lines.push(this.#finish(content, this.nextOffset + 1, ending));
  }

  /** Makes a line of the pending bytes ending at `end` and resets the pending state. */
  #finish(content: Buffer, end: number, ending = 0): Line {
    const line = this.#line(content, this.#partialOffset, end);
    if (this.#skipped > 0) line.truncatedFrom = this.#partial.length + this.#skipped - ending;
    // The line's text is decoded already; a long line's room is not kept for the file's life.
    this.#partial = empty;
    this.#room = empty;
    this.#skipped = 0;
    this.#skippedCr = false;
    this.#partialOffset = end;
    return line;
  }

  #line(bytes: Buffer, offset: number, end: number): Line {
    // isUtf8 is a native scan; decoding alone would hide invalid bytes behind U+FFFD.
    const invalidUtf8 = !isUtf8(bytes);
    let line: Line;
    if (bytes.indexOf(NUL) === -1) {
      line = { text: bytes.toString('utf8'), offset, end, invalidUtf8 };
    } else {
      // NUL bytes (sparse holes after a copytruncate, binary files) carry no text and break some consumers.
      line = { text: bytes.toString('utf8').replaceAll('\0', ''), offset, end, invalidUtf8, nulBytes: true };
    }
    if (this.#continued) {
      line.continued = true;
      this.#continued = false;
    }
    return line;
  }
}
