// The protobuf wire format, read by hand: varints, fixed-width numbers, length-delimited strings and
// bytes, and the skipping of unknown fields. otlp-protobuf-decode.ts walks the OTLP messages with it.
//
// Each check below mirrors what protobufjs 8 (the decoder this one replaced, still the reference in
// test/unit/aggregator/otlp-decode-differential.test.ts) accepts and refuses, so that a body is
// accepted or refused exactly as before:
//   - a varint has at most 10 bytes; uint32/int32 keep the low 32 bits, int64 the low 64 bits
//   - a tag has at most 5 bytes (field numbers below 2^29), field number 0 is refused
//   - a length has at most 5 bytes and is below 2^31
//   - strings are UTF-8 decoded strictly (invalid bytes refuse the body) and a leading BOM is kept
//   - nesting, messages and groups together, is refused beyond `recursionLimit` levels
import { Buffer } from 'node:buffer';

/** Deepest nesting of messages (and unknown groups) accepted, as protobufjs and protoc count it. */
export const recursionLimit = 100;

/** A malformed body: what was wrong and at which byte; the decoder adds the field path. */
export class WireError extends Error {
  readonly offset: number;
  /** Field path segments, innermost last, filled in as the error passes out through each message. */
  readonly path: string[] = [];
  /** True while the innermost segment names the field itself, before the message holding it adds its own. */
  fieldNamed = false;

  constructor(message: string, offset: number) {
    super(message);
    this.name = 'WireError';
    this.offset = offset;
  }
}

/** Longest ASCII string kept in `stringCache`. */
const cachedStringBytes = 64;
const cacheSlots = 4096;
/** Recently decoded short ASCII strings by hash, shared by all requests (at most 256 KiB of characters). */
const stringCache: Array<string | undefined> = new Array<string | undefined>(cacheSlots).fill(undefined);
const cacheLengths = new Uint8Array(cacheSlots);
/** The bytes of each cached string, `cachedStringBytes` per slot, to compare without reading the string. */
const cacheBytes = new Uint8Array(cacheSlots * cachedStringBytes);
const cacheView = new DataView(cacheBytes.buffer);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class WireReader {
  /** The body as a plain Uint8Array view (byte reads, copies of bytes values). */
  readonly bytes: Uint8Array;
  /** The same memory as a Buffer view, for its native latin1 and hex string conversions. */
  readonly #buffer: Buffer;
  readonly #view: DataView;
  /** Next byte to read. */
  pos = 0;
  /** End of the message being read: no read goes past it. */
  end: number;
  /** Where the last tag began, for errors about its field. */
  tagStart = 0;
  /** High and low 32 bits of the last int64 read by `varint64`. */
  hi = 0;
  lo = 0;

  constructor(body: Uint8Array) {
    this.bytes = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    this.#buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.#view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    this.end = body.byteLength;
  }

  /** A field tag (field number << 3 | wire type). */
  tag(): number {
    const b = this.bytes;
    let pos = this.pos;
    this.tagStart = pos;
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= this.end) throw this.#outOfRange('a field tag', this.pos);
      const byte = b[pos++]!;
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        if (value >>> 3 === 0) throw new WireError('illegal tag: field number 0', this.tagStart);
        return value >>> 0;
      }
    }
    if (pos >= this.end) throw this.#outOfRange('a field tag', this.pos);
    const byte = b[pos++]!;
    if (byte >= 0x80 || (byte & 0x70) !== 0) throw new WireError('invalid tag encoding (more than 5 bytes or a field number beyond 2^29)', this.pos);
    this.pos = pos;
    return (value | (byte << 28)) >>> 0;
  }

  /** A varint as an unsigned 32-bit number (higher bits dropped). */
  uint32(): number {
    const b = this.bytes;
    let pos = this.pos;
    // One-byte values are by far the most common (severity numbers, small counts).
    if (pos < this.end && b[pos]! < 0x80) {
      this.pos = pos + 1;
      return b[pos]!;
    }
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw this.#outOfRange('a varint', this.pos);
      const byte = b[pos++]!;
      if (i < 5) value |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    throw new WireError('invalid varint encoding (more than 10 bytes)', this.pos);
  }

  /** A length prefix: a varint of at most 5 bytes, below 2^31. */
  length(): number {
    const b = this.bytes;
    let pos = this.pos;
    if (pos < this.end && b[pos]! < 0x80) {
      this.pos = pos + 1;
      return b[pos]!;
    }
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= this.end) throw this.#outOfRange('a length', this.pos);
      const byte = b[pos++]!;
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    if (pos >= this.end) throw this.#outOfRange('a length', this.pos);
    const byte = b[pos++]!;
    if (byte > 7) throw new WireError('invalid length encoding (2^31 bytes or more)', this.pos);
    this.pos = pos;
    return (value | (byte << 28)) >>> 0;
  }

  /** A varint of up to 64 bits into `hi` and `lo`. */
  varint64(): void {
    const b = this.bytes;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw this.#outOfRange('a varint', this.pos);
      const byte = b[pos++]!;
      if (i < 4) lo |= (byte & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (byte & 0x7f) << 28;
        hi |= (byte & 0x7f) >>> 4;
      } else hi |= (byte & 0x7f) << (7 * (i - 5) + 3);
      if (byte < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new WireError('invalid varint encoding (more than 10 bytes)', this.pos);
  }

  /** A signed int64 varint: a number when it is a safe integer, a bigint otherwise. */
  int64(): number | bigint {
    this.varint64();
    const hi = this.hi | 0;
    // |hi| < 2^21 keeps hi * 2^32 + lo within +-2^53; -2^53 itself is not a safe integer.
    if (hi >= -0x200000 && hi < 0x200000) {
      const n = hi * 0x1_0000_0000 + this.lo;
      if (n !== -0x20_0000_0000_0000) return n;
    }
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  /** A varint read as a boolean: any set bit in any byte is true. */
  bool(): boolean {
    const b = this.bytes;
    let pos = this.pos;
    let value = false;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw this.#outOfRange('a varint', this.pos);
      const byte = b[pos++]!;
      if ((byte & 0x7f) !== 0) value = true;
      if (byte < 0x80) {
        this.pos = pos;
        return value;
      }
    }
    throw new WireError('invalid varint encoding (more than 10 bytes)', this.pos);
  }

  fixed32(): number {
    if (this.pos + 4 > this.end) throw this.#outOfRange('a fixed32', this.pos, 4);
    const value = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return value;
  }

  fixed64(): bigint {
    if (this.pos + 8 > this.end) throw this.#outOfRange('a fixed64', this.pos, 8);
    const value = this.#view.getBigUint64(this.pos, true);
    this.pos += 8;
    return value;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw this.#outOfRange('a double', this.pos, 8);
    const value = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return value;
  }

  /** Reads a length prefix and returns where the delimited value ends (checked against `end`). */
  delimited(what: string): number {
    const length = this.length();
    const valueEnd = this.pos + length;
    if (valueEnd > this.end) throw this.#outOfRange(what, this.pos, length);
    return valueEnd;
  }

  /** A length-delimited UTF-8 string, decoded strictly. */
  string(): string {
    const end = this.delimited('a string');
    const start = this.pos;
    this.pos = end;
    const b = this.bytes;
    const length = end - start;
    if (length > cachedStringBytes) return this.#decode(start, end);
    // Attribute keys and many values (dataset, path, host, user) repeat in every record: handing out
    // the same string again skips creating it, and a key already internalized makes the attribute
    // object cheaper to build. The hash reads the ends, where values like ids and ports differ.
    // Bytes are read and compared four at a time (DataView reads need no alignment): a byte at a
    // time, the lookup was a quarter of decoding an agent's parsed record.
    const view = this.#view;
    let hash = length;
    if (length >= 8) {
      hash = Math.imul(hash ^ view.getUint32(end - 8, true), 0x01000193);
      hash = Math.imul(hash ^ view.getUint32(end - 4, true), 0x01000193);
      hash = Math.imul(hash ^ view.getUint32(start, true), 0x01000193);
      // A product keeps a word's high bits in its own high bits only: MurmurHash3's finalizer mixes
      // them down to the bits the slot takes.
      hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
      hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
    } else {
      for (let i = start; i < end; i++) hash = Math.imul(hash ^ b[i]!, 0x01000193);
    }
    const slot = (hash ^ (hash >>> 15)) & (cacheSlots - 1);
    // Only ASCII strings are cached, so equal bytes are valid UTF-8 too. Lengths are stored plus one,
    // so that an empty slot (0) never matches.
    if (cacheLengths[slot] === length + 1) {
      const at = slot * cachedStringBytes;
      let i = 0;
      while (i + 4 <= length && cacheView.getUint32(at + i, true) === view.getUint32(start + i, true)) i += 4;
      while (i < length && cacheBytes[at + i] === b[start + i]) i++;
      if (i === length) return stringCache[slot]!;
    }
    const value = this.#decode(start, end);
    if (value.length === length) {
      stringCache[slot] = value;
      cacheLengths[slot] = length + 1;
      const at = slot * cachedStringBytes;
      let i = 0;
      for (; i + 4 <= length; i += 4) cacheView.setUint32(at + i, view.getUint32(start + i, true), true);
      for (; i < length; i++) cacheBytes[at + i] = b[start + i]!;
    }
    return value;
  }

  /** How many of the `length` bytes at `a` and at `b` are equal before the first that differs. */
  samePrefix(a: number, b: number, length: number): number {
    const view = this.#view;
    const bytes = this.bytes;
    let i = 0;
    while (i + 8 <= length && view.getUint32(a + i, true) === view.getUint32(b + i, true) && view.getUint32(a + i + 4, true) === view.getUint32(b + i + 4, true)) i += 8;
    while (i + 4 <= length && view.getUint32(a + i, true) === view.getUint32(b + i, true)) i += 4;
    while (i < length && bytes[a + i] === bytes[b + i]) i++;
    return i;
  }

  #decode(start: number, end: number): string {
    const b = this.bytes;
    // ASCII is the common case and needs no validation; read as latin1, ASCII bytes are the string.
    // Four bytes at a time: messages and bodies run to a hundred bytes and more.
    const view = this.#view;
    let bits = 0;
    let i = start;
    for (; i + 4 <= end; i += 4) bits |= view.getUint32(i, true);
    for (; i < end; i++) bits |= b[i]!;
    if ((bits & 0x80808080) === 0) return this.#buffer.toString('latin1', start, end);
    try {
      return strictUtf8.decode(b.subarray(start, end));
    } catch {
      throw new WireError(`a string of ${bytes(end - start)} is not UTF-8: the encoded data was not valid for encoding utf-8`, start);
    }
  }
  /** A length-delimited bytes value, copied out of the body. */
  byteString(): Uint8Array {
    const end = this.delimited('bytes');
    const value = this.bytes.slice(this.pos, end);
    this.pos = end;
    return value;
  }

  /** A length-delimited bytes value as lower-case hex. */
  hex(): string {
    const end = this.delimited('bytes');
    const value = this.#buffer.toString('hex', this.pos, end);
    this.pos = end;
    return value;
  }

  /**
   * Skips one field of the given wire type (the tag is already read). Groups are skipped whole;
   * `depth` counts nesting as protobufjs does, so deep groups are refused at the same level.
   */
  skip(wireType: number, depth: number, fieldNumber: number): void {
    if (depth > recursionLimit) throw new WireError(`groups nested deeper than ${recursionLimit} levels`, this.pos);
    switch (wireType) {
      case 0: {
        const start = this.pos;
        do {
          if (this.pos >= this.end) throw this.#outOfRange('a varint', start);
        } while (this.bytes[this.pos++]! >= 0x80);
        return;
      }
      case 1:
        this.#skipBytes(8, 'a fixed64');
        return;
      case 2: {
        this.pos = this.delimited('a length-delimited field');
        return;
      }
      case 3:
        for (;;) {
          const tag = this.tag();
          if ((tag & 7) === 4) {
            if (tag >>> 3 !== fieldNumber) throw new WireError(`group of field ${fieldNumber} ends with the end tag of field ${tag >>> 3}`, this.pos);
            return;
          }
          this.skip(tag & 7, depth + 1, tag >>> 3);
        }
      case 5:
        this.#skipBytes(4, 'a fixed32');
        return;
      default:
        throw new WireError(`invalid wire type ${wireType}`, this.pos);
    }
  }

  #skipBytes(n: number, what: string): void {
    if (this.pos + n > this.end) throw this.#outOfRange(what, this.pos, n);
    this.pos += n;
  }

  #outOfRange(what: string, at: number, needed?: number): WireError {
    const detail = needed === undefined ? `${what} at byte ${at} is cut off by` : `${what} of ${bytes(needed)} at byte ${at} runs past`;
    // "index out of range" is what protobufjs said; operators and tests already know the phrase.
    return new WireError(`index out of range: ${detail} the end of its message at byte ${this.end}`, at);
  }
}

function bytes(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`;
}
