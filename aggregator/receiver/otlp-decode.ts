// OTLP ExportLogsServiceRequest (protobuf or OTLP/JSON) -> a flat list of DecodedLogRecord.
// Pure functions: bytes in, records out, or a CIA_ERR_RECEIVER_DECODE error that names the field.
//
// Binary protobuf is decoded by hand straight into records (otlp-protobuf-decode.ts). OTLP/JSON is
// parsed and goes through the normalizer below. The normalizer also takes protobufjs's toObject output
// of a protobuf request: that was the protobuf path before the hand-written decoder, and
// test/unit/aggregator/otlp-decode-differential.test.ts keeps it as the reference the new decoder must
// match. The two spell a few values differently, which `format` tells apart:
//   | value              | protobuf (after toObject)  | OTLP/JSON                               |
//   | trace_id, span_id  | bytes                      | hex string                              |
//   | int64, fixed64     | decimal string             | decimal string or number                |
//   | bytes_value        | bytes                      | base64 string                           |
//   | double_value       | number                     | number, or "NaN" / "Infinity" / "-Infinity" |
import { CiAuditError } from '../../core/errors.ts';
import { tooManyRecords } from '../limits/records-per-request.ts';
import type { AttributeValue, Attributes, DecodedLogRecord, InstrumentationScope } from '../log-record.ts';
import { assignAttribute } from './attribute-shapes.ts';
import { readExportLogsRequest } from './otlp-protobuf-decode.ts';
import { WireError } from './otlp-wire-reader.ts';

type Format = 'protobuf' | 'json';

/** Deepest nesting of AnyValue (arrays, key-value lists) accepted; deeper bodies are rejected. */
export const maxValueDepth = 64;

/**
 * Decodes a binary-protobuf ExportLogsServiceRequest (otlp-protobuf-decode.ts: a hand-written decoder
 * with the semantics protobufjs + normalizeRequest had, at a fraction of the cost). A request with
 * more than `maxRecords` records fails with CIA_ERR_RECEIVER_TOO_LARGE as soon as one more is found.
 */
export function decodeProtobufLogs(body: Uint8Array, maxRecords = Number.POSITIVE_INFINITY): DecodedLogRecord[] {
  try {
    return readExportLogsRequest(body, maxRecords);
  } catch (cause) {
    if (!(cause instanceof WireError)) throw cause;
    const segments = ['<request>', ...cause.path.toReversed()];
    // Bodies nested a hundred levels deep would otherwise give a path of kilobytes.
    if (segments.length > 16) segments.splice(8, segments.length - 14, `(${segments.length - 14} more)`);
    const path = segments.join('.');
    throw decodeError(`body is not a protobuf ExportLogsServiceRequest: ${describeWireError(cause, path)}`, cause);
  }
}

/** "index out of range" errors keep protobufjs's lead phrase; the others start with the field path. */
function describeWireError(error: WireError, path: string): string {
  if (error.message.startsWith('index out of range')) return `${error.message}, in ${path}`;
  return `${path}: ${error.message} (byte ${error.offset})`;
}

/**
 * Decodes an OTLP/JSON ExportLogsServiceRequest (UTF-8). Large integers keep every digit. More than
 * `maxRecords` records: CIA_ERR_RECEIVER_TOO_LARGE, before the records beyond are built (JSON.parse
 * itself has read the whole body by then: max_decompressed_bytes bounds that).
 */
export function decodeJsonLogs(body: Uint8Array | string, maxRecords = Number.POSITIVE_INFINITY): DecodedLogRecord[] {
  // A body of no more bytes than the bound cannot hold more brackets: most bodies skip the count.
  if ((typeof body === 'string' ? body.length : body.byteLength) > maxJsonContainers) {
    const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (containersAtLeast(bytes, maxJsonContainers + 1)) throw tooManyContainers();
  }
  const text = typeof body === 'string' ? body : utf8Text(body);
  let plain: unknown;
  try {
    plain = JSON.parse(text, keepLargeIntegers);
  } catch (cause) {
    throw decodeError(`body is not valid JSON: ${(cause as Error).message}`, cause);
  }
  return normalizeRequest(plain, 'json', maxRecords);
}

/**
 * Most JSON objects and arrays in one OTLP/JSON body. JSON.parse builds the whole tree before a
 * record can be counted, at about 100 bytes of memory a container with the reviver that keeps large
 * integers exact: 30 MB of empty records (`{},`) took 3 GB. A million bounds that near 100 MB, and is
 * room for 16,000 records of 30 attributes (two containers each), more than senders batch (the
 * Collector's default is 8,192 records a request).
 */
export const maxJsonContainers = 1_000_000;

/**
 * Whether `bytes` holds at least `count` `{` and `[` bytes, inside strings too (an upper bound on
 * the containers: a brace inside a string only makes the bound stricter), but for the `[` of an
 * escaped ANSI colour code (`\u001b[32m`: CI output is full of them). Such a `[` is never a
 * container: outside a string `\u001b` is no JSON, and the parser stops there. Stops at `count`,
 * so a hostile body costs no more than that many searches.
 */
function containersAtLeast(bytes: Buffer, count: number): boolean {
  let n = 0;
  for (let at = bytes.indexOf(0x7b); at !== -1; at = bytes.indexOf(0x7b, at + 1)) if (++n >= count) return true;
  for (let at = bytes.indexOf(0x5b); at !== -1; at = bytes.indexOf(0x5b, at + 1)) {
    if (!escapedEscapeBefore(bytes, at) && ++n >= count) return true;
  }
  return false;
}

/** `\u001b` or `\u001B` right before `at`. */
function escapedEscapeBefore(bytes: Buffer, at: number): boolean {
  return (
    at >= 6 &&
    (bytes[at - 1] === 0x62 || bytes[at - 1] === 0x42) &&
    bytes[at - 2] === 0x31 &&
    bytes[at - 3] === 0x30 &&
    bytes[at - 4] === 0x30 &&
    bytes[at - 5] === 0x75 &&
    bytes[at - 6] === 0x5c
  );
}

function tooManyContainers(): CiAuditError {
  return new CiAuditError(
    'CIA_ERR_RECEIVER_TOO_LARGE',
    `OTLP/JSON body holds more than ${maxJsonContainers} JSON objects and arrays (counting "{" and "[" in strings too, but for ANSI colour codes), the most the receiver parses in one request; send smaller batches, or protobuf`,
    { details: { limit: maxJsonContainers } },
  );
}

/**
 * The body as text, refused when it is not UTF-8, as the protobuf path refuses such strings (a
 * lenient decoder would store U+FFFD in their place and answer 200). A leading BOM is dropped.
 */
function utf8Text(body: Uint8Array): string {
  try {
    return strictUtf8.decode(body);
  } catch (cause) {
    const at = invalidUtf8At(body);
    throw decodeError(`body is not UTF-8, as OTLP/JSON must be: invalid byte 0x${body[at]?.toString(16).padStart(2, '0') ?? '??'} at byte ${at}`, cause);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Offset of the first byte that is not valid UTF-8, for the error message only. The lenient decoder
 * puts U+FFFD where that is, every character before it decoded as it was; a U+FFFD the body itself
 * holds (bytes EF BF BD) is skipped.
 */
function invalidUtf8At(body: Uint8Array): number {
  const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(body);
  let offset = 0;
  let counted = 0;
  for (let i = text.indexOf('\uFFFD'); i !== -1; i = text.indexOf('\uFFFD', i + 1)) {
    offset += Buffer.byteLength(text.slice(counted, i));
    counted = i;
    if (body[offset] !== 0xef || body[offset + 1] !== 0xbf || body[offset + 2] !== 0xbd) return offset;
  }
  return body.byteLength;
}

/**
 * JSON.parse reviver: a number that is not a safe integer but was written as an integer
 * (a nanosecond timestamp sent as a JSON number) becomes a bigint from its source text.
 */
function keepLargeIntegers(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

function decodeError(message: string, cause?: unknown): CiAuditError {
  return new CiAuditError('CIA_ERR_RECEIVER_DECODE', message, cause === undefined ? {} : { cause });
}

/**
 * A plain request object (parsed OTLP/JSON, or protobufjs toObject output) -> records; more than
 * `maxRecords` of them: CIA_ERR_RECEIVER_TOO_LARGE, at the first one beyond.
 */
export function normalizeRequest(plain: unknown, format: Format, maxRecords = Number.POSITIVE_INFINITY): DecodedLogRecord[] {
  const request = asObject(plain, '<request>');
  const records: DecodedLogRecord[] = [];
  for (const [i, rlValue] of asArray(request.resourceLogs, 'resourceLogs').entries()) {
    const rlPath = `resourceLogs[${i}]`;
    const rl = asObject(rlValue, rlPath);
    const resourceObj = rl.resource === undefined || rl.resource === null ? {} : asObject(rl.resource, `${rlPath}.resource`);
    const resource = toAttributes(resourceObj.attributes, `${rlPath}.resource.attributes`, format);
    for (const [j, slValue] of asArray(rl.scopeLogs, `${rlPath}.scopeLogs`).entries()) {
      const slPath = `${rlPath}.scopeLogs[${j}]`;
      const sl = asObject(slValue, slPath);
      const scope = toScope(sl.scope, `${slPath}.scope`, format);
      for (const [k, lrValue] of asArray(sl.logRecords, `${slPath}.logRecords`).entries()) {
        if (records.length >= maxRecords) throw tooManyRecords(maxRecords);
        records.push(toRecord(lrValue, `${slPath}.logRecords[${k}]`, format, resource, scope));
      }
    }
  }
  return records;
}

function toScope(value: unknown, path: string, format: Format): InstrumentationScope {
  if (value === undefined || value === null) return { name: '', version: '', attributes: {} };
  const scope = asObject(value, path);
  return {
    name: asString(scope.name, `${path}.name`),
    version: asString(scope.version, `${path}.version`),
    attributes: toAttributes(scope.attributes, `${path}.attributes`, format),
  };
}

function toRecord(value: unknown, path: string, format: Format, resource: Attributes, scope: InstrumentationScope): DecodedLogRecord {
  const lr = asObject(value, path);
  return {
    resource,
    scope,
    timeUnixNano: toUnsigned64(lr.timeUnixNano, `${path}.timeUnixNano`),
    observedTimeUnixNano: toUnsigned64(lr.observedTimeUnixNano, `${path}.observedTimeUnixNano`),
    severityNumber: toInt32(lr.severityNumber, `${path}.severityNumber`),
    severityText: asString(lr.severityText, `${path}.severityText`),
    body: lr.body === undefined || lr.body === null ? undefined : toAnyValue(lr.body, `${path}.body`, format, 0),
    attributes: toAttributes(lr.attributes, `${path}.attributes`, format),
    droppedAttributesCount: toUint32(lr.droppedAttributesCount, `${path}.droppedAttributesCount`),
    flags: toUint32(lr.flags, `${path}.flags`),
    traceId: toId(lr.traceId, `${path}.traceId`, format),
    spanId: toId(lr.spanId, `${path}.spanId`, format),
    eventName: asString(lr.eventName, `${path}.eventName`),
  };
}

function toAttributes(value: unknown, path: string, format: Format, depth = 0): Attributes {
  const out: Attributes = {};
  for (const [i, kvValue] of asArray(value, path).entries()) {
    const kv = asObject(kvValue, `${path}[${i}]`);
    const key = asString(kv.key, `${path}[${i}].key`);
    // A repeated key is invalid OTLP; the last value wins, as in the OpenTelemetry SDKs.
    assignAttribute(out, key, kv.value === undefined || kv.value === null ? undefined : toAnyValue(kv.value, `${path}[${i}].value`, format, depth));
  }
  return out;
}

function toAnyValue(value: unknown, path: string, format: Format, depth: number): AttributeValue {
  if (depth > maxValueDepth) throw decodeError(`${path}: values nested deeper than ${maxValueDepth} levels`);
  const any = asObject(value, path);
  if (any.stringValue !== undefined) return asString(any.stringValue, `${path}.stringValue`);
  if (any.boolValue !== undefined) {
    if (typeof any.boolValue !== 'boolean') throw expected(`${path}.boolValue`, 'a boolean', any.boolValue);
    return any.boolValue;
  }
  if (any.intValue !== undefined) return toInt64(any.intValue, `${path}.intValue`);
  if (any.doubleValue !== undefined) return toDouble(any.doubleValue, `${path}.doubleValue`);
  if (any.arrayValue !== undefined) {
    const arr = asObject(any.arrayValue, `${path}.arrayValue`);
    return asArray(arr.values, `${path}.arrayValue.values`).map((v, i) =>
      v === null ? undefined : toAnyValue(v, `${path}.arrayValue.values[${i}]`, format, depth + 1),
    );
  }
  if (any.kvlistValue !== undefined) {
    const list = asObject(any.kvlistValue, `${path}.kvlistValue`);
    return toAttributes(list.values, `${path}.kvlistValue.values`, format, depth + 1);
  }
  if (any.bytesValue !== undefined) return toBytes(any.bytesValue, `${path}.bytesValue`, format);
  return undefined;
}

function asObject(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw expected(path, 'an object', value);
  }
  return value as Record<string, unknown>;
}

function asArray(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw expected(path, 'an array', value);
  return value;
}

function asString(value: unknown, path: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw expected(path, 'a string', value);
  return value;
}

/**
 * int32 (severity_number, an open enum: values beyond the 24 named ones are kept, as protobuf keeps
 * them) and uint32/fixed32 (dropped_attributes_count, flags): a number of the field's range, or its
 * decimal string, as the proto3 JSON mapping has them. Beyond the range the protobuf wire cannot
 * carry the value at all, so it is refused rather than stored as a number no sender could have meant.
 */
function toInt32(value: unknown, path: string): number {
  return toInteger(value, path, -(2 ** 31), 2 ** 31 - 1, 'a 32-bit integer');
}

function toUint32(value: unknown, path: string): number {
  return toInteger(value, path, 0, 2 ** 32 - 1, 'an unsigned 32-bit integer');
}

function toInteger(value: unknown, path: string, min: number, max: number, what: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
  if (Number.isInteger(n) && n >= min && n <= max) return n;
  throw expected(path, `${what} (${min} to ${max})`, value);
}

function toUnsigned64(value: unknown, path: string): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'bigint' && value >= 0n) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) {
    const n = BigInt(value);
    if (n < 2n ** 64n) return n;
  }
  throw expected(path, 'an unsigned 64-bit integer (decimal string or number)', value);
}

function toInt64(value: unknown, path: string): number | bigint {
  let n: bigint | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) n = BigInt(value);
  if (n === undefined || n < -(2n ** 63n) || n >= 2n ** 63n) {
    throw expected(path, 'a signed 64-bit integer (decimal string or number)', value);
  }
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function toDouble(value: unknown, path: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw expected(path, 'a number', value);
}

function toId(value: unknown, path: string, format: Format): string {
  if (value === undefined || value === null) return '';
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  if (format === 'json' && typeof value === 'string' && /^(?:[0-9a-fA-F]{2})*$/.test(value)) return value.toLowerCase();
  throw expected(path, format === 'json' ? 'a hex string' : 'bytes', value);
}

function toBytes(value: unknown, path: string, format: Format): Uint8Array {
  // A copy as a plain Uint8Array: protobufjs hands out Buffer views into the whole request.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (format === 'json' && typeof value === 'string' && /^[A-Za-z0-9+/\-_]*={0,2}$/.test(value)) {
    return new Uint8Array(Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64'));
  }
  throw expected(path, format === 'json' ? 'a base64 string' : 'bytes', value);
}

function expected(path: string, what: string, got: unknown): CiAuditError {
  return decodeError(`${path}: expected ${what}, got ${describe(got)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${value.toString()}`;
  return typeof value;
}
