// The canonical form of a chained record, version 1: what the agent hashes and the aggregator
// stores verbatim in `ci_audit.chain.record`, so that a verifier needs nothing but that string,
// the previous hash and the public keys. docs/integrity.md specifies it for third-party verifiers;
// keep the two in step.
//
//   {"agent":<agent id>,"attributes":{...},"body":<value>,"observed":"<ns>","resource":{...},
//    "seq":<n>,"severity":<n>,"time":"<ns>","v":1}
//
// Times are decimal strings of nanoseconds since the Unix epoch ("0" when unset), so that no
// reader rounds them. Attribute values are normalized (see canonicalValue) so that the agent, which
// holds OpenTelemetry SDK values, and the aggregator, which holds decoded OTLP values, write the
// same text. The chain's own attributes (`ci_audit.chain.*`) are not part of the record.
import { CiAuditError } from '../errors.ts';
import { canonicalJson, type CanonicalValue } from './canonical-json.ts';
import { chainAttrPrefix } from '../wire.ts';
import { isLast, keepLast } from '../last-value.ts';
import { KeyPlans } from './member-plans.ts';

/** Version of the canonical form; a new form gets a new number and verifiers keep the old ones. */
export const canonicalVersion = 1;

/** A value as the agent's SDK or the aggregator's decoder hold it. */
export type AttestedInput =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | null
  | undefined
  | readonly AttestedInput[]
  | { readonly [key: string]: AttestedInput };

/** Nanoseconds since the Unix epoch: a bigint, its decimal text, or seconds and nanoseconds (an OpenTelemetry HrTime). */
export type UnixNanos = bigint | string | readonly [seconds: number, nanoseconds: number];

/** Nanoseconds since the epoch of an HrTime, as the OTLP exporter computes them. */
export function hrTimeNanos(time: readonly [number, number]): bigint {
  return BigInt(Math.trunc(time[0])) * 1_000_000_000n + BigInt(Math.trunc(time[1]));
}

export interface AttestedRecord {
  /** The agent's id (the aggregator uses the id its credential proves). */
  agent: string;
  /** Position in the agent's chain, from 1. */
  seq: number;
  /** Nanoseconds since the epoch, as a bigint, as its decimal text, or as an HrTime (the agent's SDK records). */
  timeUnixNano: UnixNanos;
  observedTimeUnixNano: UnixNanos;
  /** OTLP SeverityNumber; 0 when unset. */
  severityNumber: number;
  body: AttestedInput;
  attributes: Readonly<Record<string, AttestedInput>>;
  resource: Readonly<Record<string, AttestedInput>>;
}

/**
 * The canonical text of `record` (RFC 8785 JSON); its UTF-8 bytes are what the chain hashes.
 * `resourceText` is canonicalAttributes(record.resource) when the caller keeps it (the agent's
 * resource is one object for all its records).
 */
export function canonicalRecord(record: AttestedRecord, resourceText?: string): string {
  writer.start(0);
  writer.record(record, resourceText);
  return writer.text();
}

/**
 * The UTF-8 bytes of canonicalRecord(record, resourceText), after `prefix` bytes left for the caller
 * (the chain puts the previous hash there and hashes the whole). The bytes are a view of a buffer
 * that the next call to any function of this module overwrites: use them at once.
 */
export function canonicalRecordBytes(record: AttestedRecord, resourceText: string | undefined, prefix: number): Buffer {
  writer.start(prefix);
  writer.record(record, resourceText);
  return writer.bytes();
}

/**
 * Attributes (or a key-value list) in canonical form: members sorted, empty members (undefined,
 * null) left out, and with `skipChain` the chain's own attributes (`ci_audit.chain.*`) too.
 */
export function canonicalAttributes(attributes: Readonly<Record<string, AttestedInput>>, skipChain = false): string {
  writer.start(0);
  writer.attributes(attributes, skipChain);
  return writer.text();
}

/**
 * One value in canonical form, normalized so that the agent (OpenTelemetry SDK values) and the
 * aggregator (decoded OTLP values) write the same text: strings and booleans as they are; finite
 * numbers as JSON numbers, except integers beyond ±(2^53 - 1) within the int64 range (the exporter
 * sends those as int64, which decode to bigints), written as decimal strings like such bigints;
 * non-finite numbers as their names ("NaN", "Infinity", "-Infinity"); bytes as base64; arrays item
 * by item (an empty item is null); key-value lists as objects without their empty members.
 */
export function canonicalValue(value: AttestedInput): string {
  writer.start(0);
  writer.value(value);
  return writer.text();
}

/** The keys in code-unit order (RFC 8785), each as it is written. */
function canonicalOrder(keys: readonly string[]): readonly string[] {
  // A key with a lone surrogate is written, and reaches the aggregator, as U+FFFD: it sorts where
  // that form sorts, or both sides would order the members differently.
  return keys.every((key) => key.isWellFormed()) ? [...keys].sort() : [...keys].sort(byWellFormed);
}

function byWellFormed(a: string, b: string): number {
  const x = a.toWellFormed();
  const y = b.toWellFormed();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A member's `,"key":` as the writer writes it. */
function memberHead(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(`,${canonicalString(key)}:`, 'utf8'));
}

const keyPlans = new KeyPlans(memberHead, canonicalOrder);

const minInt64 = -(2 ** 63);
const maxInt64 = 2 ** 63;
const minSafe = BigInt(Number.MIN_SAFE_INTEGER);
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes the writer keeps between records; a larger record gets a buffer of its own size, given up after it. */
const keptBytes = 64 * 1024;

/**
 * Writes the canonical form as UTF-8 straight into one reused buffer. The agent hashes every
 * record's canonical text: built as a string it was several intermediate strings per value
 * (JSON.stringify's, the concatenations, the flattened whole) and then encoded once more, about
 * 7 KB allocated for a 1.3 KB auth record and most of the chain's cost (now 0.7 KB, mostly the
 * record object and its key list). Plain ASCII, what nearly every key and value is, goes in as it
 * is (#string); anything else (an escape, a non-ASCII character) is written from JSON.stringify's
 * text, so that both give exactly the same bytes.
 *
 * What repeats from record to record is written once and then copied: per key list, the members'
 * order and their `,"key":`, and a member's bytes while its value stays the same (member-plans.ts);
 * the agent id and the caller's resource text with the punctuation around them. A copy is one
 * TypedArray set (about 230 instructions for a short member), where a loop in JavaScript costs
 * about twenty instructions a byte, and writing a value again several hundred (a parsed auth
 * record: about 66k instructions written afresh, 31k so). One writer for the module: every call
 * runs to its end synchronously.
 */
class CanonicalWriter {
  #buf = wordAligned(keptBytes);
  /** #buf as 32-bit words, for needsEscape. */
  #words = words(this.#buf);
  #pos = 0;
  /** The agent id is the same in every record of a chain, the resource text in every record of a resource. */
  #agent: KeptText = { text: undefined, bytes: new Uint8Array(0) };
  #resource: KeptText = { text: undefined, bytes: new Uint8Array(0) };

  /** Starts a new text after `prefix` bytes the caller fills. */
  start(prefix: number): void {
    if (this.#buf.length > keptBytes) this.#use(wordAligned(keptBytes));
    this.#pos = prefix;
  }

  text(): string {
    return this.#buf.toString('utf8', 0, this.#pos);
  }

  bytes(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }

  /** Members in RFC 8785 order: agent, attributes, body, observed, resource, seq, severity, time, v. */
  record(record: AttestedRecord, resourceText: string | undefined): void {
    this.#kept(this.#agent, record.agent, false, punctuation.agent, punctuation.attributes);
    this.attributes(record.attributes, true);
    if (record.body !== undefined && record.body !== null) {
      this.#copy(punctuation.body);
      this.value(record.body);
    }
    this.#copy(punctuation.observed);
    this.#time(record.observedTimeUnixNano);
    if (resourceText === undefined) {
      this.#copy(punctuation.resource);
      this.attributes(record.resource, false);
      this.#copy(punctuation.seq);
    } else {
      this.#kept(this.#resource, resourceText, true, punctuation.resource, punctuation.seq);
    }
    this.#number(record.seq);
    this.#copy(punctuation.severity);
    this.#number(record.severityNumber);
    this.#copy(punctuation.time);
    this.#time(record.timeUnixNano);
    this.#copy(punctuation.end);
  }

  /**
   * `before`, `text` (a JSON string, or with `raw` as it is), `after`: bytes kept in `kept` while the
   * same text comes again, one copy instead of three writes.
   */
  #kept(kept: KeptText, text: string, raw: boolean, before: Uint8Array, after: Uint8Array): void {
    if (text === kept.text) {
      this.#copy(kept.bytes);
      return;
    }
    const begun = this.#pos;
    this.#copy(before);
    if (raw) this.#raw(text);
    else this.#string(text);
    this.#copy(after);
    kept.text = text;
    kept.bytes = new Uint8Array(this.#buf.subarray(begun, this.#pos));
  }

  attributes(attributes: Readonly<Record<string, AttestedInput>>, skipChain: boolean): void {
    const keys = Object.keys(attributes);
    const plan = keyPlans.get(keys);
    if (plan === undefined) {
      this.#unplanned(attributes, keys, skipChain);
      return;
    }
    const values = Object.values(attributes);
    // Every member is written with its leading comma, the first one's where the brace goes: the
    // brace then takes its place, so that a member's kept bytes are the same wherever it stands.
    this.#room(1);
    const open = this.#pos;
    for (const member of plan.members) {
      const value = values[member.index];
      if (value === undefined || value === null || (skipChain && member.chain)) continue;
      const bytes = member.bytes;
      if (bytes !== undefined && isLast(member, value)) {
        this.#copy(bytes);
        continue;
      }
      const begun = this.#pos;
      this.#copy(member.head);
      this.value(value);
      if (bytes === undefined && isLast(member, value)) {
        // The same value twice in a row: its bytes are kept for the next time, in an array of
        // their own (a view of the writer's buffer would change under them).
        member.bytes = new Uint8Array(this.#buf.subarray(begun, this.#pos));
      } else {
        member.bytes = undefined;
        keepLast(member, value);
      }
    }
    if (this.#pos === open) this.#byte(0x7b); // {
    else this.#buf[open] = 0x7b;
    this.#byte(0x7d); // }
  }

  /** Attributes with a key list too large to keep a plan for: sorted and written as they come. */
  #unplanned(attributes: Readonly<Record<string, AttestedInput>>, keys: readonly string[], skipChain: boolean): void {
    this.#byte(0x7b); // {
    let first = true;
    for (const key of canonicalOrder(keys)) {
      const value = attributes[key];
      if (value === undefined || value === null || (skipChain && key.startsWith(chainAttrPrefix))) continue;
      if (!first) this.#byte(0x2c); // ,
      first = false;
      this.#string(key);
      this.#byte(0x3a); // :
      this.value(value);
    }
    this.#byte(0x7d); // }
  }

  value(value: AttestedInput): void {
    switch (typeof value) {
      case 'string':
        this.#string(value);
        return;
      case 'boolean':
        this.#ascii(value ? 'true' : 'false');
        return;
      case 'number':
        this.#number(value);
        return;
      case 'bigint':
        this.#ascii(value >= minSafe && value <= maxSafe ? String(Number(value)) : `"${value.toString()}"`);
        return;
      default:
    }
    if (value === null || value === undefined) {
      this.#ascii('null');
    } else if (value instanceof Uint8Array) {
      this.#ascii(`"${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}"`);
    } else if (Array.isArray(value)) {
      this.#byte(0x5b); // [
      for (let i = 0; i < value.length; i++) {
        if (i > 0) this.#byte(0x2c);
        this.value(value[i] as AttestedInput);
      }
      this.#byte(0x5d); // ]
    } else {
      this.attributes(value as Readonly<Record<string, AttestedInput>>, false);
    }
  }

  #room(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const grown = wordAligned(Math.max(2 * this.#buf.length, this.#pos + bytes));
    this.#buf.copy(grown, 0, 0, this.#pos);
    this.#use(grown);
  }

  #use(buf: Buffer): void {
    this.#buf = buf;
    this.#words = words(buf);
  }

  /** Bytes kept from an earlier writing. */
  #copy(bytes: Uint8Array): void {
    const n = bytes.length;
    this.#room(n);
    this.#buf.set(bytes, this.#pos);
    this.#pos += n;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#buf[this.#pos++] = b;
  }

  /** Text known to be ASCII (the record's own punctuation and names, digits). */
  #ascii(s: string): void {
    this.#room(s.length);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.#pos = pos;
  }

  /** Text written as it is (already canonical, or the caller's time text), in UTF-8. */
  #raw(s: string): void {
    this.#room(3 * s.length);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
  }

  /**
   * A string as RFC 8785 writes it (canonicalString). Printable ASCII, what nearly every key and
   * value is, is copied as it is; anything else (an escape, a character beyond ASCII, a lone
   * surrogate) is written from canonicalString's text, so that both give the same bytes.
   */
  #string(s: string): void {
    const n = s.length;
    if (n >= shortString) {
      // Encoded natively, then checked in the buffer: faster than charCodeAt for long strings (most
      // are slices of the line, which charCodeAt reaches through an indirection per character).
      // UTF-8 has one byte per UTF-16 unit only when all of them are ASCII.
      this.#room(3 * n + 2);
      const buf = this.#buf;
      const start = this.#pos + 1;
      const end = start + buf.write(s, start, 'utf8');
      if (end - start === n && !needsEscape(buf, this.#words, start, end)) {
        buf[start - 1] = 0x22; // "
        buf[end] = 0x22;
        this.#pos = end + 1;
        return;
      }
      this.#raw(canonicalString(s));
      return;
    }
    this.#room(n + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7f) {
        this.#raw(canonicalString(s));
        return;
      }
      buf[pos++] = c;
    }
    buf[pos++] = 0x22;
    this.#pos = pos;
  }

  /** Decimal nanoseconds (quoted by the caller); an HrTime digit by digit, as hrTimeNanos(time).toString() writes it. */
  #time(time: UnixNanos): void {
    if (typeof time !== 'object') {
      this.#raw(time.toString());
      return;
    }
    const [s, ns] = time;
    // Seconds, then the nanoseconds as nine digits: that is the product's text only for s >= 1.
    if (!(Number.isSafeInteger(s) && s > 0 && Number.isInteger(ns) && ns >= 0 && ns < 1e9)) {
      this.#ascii(hrTimeNanos(time).toString());
      return;
    }
    this.#number(s);
    this.#room(9);
    const buf = this.#buf;
    let rest = ns;
    for (let i = this.#pos + 8; i >= this.#pos; i--) {
      buf[i] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    this.#pos += 9;
  }

  #number(n: number): void {
    // A safe non-negative integer (a sequence number, an offset, a port), digit by digit: what
    // toFixed(0) and String() write, with no string at all.
    if (n >= 0 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n)) {
      let digits = 1;
      for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
      this.#room(digits);
      const buf = this.#buf;
      let rest = n;
      for (let i = this.#pos + digits - 1; i >= this.#pos; i--) {
        buf[i] = 0x30 + (rest % 10);
        rest = Math.floor(rest / 10);
      }
      this.#pos += digits;
      return;
    }
    this.#ascii(canonicalNumber(n));
  }
}

/** A text the writer wrote with the punctuation around it, and those bytes. */
interface KeptText {
  text: string | undefined;
  bytes: Uint8Array;
}

/** The record's own member names and punctuation, in UTF-8. */
const punctuation = {
  agent: ascii('{"agent":'),
  attributes: ascii(',"attributes":'),
  body: ascii(',"body":'),
  observed: ascii(',"observed":"'),
  resource: ascii('","resource":'),
  seq: ascii(',"seq":'),
  severity: ascii(',"severity":'),
  time: ascii(',"time":"'),
  end: ascii(`","v":${canonicalVersion}}`),
};

function ascii(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

/** A buffer of its own memory, which starts on a 32-bit word. */
function wordAligned(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

function words(buf: Buffer): Int32Array {
  return new Int32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
}

const writer = new CanonicalWriter();

/** Strings at least this long are encoded natively (CanonicalWriter.#string); shorter ones a character at a time. */
const shortString = 24;

/**
 * Whether the ASCII bytes buf[start..end) hold one that JSON escapes: a control character, a quote
 * or a backslash. Four bytes at a time through `words` (the same memory as `buf`), as a loop over
 * the bytes costs about twenty instructions a byte: with every byte below 0x80, the top bit of a
 * byte of x - 0x20202020 is set (with a borrow from the byte below or not) only if some byte is
 * below 0x20, and likewise for a byte equal to 0x22 or 0x5c after xor-ing it to zero.
 */
function needsEscape(buf: Buffer, words: Int32Array, start: number, end: number): boolean {
  const first = (start + 3) >>> 2;
  const last = end >>> 2;
  if (first >= last) return bytesNeedEscape(buf, start, end);
  if (bytesNeedEscape(buf, start, first << 2) || bytesNeedEscape(buf, last << 2, end)) return true;
  for (let w = first; w < last; w++) {
    const x = words[w]!;
    if ((((x - 0x20202020) | ((x ^ 0x22222222) - 0x01010101) | ((x ^ 0x5c5c5c5c) - 0x01010101)) & 0x80808080) !== 0) return true;
  }
  return false;
}

function bytesNeedEscape(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c === 0x22 || c === 0x5c) return true;
  }
  return false;
}

/**
 * A string as RFC 8785 writes it. A lone surrogate (possible in a JavaScript string, not in UTF-8)
 * becomes U+FFFD first, as the exporter's UTF-8 encoding turns it into, so that both sides agree.
 */
function canonicalString(s: string): string {
  const json = JSON.stringify(s);
  // JSON.stringify writes a lone surrogate as a \udXXX escape: only then is the slower check due.
  return json.includes('\\ud') && !s.isWellFormed() ? JSON.stringify(s.toWellFormed()) : json;
}

function canonicalNumber(n: number): string {
  if (!Number.isFinite(n)) return `"${String(n)}"`;
  if (Number.isInteger(n)) {
    if (!Number.isSafeInteger(n) && n >= minInt64 && n < maxInt64) return `"${BigInt(n).toString()}"`;
    // A safe integer: toFixed(0) writes it as String() does, -0 as 0 (RFC 8785 3.2.2.3), without
    // putting the text in V8's number-to-string cache, which lives in the old generation.
    if (Number.isSafeInteger(n)) return n.toFixed(0);
  }
  // -0 is written as 0 (RFC 8785 3.2.2.3); String() already does.
  return String(n);
}

/** The fields of a canonical record read back from its text; throws CIA_ERR_INTEGRITY_CANONICAL when it is not one. */
export interface ParsedCanonicalRecord {
  v: number;
  agent: string;
  seq: number;
  time: string;
  observed: string;
  severity: number;
  body?: CanonicalValue;
  attributes: { [key: string]: CanonicalValue };
  resource: { [key: string]: CanonicalValue };
}

/**
 * Reads a stored canonical record back. It must be exactly canonical (parsing and writing it again
 * gives the same text), so that the hash a verifier recomputes is over the text that was stored.
 */
export function parseCanonicalRecord(text: string): ParsedCanonicalRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', `the stored canonical record is not JSON: ${(cause as Error).message}`, { cause });
  }
  const r = parsed as Partial<ParsedCanonicalRecord> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    Array.isArray(r) ||
    r.v !== canonicalVersion ||
    typeof r.agent !== 'string' ||
    !Number.isSafeInteger(r.seq) ||
    typeof r.time !== 'string' ||
    typeof r.observed !== 'string' ||
    typeof r.severity !== 'number' ||
    typeof r.attributes !== 'object' ||
    r.attributes === null ||
    typeof r.resource !== 'object' ||
    r.resource === null
  ) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', `the stored canonical record does not have the fields of version ${canonicalVersion}`);
  }
  if (canonicalJson(parsed as CanonicalValue) !== text) {
    throw new CiAuditError('CIA_ERR_INTEGRITY_CANONICAL', 'the stored canonical record is not in canonical form (RFC 8785)');
  }
  return r as ParsedCanonicalRecord;
}
