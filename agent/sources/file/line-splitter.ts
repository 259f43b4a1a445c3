// Splits the bytes of a file into lines. Pure and synchronous, so that it is tested on bytes alone.
// A line ends with `\n`; a `\r` right before it belongs to the ending (`\r\n`). Bytes after the
// last newline are a partial line: they wait for their newline, so a writer that is halfway
// through a line is never shipped half a line.
import { isUtf8 } from 'node:buffer';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** One complete line. */
export interface Line {
  /** The line decoded as UTF-8, without its ending; invalid bytes become U+FFFD. */
  text: string;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** Byte offset just past the line's ending: where the next line starts. */
  end: number;
  /** True when the bytes were not valid UTF-8 (and `text` holds replacement characters). */
  invalidUtf8: boolean;
}

export class LineSplitter {
  /** Bytes of the partial line at the end of what was pushed so far. */
  #partial: Buffer = Buffer.alloc(0);
  /** File offset of `#partial[0]`; equals the offset of the next byte to push when `#partial` is empty. */
  #partialOffset: number;

  /** @param offset file offset of the first byte that will be pushed */
  constructor(offset = 0) {
    this.#partialOffset = offset;
  }

  /** File offset of the next byte `push` expects. */
  get nextOffset(): number {
    return this.#partialOffset + this.#partial.length;
  }

  /** Offset where the pending partial line starts: a reader resumes here after a restart. */
  get partialOffset(): number {
    return this.#partialOffset;
  }

  /** Bytes waiting for their newline. */
  get partialLength(): number {
    return this.#partial.length;
  }

  /** Adds the next bytes of the file and returns the lines they complete, in order. */
  push(chunk: Uint8Array): Line[] {
    const data = this.#partial.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.#partial, chunk]);
    const base = this.#partialOffset;
    const lines: Line[] = [];
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      const contentEnd = nl > start && data[nl - 1] === CARRIAGE_RETURN ? nl - 1 : nl;
      lines.push(decodeLine(data.subarray(start, contentEnd), base + start, base + nl + 1));
      start = nl + 1;
    }
    // Copy the remainder: `data` may be the caller's read buffer, which it reuses.
    this.#partial = Buffer.from(data.subarray(start));
    this.#partialOffset = base + start;
    return lines;
  }
}

function decodeLine(bytes: Buffer, offset: number, end: number): Line {
  // isUtf8 is a native scan; decoding alone would hide invalid bytes behind U+FFFD.
  return { text: bytes.toString('utf8'), offset, end, invalidUtf8: !isUtf8(bytes) };
}
