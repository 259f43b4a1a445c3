// A binary-protobuf ExportLogsServiceRequest straight into DecodedLogRecord, without an intermediate
// message tree (protobufjs's decode + toObject + normalize cost ~14 µs a record; this a fraction).
//
// Semantics are those of protobufjs 8 followed by the normalizer in otlp-decode.ts, which
// test/unit/aggregator/otlp-decode-differential.test.ts checks on generated requests:
//   - unknown field numbers are skipped (newer senders still decode); a known field with a wire type
//     that does not fit it refuses the body
//   - a scalar field sent twice: the last one wins; a message field sent twice (resource, scope, body,
//     a KeyValue's value, an AnyValue's array or kvlist) is merged, repeated fields inside appended
//   - an AnyValue's oneof: the last member sent wins
//   - a repeated attribute key: the last value wins, in the position of the first; "__proto__" is a
//     key like any other (before, it replaced the attributes object's prototype and was dropped)
//   - int64 values are numbers when safe integers, bigints otherwise; fixed64 timestamps are bigints
// One difference, deliberate: protobufjs looked for wrong wire types only in the message tree it kept,
// so one inside an AnyValue member that a later member replaced went unnoticed; here it refuses the body.
// Field numbers and names are those of otlp-proto.ts (opentelemetry-proto logs/v1, common/v1, resource/v1).
import { tooManyRecords } from '../limits/records-per-request.ts';
import type { AttributeValue, Attributes, DecodedLogRecord, InstrumentationScope } from '../log-record.ts';
import { AttributeCollector, assignAttribute } from './attribute-shapes.ts';
import { WireError, WireReader, recursionLimit } from './otlp-wire-reader.ts';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/**
 * Decodes the request; throws a WireError whose `path` names the field (from the request down) and
 * whose `offset` is the byte where the problem was found, or CIA_ERR_RECEIVER_TOO_LARGE at the first
 * record beyond `maxRecords` (before decoding it).
 */
export function readExportLogsRequest(body: Uint8Array, maxRecords = Number.POSITIVE_INFINITY): DecodedLogRecord[] {
  const r = new WireReader(body);
  const records: DecodedLogRecord[] = [];
  let index = 0;
  previous.begin();
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      if (tag >>> 3 === 1) {
        expectWireType(tag, LEN, 'resourceLogs', 'ResourceLogs', r);
        try {
          readResourceLogs(r, r.delimited('a ResourceLogs'), records, maxRecords);
        } catch (cause) {
          throw within(cause, `resourceLogs[${index}]`);
        }
        index++;
      } else r.skip(tag & 7, 0, tag >>> 3);
    }
  } finally {
    previous.release();
  }
  return records;
}

function readResourceLogs(r: WireReader, end: number, records: DecodedLogRecord[], maxRecords: number): void {
  const outer = enter(r, end, 1);
  // Records point at the resource's attributes; a resource sent after its scope_logs still reaches them.
  const resource: Attributes = {};
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'resource', 'Resource', r);
        readResource(r, r.delimited('a Resource'), resource);
      } else if (field === 2) {
        expectWireType(tag, LEN, 'scopeLogs', 'ScopeLogs', r);
        readScopeLogs(r, r.delimited('a ScopeLogs'), resource, records, maxRecords);
        index++;
      } else if (field === 3) {
        expectWireType(tag, LEN, 'schemaUrl', 'string', r);
        r.string();
      } else r.skip(tag & 7, 1, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? 'resource' : field === 2 ? `scopeLogs[${index}]` : field === 3 ? 'schemaUrl' : undefined);
  }
  r.end = outer;
}

function readResource(r: WireReader, end: number, attributes: Attributes): void {
  const outer = enter(r, end, 2);
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'attributes', 'KeyValue', r);
        readKeyValue(r, r.delimited('a KeyValue'), 3, attributes);
        index++;
      } else if (field === 2) {
        expectWireType(tag, VARINT, 'droppedAttributesCount', 'uint32', r);
        r.uint32();
      } else r.skip(tag & 7, 2, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? `attributes[${index}]` : field === 2 ? 'droppedAttributesCount' : undefined);
  }
  r.end = outer;
}

function readScopeLogs(r: WireReader, end: number, resource: Attributes, records: DecodedLogRecord[], maxRecords: number): void {
  const outer = enter(r, end, 2);
  const scope: InstrumentationScope = { name: '', version: '', attributes: {} };
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 2) {
        expectWireType(tag, LEN, 'logRecords', 'LogRecord', r);
        if (records.length >= maxRecords) throw tooManyRecords(maxRecords);
        records.push(readLogRecord(r, r.delimited('a LogRecord'), resource, scope));
        index++;
      } else if (field === 1) {
        expectWireType(tag, LEN, 'scope', 'InstrumentationScope', r);
        readScope(r, r.delimited('an InstrumentationScope'), scope);
      } else if (field === 3) {
        expectWireType(tag, LEN, 'schemaUrl', 'string', r);
        r.string();
      } else r.skip(tag & 7, 2, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? 'scope' : field === 2 ? `logRecords[${index}]` : field === 3 ? 'schemaUrl' : undefined);
  }
  r.end = outer;
}

function readScope(r: WireReader, end: number, scope: InstrumentationScope): void {
  const outer = enter(r, end, 3);
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'name', 'string', r);
        scope.name = r.string();
      } else if (field === 2) {
        expectWireType(tag, LEN, 'version', 'string', r);
        scope.version = r.string();
      } else if (field === 3) {
        expectWireType(tag, LEN, 'attributes', 'KeyValue', r);
        readKeyValue(r, r.delimited('a KeyValue'), 4, scope.attributes);
        index++;
      } else if (field === 4) {
        expectWireType(tag, VARINT, 'droppedAttributesCount', 'uint32', r);
        r.uint32();
      } else r.skip(tag & 7, 3, field);
    }
  } catch (cause) {
    throw within(cause, ['', 'name', 'version', `attributes[${index}]`, 'droppedAttributesCount'][field] || undefined);
  }
  r.end = outer;
}

const logRecordFields = [
  '',
  'timeUnixNano',
  'severityNumber',
  'severityText',
  '',
  'body',
  'attributes',
  'droppedAttributesCount',
  'flags',
  'traceId',
  'spanId',
  'observedTimeUnixNano',
  'eventName',
];

/** A log record's attributes, collected as decoded (readLogRecord never runs inside itself). */
const recordAttributes = new AttributeCollector();

function readLogRecord(r: WireReader, end: number, resource: Attributes, scope: InstrumentationScope): DecodedLogRecord {
  const outer = enter(r, end, 3);
  let timeUnixNano = 0n;
  let observedTimeUnixNano = 0n;
  let severityNumber = 0;
  let severityText = '';
  let body: AttributeValue = undefined;
  recordAttributes.start();
  let droppedAttributesCount = 0;
  let flags = 0;
  let traceId = '';
  let spanId = '';
  let eventName = '';
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      switch (field) {
        case 1:
          expectWireType(tag, I64, 'timeUnixNano', 'fixed64', r);
          timeUnixNano = r.fixed64();
          break;
        case 2:
          expectWireType(tag, VARINT, 'severityNumber', 'int32', r);
          severityNumber = r.uint32() | 0;
          break;
        case 3:
          expectWireType(tag, LEN, 'severityText', 'string', r);
          severityText = r.string();
          break;
        case 5:
          expectWireType(tag, LEN, 'body', 'AnyValue', r);
          body = readAnyValue(r, r.delimited('an AnyValue'), 4, body);
          break;
        case 6:
          expectWireType(tag, LEN, 'attributes', 'KeyValue', r);
          readRecordAttribute(r, r.delimited('a KeyValue'), index);
          index++;
          break;
        case 7:
          expectWireType(tag, VARINT, 'droppedAttributesCount', 'uint32', r);
          droppedAttributesCount = r.uint32();
          break;
        case 8:
          expectWireType(tag, I32, 'flags', 'fixed32', r);
          flags = r.fixed32();
          break;
        case 9:
          expectWireType(tag, LEN, 'traceId', 'bytes', r);
          traceId = r.hex();
          break;
        case 10:
          expectWireType(tag, LEN, 'spanId', 'bytes', r);
          spanId = r.hex();
          break;
        case 11:
          expectWireType(tag, I64, 'observedTimeUnixNano', 'fixed64', r);
          observedTimeUnixNano = r.fixed64();
          break;
        case 12:
          expectWireType(tag, LEN, 'eventName', 'string', r);
          eventName = r.string();
          break;
        default:
          r.skip(tag & 7, 3, field);
      }
    }
  } catch (cause) {
    throw within(cause, field === 6 ? `attributes[${index}]` : logRecordFields[field] || undefined);
  }
  r.end = outer;
  // The same property order as the JSON path builds, so both give records of one shape.
  return {
    resource,
    scope,
    timeUnixNano,
    observedTimeUnixNano,
    severityNumber,
    severityText,
    body,
    attributes: recordAttributes.build(),
    droppedAttributesCount,
    flags,
    traceId,
    spanId,
    eventName,
  };
}

/**
 * The attributes of the records decoded so far in this request, by position in their record: where
 * each KeyValue's bytes are and what they decoded to. The records of one source carry the same keys
 * in the same order, and many the same values (dataset, host, user, parser): a KeyValue whose bytes
 * are those of the previous one at its position decodes to the same key and value, so comparing the
 * bytes takes the place of decoding them, and one that begins with the same key field reuses the key.
 * Byte ranges are offsets into the request being decoded, so nothing is kept from one request to
 * the next.
 */
class PreviousAttributes {
  /** Positions with an entry (0 to count - 1) in this request. */
  count = 0;
  readonly start: number[] = [];
  readonly length: number[] = [];
  /** Bytes from the KeyValue's start to the end of its key field when that field is its first and only key; 0 otherwise. */
  readonly keyLength: number[] = [];
  readonly key: string[] = [];
  readonly value: AttributeValue[] = [];
  /** How the value may be handed out again: as it is (a primitive), as a copy (an array of primitives), or not (objects, bytes, nested arrays). */
  readonly reuse: Reuse[] = [];

  begin(): void {
    this.count = 0;
  }

  /** Lets go of the request's values (keys stay, as the string cache keeps them anyway). */
  release(): void {
    this.value.fill(undefined, 0, this.count);
    this.count = 0;
  }
}

/** How a previous value is handed out again (PreviousAttributes.reuse). */
const reuseNever = 0;
const reuseSame = 1;
const reuseCopy = 2;
type Reuse = typeof reuseNever | typeof reuseSame | typeof reuseCopy;

function reuseOf(value: AttributeValue): Reuse {
  if (typeof value !== 'object') return reuseSame;
  if (!Array.isArray(value)) return reuseNever;
  for (const item of value) if (typeof item === 'object') return reuseNever;
  return reuseCopy;
}

/** readExportLogsRequest never runs inside itself, so one is enough. */
const previous = new PreviousAttributes();

/** A log record's KeyValue number `index`, added to recordAttributes: readKeyValue, with the bytes of the previous record's compared first. */
function readRecordAttribute(r: WireReader, end: number, index: number): void {
  const start = r.pos;
  const length = end - start;
  let key = '';
  let keyLength = 0;
  if (index < previous.count) {
    const before = previous.length[index]!;
    const same = r.samePrefix(previous.start[index]!, start, length < before ? length : before);
    const reuse = previous.reuse[index]!;
    if (same === length && length === before && reuse !== reuseNever) {
      // The same bytes, and the bytes before them decoded without error to this key and value. Every
      // record has an array of its own, as when decoded.
      const value = previous.value[index];
      previous.start[index] = start;
      r.pos = end;
      recordAttributes.add(previous.key[index]!, reuse === reuseCopy ? (value as AttributeValue[]).slice() : value);
      return;
    }
    const known = previous.keyLength[index]!;
    if (known !== 0 && same >= known) {
      key = previous.key[index]!;
      keyLength = known;
      r.pos = start + known;
    }
  }
  readKeyValueFields(r, end, 4, start, key, keyLength);
  const value = readKeyValueOut.value;
  key = readKeyValueOut.key;
  keyLength = readKeyValueOut.keyLength;
  recordAttributes.add(key, value);
  previous.start[index] = start;
  previous.length[index] = length;
  previous.keyLength[index] = keyLength;
  previous.key[index] = key;
  previous.value[index] = value;
  previous.reuse[index] = reuseOf(value);
  if (index >= previous.count) previous.count = index + 1;
}

/** A KeyValue, assigned into `into` (a repeated key: the last value wins, as in the JSON path). */
function readKeyValue(r: WireReader, end: number, depth: number, into: Attributes): void {
  readKeyValueFields(r, end, depth, r.pos, '', 0);
  assignAttribute(into, readKeyValueOut.key, readKeyValueOut.value);
}

/**
 * What readKeyValueFields read last: the key, the value, and the bytes from the KeyValue's start to
 * the end of its key field when that field is its first and only key (0 otherwise). Set after the
 * value is read, so a KeyValue inside the value (a kvlist) cannot overwrite its parent's.
 */
const readKeyValueOut: { key: string; value: AttributeValue; keyLength: number } = { key: '', value: undefined, keyLength: 0 };

/**
 * The fields of the KeyValue at `start`, up to `end`, into readKeyValueOut; `key` and `keyLength`
 * are those of a key field the caller already took (readRecordAttribute), or '' and 0.
 */
function readKeyValueFields(r: WireReader, end: number, depth: number, start: number, key: string, keyLength: number): void {
  const outer = enter(r, end, depth);
  let value: AttributeValue = undefined;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'key', 'string', r);
        const first = r.tagStart === start;
        key = r.string();
        // A key sent again replaces the first: the key field no longer tells the key.
        keyLength = first ? r.pos - start : 0;
      } else if (field === 2) {
        expectWireType(tag, LEN, 'value', 'AnyValue', r);
        value = readAnyValue(r, r.delimited('an AnyValue'), depth + 1, value);
      } else r.skip(tag & 7, depth, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? 'key' : field === 2 ? 'value' : undefined);
  }
  r.end = outer;
  readKeyValueOut.key = key;
  readKeyValueOut.value = value;
  readKeyValueOut.keyLength = keyLength;
}

const anyValueFields = ['', 'stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'];

/**
 * An AnyValue. `previous` is what an earlier occurrence of the same field decoded to: protobuf merges
 * a message sent twice, so a second arrayValue appends to the first one's array, a second kvlistValue
 * adds to its object; any other member replaces it.
 */
function readAnyValue(r: WireReader, end: number, depth: number, previous: AttributeValue): AttributeValue {
  const outer = enter(r, end, depth);
  let value = previous;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      switch (field) {
        case 1:
          expectWireType(tag, LEN, 'stringValue', 'string', r);
          value = r.string();
          break;
        case 2:
          expectWireType(tag, VARINT, 'boolValue', 'bool', r);
          value = r.bool();
          break;
        case 3:
          expectWireType(tag, VARINT, 'intValue', 'int64', r);
          value = r.int64();
          break;
        case 4:
          expectWireType(tag, I64, 'doubleValue', 'double', r);
          value = r.double();
          break;
        case 5: {
          expectWireType(tag, LEN, 'arrayValue', 'ArrayValue', r);
          const values = Array.isArray(value) ? value : [];
          readArrayValue(r, r.delimited('an ArrayValue'), depth + 1, values);
          value = values;
          break;
        }
        case 6: {
          expectWireType(tag, LEN, 'kvlistValue', 'KeyValueList', r);
          const values = isKvlist(value) ? value : {};
          readKeyValueList(r, r.delimited('a KeyValueList'), depth + 1, values);
          value = values;
          break;
        }
        case 7:
          expectWireType(tag, LEN, 'bytesValue', 'bytes', r);
          value = r.byteString();
          break;
        default:
          r.skip(tag & 7, depth, field);
      }
    }
  } catch (cause) {
    throw within(cause, anyValueFields[field] || undefined);
  }
  r.end = outer;
  return value;
}

function isKvlist(value: AttributeValue): value is Attributes {
  return typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function readArrayValue(r: WireReader, end: number, depth: number, values: AttributeValue[]): void {
  const outer = enter(r, end, depth);
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'values', 'AnyValue', r);
        values.push(readAnyValue(r, r.delimited('an AnyValue'), depth + 1, undefined));
      } else r.skip(tag & 7, depth, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? `values[${values.length}]` : undefined);
  }
  r.end = outer;
}

function readKeyValueList(r: WireReader, end: number, depth: number, into: Attributes): void {
  const outer = enter(r, end, depth);
  let index = 0;
  let field = 0;
  try {
    while (r.pos < r.end) {
      const tag = r.tag();
      field = tag >>> 3;
      if (field === 1) {
        expectWireType(tag, LEN, 'values', 'KeyValue', r);
        readKeyValue(r, r.delimited('a KeyValue'), depth + 1, into);
        index++;
      } else r.skip(tag & 7, depth, field);
    }
  } catch (cause) {
    throw within(cause, field === 1 ? `values[${index}]` : undefined);
  }
  r.end = outer;
}

/** Narrows reading to a nested message; returns the outer message's end to restore afterwards. */
function enter(r: WireReader, end: number, depth: number): number {
  if (depth > recursionLimit) throw new WireError(`messages nested deeper than ${recursionLimit} levels`, r.pos);
  const outer = r.end;
  r.end = end;
  return outer;
}

function expectWireType(tag: number, wireType: number, name: string, type: string, r: WireReader): void {
  if ((tag & 7) === wireType) return;
  const error = new WireError(`field ${tag >>> 3} has wire type ${tag & 7}, which does not fit its type ${type}`, r.tagStart);
  // Named without an index: the field itself is wrong, not one element of it.
  error.path.push(name);
  error.fieldNamed = true;
  throw error;
}

/** Adds the segment of the field being read to an error on its way out. */
function within(cause: unknown, segment: string | undefined): unknown {
  if (!(cause instanceof WireError)) return cause;
  if (cause.fieldNamed) cause.fieldNamed = false;
  else if (segment !== undefined) cause.path.push(segment);
  return cause;
}
