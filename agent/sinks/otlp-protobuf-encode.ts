// The agent's OTLP/HTTP request body: an ExportLogsServiceRequest (opentelemetry-proto
// collector/logs/v1) in binary protobuf, written straight from the SDK's ReadableLogRecords.
//
// It writes exactly the bytes @opentelemetry/otlp-transformer's ProtobufLogsSerializer writes for
// the same records (test/unit/agent/otlp-protobuf-encode.test.ts holds the two together on generated
// batches), so that nothing downstream sees a difference: records grouped by resource and then by
// scope, each by object identity, in the order first seen; fields in field-number order; the same
// defaults omitted (but a record's and a resource's dropped_attributes_count written even when 0);
// integers within the int64 range as int_value (negative ones in ten bytes), other numbers as
// double_value; values the OTLP data model has no form for (null, undefined, bigint) as an empty
// AnyValue. Lone surrogates come out as U+FFFD, as the canonical form that the chain hashes assumes
// (canonicalString in core/integrity/record.ts).
//
// Where it departs from the serializer, deliberately:
// - Timestamps are the exact nanoseconds (Math.trunc of both HrTime parts) modulo 2^64 for any
//   HrTime. The serializer agrees for every count of seconds from 0 to 2^44 (far past 2554, where
//   the nanoseconds overflow 64 bits) but writes other numbers for negative seconds, before 1970.
//   Neither can carry a time before 1970: the field is unsigned.
//
// Why not the serializer: it walks every record twice (a size estimate, then the writing) and copies
// strings one UTF-16 unit at a time, which made it the agent's largest CPU cost (issue 5). Here
// strings go through Buffer's native UTF-8 writer into one growing buffer, a length prefix is
// reserved at its likely size and the body moved only when the length needs another size, the
// resource and scope are written once per request, and per attribute key list the keys' bytes are
// kept, with the bytes of the attributes last written: a run of neighbouring KeyValues whose values
// are the ones of the record before goes in as one copy (a parsed sshd line's 29 attributes: the
// nine that change each line, and five copies).
//
// A record that is already an EncodedLogRecord (encoded once, straight into a slab, when it entered
// a batch, encodeLogRecord; or read from the disk buffer) goes into the request as its bytes,
// spliced after its tag and length.
import { SeverityNumber, type Attributes, type HrTime } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { hrTimeNanos } from '../../core/integrity/record.ts';
import { forgetLast, isLast, keepLast, type LastValue } from '../../core/last-value.ts';
import { RecentKeyLists } from '../../core/recent-key-lists.ts';
import { EncodedLogRecord } from './encoded-log-record.ts';

type Scope = ReadableLogRecord['instrumentationScope'];
type Resource = ReadableLogRecord['resource'];

// Tags: (field number << 3) | wire type, each one byte. Wire types: 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32.
const tagRequestResourceLogs = 0x0a; // ExportLogsServiceRequest.resource_logs = 1
const tagResourceLogsResource = 0x0a; // ResourceLogs.resource = 1
const tagResourceLogsScopeLogs = 0x12; // ResourceLogs.scope_logs = 2
const tagResourceLogsSchemaUrl = 0x1a; // ResourceLogs.schema_url = 3
const tagResourceAttributes = 0x0a; // Resource.attributes = 1
const tagResourceDropped = 0x10; // Resource.dropped_attributes_count = 2
const tagScopeLogsScope = 0x0a; // ScopeLogs.scope = 1
const tagScopeLogsLogRecords = 0x12; // ScopeLogs.log_records = 2
const tagScopeLogsSchemaUrl = 0x1a; // ScopeLogs.schema_url = 3
const tagScopeName = 0x0a; // InstrumentationScope.name = 1
const tagScopeVersion = 0x12; // InstrumentationScope.version = 2
const tagScopeAttributes = 0x1a; // InstrumentationScope.attributes = 3
const tagScopeDropped = 0x20; // InstrumentationScope.dropped_attributes_count = 4
const tagRecordTime = 0x09; // LogRecord.time_unix_nano = 1 (fixed64)
const tagRecordSeverityNumber = 0x10; // LogRecord.severity_number = 2
const tagRecordSeverityText = 0x1a; // LogRecord.severity_text = 3
const tagRecordBody = 0x2a; // LogRecord.body = 5
const tagRecordAttributes = 0x32; // LogRecord.attributes = 6
const tagRecordDropped = 0x38; // LogRecord.dropped_attributes_count = 7
const tagRecordFlags = 0x45; // LogRecord.flags = 8 (fixed32)
const tagRecordTraceId = 0x4a; // LogRecord.trace_id = 9
const tagRecordSpanId = 0x52; // LogRecord.span_id = 10
const tagRecordObservedTime = 0x59; // LogRecord.observed_time_unix_nano = 11 (fixed64)
const tagRecordEventName = 0x62; // LogRecord.event_name = 12
const tagKeyValueKey = 0x0a; // KeyValue.key = 1
const tagKeyValueValue = 0x12; // KeyValue.value = 2
const tagAnyString = 0x0a; // AnyValue.string_value = 1
const tagAnyBool = 0x10; // AnyValue.bool_value = 2
const tagAnyInt = 0x18; // AnyValue.int_value = 3
const tagAnyDouble = 0x21; // AnyValue.double_value = 4 (fixed64)
const tagAnyArray = 0x2a; // AnyValue.array_value = 5
const tagAnyKvlist = 0x32; // AnyValue.kvlist_value = 6
const tagAnyBytes = 0x3a; // AnyValue.bytes_value = 7
const tagListValues = 0x0a; // ArrayValue.values = 1, KeyValueList.values = 1

const minInt64 = -(2 ** 63);
const maxInt64 = 2 ** 63;
const twoTo32 = 2 ** 32;
const twoTo23 = 2 ** 23;

/**
 * Strings shorter than this are copied by a loop while they are ASCII: below it the loop is cheaper
 * than the call into the native UTF-8 writer.
 */
const shortString = 12;

/** Bytes the request buffer starts with, and the most it keeps between requests (more is let go). */
const initialBytes = 64 * 1024;
const maxKeptBytes = 16 * 1024 * 1024;

/**
 * Attribute key lists repeat on every record (the records of one source carry the same keys in the
 * same order), and most values from one record to the next (host, program, user, dataset, file,
 * parse status): per key list and field tag, the last attributes written are kept as bytes, and a
 * run of neighbouring KeyValues whose values are the ones before goes in as one copy of those bytes
 * (attribute-plans below; which values are kept: core/last-value.ts). Key lists longer than maxPlanKeys, or with a key longer than
 * maxPlanKeyLength, are written as they come; so are attributes of more than maxTemplateBytes.
 */
const maxPlans = 8;
const maxPlanKeys = 128;
const maxPlanKeyLength = 128;
const maxTemplateBytes = 64 * 1024;

/** Buffer's native UTF-8 write, which buf.write calls after parsing its arguments (not in @types/node). */
type Utf8Buffer = Buffer & { utf8Write(text: string, offset: number, length: number): number };

/** Most bytes the UTF-8 of a string of `units` UTF-16 units takes (three for each, a pair takes four). */
function maxUtf8Bytes(units: number): number {
  return 3 * units;
}

/** Bytes of the varint of a length (a non-negative integer below 2^32). */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Protobuf bytes in one buffer that grows by doubling. */
class ProtoWriter {
  buf: Utf8Buffer;
  pos = 0;
  /**
   * Where the bytes being written start. Growing moves only those, to the start of the new
   * buffer; positions `begin` hands out count from here, so they hold across a move.
   */
  from = 0;
  /** Size of the buffer to move to when full (0: twice the current one), at least what is needed. */
  readonly moveTo: number;

  constructor(size: number, moveTo = 0) {
    this.buf = Buffer.allocUnsafe(size) as Utf8Buffer;
    this.moveTo = moveTo;
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.#grow(n);
  }

  #grow(n: number): void {
    const kept = this.pos - this.from;
    let size = this.moveTo || this.buf.length * 2;
    while (size < kept + n) size *= 2;
    const next = Buffer.allocUnsafe(size) as Utf8Buffer;
    this.buf.copy(next, 0, this.from, this.pos);
    this.buf = next;
    this.pos = kept;
    this.from = 0;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /**
   * Starts a length-delimited body, reserving `reserve` bytes for its length (the size it most
   * likely needs); returns where the length goes, for `end`.
   */
  begin(reserve: number): number {
    this.ensure(reserve);
    const at = this.pos - this.from;
    this.pos += reserve;
    return at;
  }

  /** Writes the length of the body begun at `begun`, moving the body when the length needs another size. */
  end(begun: number, reserve: number): void {
    const length = this.pos - (this.from + begun + reserve);
    const size = varintSize(length);
    if (size !== reserve) {
      this.ensure(size - reserve);
      // After `ensure`: it may have moved the bytes.
      const at = this.from + begun;
      this.buf.copyWithin(at + size, at + reserve, this.pos);
      this.pos += size - reserve;
    }
    this.lengthAt(this.from + begun, length);
  }

  /** A length at `at`, where the caller left room for its varint. */
  lengthAt(at: number, length: number): void {
    const buf = this.buf;
    while (length > 0x7f) {
      buf[at++] = (length & 0x7f) | 0x80;
      length >>>= 7;
    }
    buf[at] = length;
  }

  /**
   * A number as a varint: the low 64 bits of its integer part, negative numbers in two's
   * complement (ten bytes); NaN as 0.
   */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    const magnitude = Math.abs(value);
    let low = magnitude >>> 0;
    let high = (magnitude / twoTo32) >>> 0;
    if (!(value >= 0)) {
      // Two's complement; NaN lands here too and comes out as 0.
      low = (~low + 1) >>> 0;
      high = (~high + (low === 0 ? 1 : 0)) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low;
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** An HrTime as fixed64 nanoseconds since the epoch. */
  nanos(time: HrTime): void {
    this.ensure(8);
    const seconds = time[0];
    const nanos = time[1];
    const buf = this.buf;
    if (seconds >= 0 && seconds < twoTo32 && nanos >= 0 && nanos < twoTo32) {
      // seconds * 10^9 = seconds * 5^9 * 2^9, and seconds * 5^9 < 2^53 is exact: its low 23 bits
      // shifted by 9 (plus the nanoseconds) are the low word with a carry, the rest the high word.
      const scaled = Math.trunc(seconds) * 1953125;
      const scaledLow = scaled % twoTo23;
      const low = scaledLow * 512 + Math.trunc(nanos);
      buf.writeUInt32LE(low >>> 0, this.pos);
      buf.writeUInt32LE((scaled - scaledLow) / twoTo23 + Math.floor(low / twoTo32), this.pos + 4);
    } else {
      // hrTimeNanos is the rule the chain hashes the time by; the fast path above agrees with it.
      const exact = Number.isFinite(seconds) && Number.isFinite(nanos) ? hrTimeNanos(time) : 0n;
      buf.writeBigUInt64LE(BigInt.asUintN(64, exact), this.pos);
    }
    this.pos += 8;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** A string field's length and UTF-8 bytes (lone surrogates as U+FFFD). */
  string(text: string): void {
    const n = text.length;
    this.ensure(maxUtf8Bytes(n) + 5);
    const reserve = varintSize(n);
    const start = this.pos + reserve;
    const written = this.utf8At(text, start);
    const size = varintSize(written);
    if (size !== reserve) this.buf.copyWithin(this.pos + size, start, start + written);
    this.lengthAt(this.pos, written);
    this.pos += size + written;
  }

  /**
   * The UTF-8 of `text` at `at`, lone surrogates as U+FFFD; the caller ensured room for
   * maxUtf8Bytes. Returns the bytes written.
   */
  utf8At(text: string, at: number): number {
    const n = text.length;
    const buf = this.buf;
    if (n < shortString) {
      let i = 0;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c > 0x7f) break;
        buf[at + i++] = c;
      }
      if (i === n) return n;
    }
    return buf.utf8Write(text, at, buf.length - at);
  }

  /** A bytes field: length, then the bytes. */
  bytes(value: Uint8Array): void {
    this.varint(value.length);
    this.raw(value);
  }

  /** A tag, then bytes as they are. */
  tagged(tag: number, value: Uint8Array): void {
    const n = value.length;
    this.ensure(n + 1);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = tag;
    if (n < 32) {
      for (let i = 0; i < n; i++) buf[p + i] = value[i]!;
    } else {
      buf.set(value, p);
    }
    this.pos = p + n;
  }

  /** Bytes as they are. */
  raw(value: Uint8Array): void {
    const n = value.length;
    this.ensure(n);
    const buf = this.buf;
    if (n < 32) {
      for (let i = 0; i < n; i++) buf[this.pos + i] = value[i]!;
    } else {
      buf.set(value, this.pos);
    }
    this.pos += n;
  }

  /** The bytes written, copied out of the buffer (which is reused). */
  take(): Buffer {
    const out = Buffer.allocUnsafeSlow(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

let scratch = new ProtoWriter(initialBytes);

/**
 * The ExportLogsServiceRequest of `records`, as ProtobufLogsSerializer.serializeRequest writes it
 * (see the file comment for where it departs). The returned buffer is the caller's.
 */
export function encodeLogsRequest(records: readonly ReadableLogRecord[]): Buffer {
  return Buffer.from(encodeLogsRequestTransient(records));
}

/**
 * encodeLogsRequest(records) as a view of a buffer that the next call overwrites: for a caller that
 * compresses it at once, which spares a copy of the whole request per batch.
 */
export function encodeLogsRequestTransient(records: readonly ReadableLogRecord[]): Buffer {
  // A huge batch grew the buffer: let it go now that its bytes were used.
  if (scratch.buf.length > maxKeptBytes) scratch = new ProtoWriter(initialBytes);
  const w = scratch;
  w.pos = 0;
  const first = records[0];
  if (first !== undefined && sharesResourceAndScope(records, first)) {
    writeResourceLogs(w, first.resource, [records]);
  } else {
    for (const [resource, scopes] of groupByResourceAndScope(records)) writeResourceLogs(w, resource, scopes.values());
  }
  return w.buf.subarray(0, w.pos);
}

let recordScratch = new ProtoWriter(initialBytes);

/**
 * The LogRecord message of `record` (its fields, without a tag or length), after the byte `lead`
 * when one is given (the disk buffer's format byte). The bytes are a view of a buffer that the next
 * call overwrites: copy them or use them at once.
 */
export function encodeLogRecordTransient(record: ReadableLogRecord, lead?: number): Buffer {
  // A huge record grew the buffer: let it go now that its bytes were used.
  if (recordScratch.buf.length > maxKeptBytes) recordScratch = new ProtoWriter(initialBytes);
  const w = recordScratch;
  w.pos = 0;
  if (lead !== undefined) w.byte(lead);
  writeLogRecordFields(w, record);
  return w.buf.subarray(0, w.pos);
}

/** Slabs the kept records' bytes are cut from: one allocation for hundreds of records. */
const slabBytes = 256 * 1024;
/**
 * Writes each kept record straight into the slab, after the records before it; a record that does
 * not fit moves on to a new slab (a larger buffer when it needs one).
 */
const slabWriter = new ProtoWriter(slabBytes, slabBytes);

/**
 * `record` encoded once, to be kept until its batch is answered: its LogRecord bytes in a slice of
 * a shared slab (a slab is freed when the last record cut from it is; records leave in about the
 * order they came, so few slabs are held), its resource and scope as they were.
 */
export function encodeLogRecord(record: ReadableLogRecord): EncodedLogRecord {
  if (record instanceof EncodedLogRecord) return record;
  const w = slabWriter;
  const slab = w.buf;
  const used = w.pos;
  w.from = used;
  writeLogRecordFields(w, record);
  if (w.buf === slab || w.pos <= slabBytes / 8) {
    return new EncodedLogRecord(w.buf, record.resource, record.instrumentationScope, w.from, w.pos);
  }
  // Large, and moved past the slab: a buffer of its own, so that it holds no slab, and the slab
  // goes on.
  const kept = Buffer.copyBytesFrom(w.buf, 0, w.pos);
  w.buf = slab;
  w.pos = used;
  return new EncodedLogRecord(kept, record.resource, record.instrumentationScope);
}

/** True when every record has the resource and scope of `first` (the agent's usual batch). */
function sharesResourceAndScope(records: readonly ReadableLogRecord[], first: ReadableLogRecord): boolean {
  const resource = first.resource;
  const scope = first.instrumentationScope;
  for (const r of records) if (r.resource !== resource || r.instrumentationScope !== scope) return false;
  return true;
}

function groupByResourceAndScope(records: readonly ReadableLogRecord[]): Map<Resource, Map<Scope, ReadableLogRecord[]>> {
  const byResource = new Map<Resource, Map<Scope, ReadableLogRecord[]>>();
  for (const r of records) {
    let byScope = byResource.get(r.resource);
    if (byScope === undefined) byResource.set(r.resource, (byScope = new Map<Scope, ReadableLogRecord[]>()));
    let group = byScope.get(r.instrumentationScope);
    if (group === undefined) byScope.set(r.instrumentationScope, (group = []));
    group.push(r);
  }
  return byResource;
}

/** One ResourceLogs: the resource, then a ScopeLogs per group of records (each of one scope). */
function writeResourceLogs(w: ProtoWriter, resource: Resource, groups: Iterable<readonly ReadableLogRecord[]>): void {
  w.byte(tagRequestResourceLogs);
  const at = w.begin(3);
  w.byte(tagResourceLogsResource);
  const resourceAt = w.begin(2);
  const attributes = resource.attributes as Attributes | undefined;
  if (attributes) writeAttributes(w, attributes, tagResourceAttributes);
  w.byte(tagResourceDropped);
  w.byte(0);
  w.end(resourceAt, 2);
  for (const group of groups) {
    w.byte(tagResourceLogsScopeLogs);
    writeScopeLogs(w, group);
  }
  if (resource.schemaUrl) {
    w.byte(tagResourceLogsSchemaUrl);
    w.string(resource.schemaUrl);
  }
  w.end(at, 3);
}

function writeScopeLogs(w: ProtoWriter, records: readonly ReadableLogRecord[]): void {
  const at = w.begin(3);
  const scope = records[0]!.instrumentationScope;
  w.byte(tagScopeLogsScope);
  const scopeAt = w.begin(1);
  w.byte(tagScopeName);
  w.string(scope.name);
  if (scope.version) {
    w.byte(tagScopeVersion);
    w.string(scope.version);
  }
  if (scope.attributes) writeAttributes(w, scope.attributes, tagScopeAttributes);
  if (scope.droppedAttributesCount) {
    w.byte(tagScopeDropped);
    w.varint(scope.droppedAttributesCount);
  }
  w.end(scopeAt, 1);
  for (const record of records) {
    w.byte(tagScopeLogsLogRecords);
    if (record instanceof EncodedLogRecord) {
      // Encoded once when it entered the batch or the disk buffer: its bytes go in as they are.
      w.varint(record.encodedLength);
      w.raw(record.encoded);
    } else {
      writeLogRecord(w, record);
    }
  }
  if (scope.schemaUrl) {
    w.byte(tagScopeLogsSchemaUrl);
    w.string(scope.schemaUrl);
  }
  w.end(at, 3);
}

function writeLogRecord(w: ProtoWriter, r: ReadableLogRecord): void {
  // Most records are between 128 bytes and 16 KiB: two bytes of length.
  const at = w.begin(2);
  writeLogRecordFields(w, r);
  w.end(at, 2);
}

/** The fields of a LogRecord message, without its tag and length. */
function writeLogRecordFields(w: ProtoWriter, r: ReadableLogRecord): void {
  w.byte(tagRecordTime);
  w.nanos(r.hrTime);
  if (r.severityNumber !== undefined && r.severityNumber !== SeverityNumber.UNSPECIFIED) {
    w.byte(tagRecordSeverityNumber);
    w.varint(r.severityNumber);
  }
  if (r.severityText) {
    w.byte(tagRecordSeverityText);
    w.string(r.severityText);
  }
  const body = r.body;
  if (typeof body === 'string') {
    writeWrappedString(w, tagRecordBody, tagAnyString, body);
  } else if (body !== undefined) {
    w.byte(tagRecordBody);
    const bodyAt = w.begin(1);
    writeAnyValue(w, body);
    w.end(bodyAt, 1);
  }
  if (r.attributes) writeAttributes(w, r.attributes, tagRecordAttributes);
  w.byte(tagRecordDropped);
  w.varint(r.droppedAttributesCount);
  const span = r.spanContext;
  if (span !== undefined) {
    if (span.traceFlags) {
      w.byte(tagRecordFlags);
      w.fixed32(span.traceFlags);
    }
    if (span.traceId) {
      w.byte(tagRecordTraceId);
      w.bytes(hexBytes(span.traceId));
    }
    if (span.spanId) {
      w.byte(tagRecordSpanId);
      w.bytes(hexBytes(span.spanId));
    }
  }
  w.byte(tagRecordObservedTime);
  w.nanos(r.hrTimeObserved);
  if (r.eventName) {
    w.byte(tagRecordEventName);
    w.string(r.eventName);
  }
}

/**
 * Object.prototype.hasOwnProperty, called on the object a for...in walks with the key it gave: V8
 * settles that call from the loop's enumeration cache, without a lookup. Object.hasOwn it does
 * not, and on the agent's records (30 attributes) it cost more than the rest of the walk.
 */
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with .call
const hasOwnProperty = Object.prototype.hasOwnProperty;

/** Each own enumerable attribute as a KeyValue field with tag `tag`. */
function writeAttributes(w: ProtoWriter, attributes: Attributes, tag: number): void {
  const plans = attributePlans(tag);
  const plan = plans.walk(attributes);
  if (plan === undefined) {
    for (const key in attributes) {
      if (hasOwnProperty.call(attributes, key)) writeAnyKeyValue(w, tag, undefined, key, attributes[key]);
    }
    return;
  }
  plan.busy = true;
  let written = false;
  try {
    writePlanned(w, plan, tag);
    written = true;
  } finally {
    plan.busy = false;
    // Thrown out of the middle (a value's getter, say): the template no longer matches what is kept.
    if (!written) plan.forget();
  }
}

/**
 * The attributes `plan.walk` gathered, each KeyValue written afresh or, in runs of neighbours whose
 * values are the ones written before, copied from the plan's template, which then becomes these
 * attributes' bytes.
 */
function writePlanned(w: ProtoWriter, plan: AttributePlan, tag: number): void {
  const members = plan.members;
  const values = plan.values;
  const n = members.length;
  const template = plan.template;
  const starts = plan.starts;
  const next = plan.nextStarts;
  const base = w.pos - w.from;
  // The run of kept KeyValues not yet copied: template[runFrom, runTo).
  let runFrom = 0;
  let runTo = 0;
  for (let i = 0; i < n; i++) {
    const m = members[i]!;
    const value = values[i];
    if (isLast(m, value)) {
      // Kept, so written last time too: its bytes are template[starts[i], starts[i + 1]).
      next[i] = w.pos - w.from - base + runTo - runFrom;
      if (runTo !== starts[i]) {
        copyRun(w, template, runFrom, runTo);
        runFrom = starts[i]!;
      }
      runTo = starts[i + 1]!;
      continue;
    }
    copyRun(w, template, runFrom, runTo);
    runFrom = runTo = 0;
    next[i] = w.pos - w.from - base;
    if (typeof value === 'string') {
      writeStringKeyValue(w, tag, m.field, value);
    } else if (typeof value === 'number' && value >= 0 && value <= 0xffffffff && Number.isInteger(value)) {
      writeUint32KeyValue(w, tag, m.field, value);
    } else {
      writeAnyKeyValue(w, tag, m.field, m.key, value);
    }
    keepLast(m, value);
  }
  copyRun(w, template, runFrom, runTo);
  const length = w.pos - w.from - base;
  next[n] = length;
  plan.keep(w.buf, w.from + base, length);
}

/** template[from, to) at the writer's position. */
function copyRun(w: ProtoWriter, template: Uint8Array, from: number, to: number): void {
  const n = to - from;
  if (n === 0) return;
  w.ensure(n);
  w.buf.set(template.subarray(from, to), w.pos);
  w.pos += n;
}

/** What is kept of one key of a key list; while its last value is set, the plan's template holds its KeyValue. */
interface PlanMember extends LastValue {
  readonly key: string;
  /** Its KeyValue's `key` field: tag, length, UTF-8. */
  readonly field: Buffer;
}

/**
 * One key list written under one tag: its keys' `key` fields, and the bytes of the attributes last
 * written (`template`, KeyValue i at starts[i] to starts[i + 1]) with the values they hold.
 */
class AttributePlan {
  readonly keys: readonly string[];
  readonly members: PlanMember[];
  /** The values of the attributes being written, in key order (walk gathers them). */
  readonly values: unknown[];
  template = new Uint8Array(0);
  starts: Int32Array;
  nextStarts: Int32Array;
  /** Being written: a value nested in the attributes with the same keys and tag is written without the plan. */
  busy = false;

  constructor(keys: readonly string[]) {
    this.keys = keys;
    this.members = keys.map((key) => ({ key, field: keyField(key), last: undefined, count: -1, items: [] }));
    this.values = new Array<unknown>(keys.length).fill(undefined);
    this.starts = new Int32Array(keys.length + 1);
    this.nextStarts = new Int32Array(keys.length + 1);
  }

  /** No value counts as written before (the template is not kept). */
  forget(): void {
    for (const m of this.members) forgetLast(m);
  }

  /** Keeps buf[from, from + length), the attributes just written, as the template. */
  keep(buf: Uint8Array, from: number, length: number): void {
    if (length > maxTemplateBytes) {
      this.forget();
      return;
    }
    if (this.template.length < length) this.template = new Uint8Array(Math.min(maxTemplateBytes, Math.max(length, 2 * this.template.length)));
    this.template.set(buf.subarray(from, from + length));
    const starts = this.starts;
    this.starts = this.nextStarts;
    this.nextStarts = starts;
  }
}

/** The plans of the last few key lists written under one tag. */
class AttributePlans {
  readonly #plans = new RecentKeyLists<AttributePlan>(maxPlans);
  /** The plan of the attributes written last: the next ones most likely have its keys. */
  #last: AttributePlan | undefined;

  /**
   * The plan of the attributes' key list, with their values gathered into its `values`; undefined
   * when the key list gets none (too long, a key too long, or its plan already being written).
   */
  walk(attributes: Attributes): AttributePlan | undefined {
    const last = this.#last;
    if (last !== undefined && !last.busy) {
      // The keys compared as they come: for...in settles hasOwnProperty and the value's load from
      // V8's enumeration cache, where Object.keys and Object.values allocate two arrays.
      const keys = last.keys;
      const values = last.values;
      let i = 0;
      let same = true;
      for (const key in attributes) {
        if (!hasOwnProperty.call(attributes, key)) continue;
        if (i >= keys.length || keys[i] !== key) {
          same = false;
          break;
        }
        values[i++] = attributes[key];
      }
      if (same && i === keys.length) return last;
    }
    const keys = Object.keys(attributes);
    let plan = this.#plans.get(keys);
    if (plan === undefined) {
      if (keys.length > maxPlanKeys || keys.some((key) => key.length > maxPlanKeyLength)) return undefined;
      plan = new AttributePlan(keys);
      this.#plans.set(keys, plan);
    }
    if (plan.busy) return undefined;
    const values = plan.values;
    for (let i = 0; i < keys.length; i++) values[i] = attributes[keys[i]!];
    this.#last = plan;
    return plan;
  }
}

/** Plans by field tag (record, resource and scope attributes, key-value lists). */
const plansByTag = new Map<number, AttributePlans>();

function attributePlans(tag: number): AttributePlans {
  let plans = plansByTag.get(tag);
  if (plans === undefined) plansByTag.set(tag, (plans = new AttributePlans()));
  return plans;
}

/**
 * The `key` fields of the keys seen, up to maxKeyFields: a key list that comes back after its plan
 * was let go (more key lists than maxPlans interleaved, key-value lists in bodies) gets its plan
 * again without encoding its keys again.
 */
const keyFields = new Map<string, Buffer>();
const maxKeyFields = 4096;

/** A KeyValue's `key` field of `key`: tag, length, UTF-8. */
function keyField(key: string): Buffer {
  let field = keyFields.get(key);
  if (field !== undefined) return field;
  const own = new ProtoWriter(maxUtf8Bytes(key.length) + 6);
  own.byte(tagKeyValueKey);
  own.string(key);
  field = own.take();
  if (keyFields.size >= maxKeyFields) keyFields.clear();
  keyFields.set(key, field);
  return field;
}

/** The general KeyValue: `field` is the key's kept `key` field, if any. */
function writeAnyKeyValue(w: ProtoWriter, tag: number, field: Buffer | undefined, key: string, value: unknown): void {
  w.byte(tag);
  const at = w.begin(1);
  if (field !== undefined) {
    w.raw(field);
  } else {
    w.byte(tagKeyValueKey);
    w.string(key);
  }
  w.byte(tagKeyValueValue);
  const valueAt = w.begin(1);
  writeAnyValue(w, value);
  w.end(valueAt, 1);
  w.end(at, 1);
}

/**
 * [tag][length][key field][value tag][length][string_value tag][length][UTF-8]: the three lengths
 * are sized for an ASCII text (a byte per unit) and the text moved in the rare case that its UTF-8
 * needs a longer one.
 */
function writeStringKeyValue(w: ProtoWriter, tag: number, field: Buffer, text: string): void {
  const n = text.length;
  const k = field.length;
  w.ensure(k + maxUtf8Bytes(n) + 20);
  const buf = w.buf;
  const start = w.pos;
  let stringSize = varintSize(n);
  let anySize = varintSize(1 + stringSize + n);
  let kvSize = varintSize(k + 2 + anySize + stringSize + n);
  const at = start + 1 + kvSize + k + 2 + anySize + stringSize;
  const bytes = w.utf8At(text, at);
  let textAt = at;
  if (bytes !== n) {
    stringSize = varintSize(bytes);
    anySize = varintSize(1 + stringSize + bytes);
    kvSize = varintSize(k + 2 + anySize + stringSize + bytes);
    textAt = start + 1 + kvSize + k + 2 + anySize + stringSize;
    if (textAt !== at) buf.copyWithin(textAt, at, at + bytes);
  }
  buf[start] = tag;
  w.lengthAt(start + 1, k + 2 + anySize + stringSize + bytes);
  let p = start + 1 + kvSize;
  if (k < 32) {
    for (let i = 0; i < k; i++) buf[p + i] = field[i]!;
  } else {
    buf.set(field, p);
  }
  p += k;
  buf[p] = tagKeyValueValue;
  w.lengthAt(p + 1, 1 + stringSize + bytes);
  p += 1 + anySize;
  buf[p] = tagAnyString;
  w.lengthAt(p + 1, bytes);
  w.pos = textAt + bytes;
}

/** [tag][length][key field][value tag][length][int_value tag][varint]: every length known up front. */
function writeUint32KeyValue(w: ProtoWriter, tag: number, field: Buffer, value: number): void {
  const k = field.length;
  w.ensure(k + 16);
  const buf = w.buf;
  const intSize = varintSize(value);
  const kvLength = k + 3 + intSize;
  buf[w.pos] = tag;
  w.lengthAt(w.pos + 1, kvLength);
  let p = w.pos + 1 + varintSize(kvLength);
  for (let i = 0; i < k; i++) buf[p + i] = field[i]!;
  p += k;
  buf[p++] = tagKeyValueValue;
  buf[p++] = 1 + intSize;
  buf[p++] = tagAnyInt;
  w.lengthAt(p, value);
  w.pos = p + intSize;
}

/**
 * [outer tag][length][inner tag][length][UTF-8]: a string body or array item (a field holding an
 * AnyValue holding a string), lengths sized as in writeStringKeyValue.
 */
function writeWrappedString(w: ProtoWriter, outerTag: number, innerTag: number, text: string): void {
  const n = text.length;
  w.ensure(maxUtf8Bytes(n) + 12);
  const buf = w.buf;
  const start = w.pos;
  let innerSize = varintSize(n);
  let outerSize = varintSize(1 + innerSize + n);
  const at = start + 2 + outerSize + innerSize;
  const bytes = w.utf8At(text, at);
  let textAt = at;
  if (bytes !== n) {
    innerSize = varintSize(bytes);
    outerSize = varintSize(1 + innerSize + bytes);
    textAt = start + 2 + outerSize + innerSize;
    if (textAt !== at) buf.copyWithin(textAt, at, at + bytes);
  }
  buf[start] = outerTag;
  w.lengthAt(start + 1, 1 + innerSize + bytes);
  buf[start + 1 + outerSize] = innerTag;
  w.lengthAt(start + 2 + outerSize, bytes);
  w.pos = textAt + bytes;
}

/** The fields of an AnyValue (without its own length). */
function writeAnyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.byte(tagAnyString);
      w.string(value);
      return;
    case 'boolean':
      w.byte(tagAnyBool);
      w.byte(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= minInt64 && value < maxInt64) {
        w.byte(tagAnyInt);
        w.varint(value);
      } else {
        w.byte(tagAnyDouble);
        w.double(value);
      }
      return;
    case 'object':
      break;
    default:
      // undefined, bigint, symbol, function: an empty AnyValue.
      return;
  }
  if (value === null) return;
  if (value instanceof Uint8Array) {
    w.byte(tagAnyBytes);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.byte(tagAnyArray);
    const at = w.begin(1);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'string') {
        writeWrappedString(w, tagListValues, tagAnyString, item);
        continue;
      }
      w.byte(tagListValues);
      const itemAt = w.begin(1);
      writeAnyValue(w, item);
      w.end(itemAt, 1);
    }
    w.end(at, 1);
  } else {
    w.byte(tagAnyKvlist);
    const at = w.begin(1);
    writeAttributes(w, value as Attributes, tagListValues);
    w.end(at, 1);
  }
}

/** The bytes of a hex id; a last odd digit is left out and other characters read as the serializer reads them. */
function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = (hexDigit(hex.charCodeAt(2 * i)) << 4) | hexDigit(hex.charCodeAt(2 * i + 1));
  return out;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  if (c >= 0x61 && c <= 0x66) return c - 0x57; // a-f
  return c - 0x37; // A-F (anything else gives what the serializer gives)
}
