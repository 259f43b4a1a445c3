// How a log record is stored in the disk buffer: the byte 0x01, then the record's OTLP LogRecord
// message, taken after parsing, enrichment, redaction and the chain, so what is on disk is exactly
// what goes on the wire (and no secret the redaction removed). Read back, the record is an
// EncodedLogRecord whose bytes the exporter splices into its request: a record is encoded once, on
// its way into the buffer, and never decoded on its way out. Resource and scope are the agent's own
// and the same for every record, so they are not stored but given back when decoding.
//
// Earlier agents stored compact JSON of the record's fields (a payload starting with "{"): a buffer
// they left behind is still read after an upgrade, and its records encoded when sent. JSON keeps strings, booleans, finite numbers and HrTimes as they are; the values JSON has no
// form for (NaN, ±Infinity, bytes) were written as a tagged object.
import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { recordAttr } from '../../core/wire.ts';
import { EncodedLogRecord } from '../sinks/encoded-log-record.ts';
import { encodeLogRecordTransient } from '../sinks/otlp-protobuf-encode.ts';

interface Stored {
  t: HrTime;
  o: HrTime;
  n?: number;
  s?: string;
  b?: AnyValue;
  e?: string;
  a: Attributes;
}

export interface RecordScope {
  resource: Resource;
  instrumentationScope: ReadableLogRecord['instrumentationScope'];
}

/** Key of the tagged object that stands for a value JSON cannot hold. */
const tag = '\u0000ci_audit.value';

function untagged(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !(tag in value)) return value;
  const t = (value as Record<string, unknown>)[tag];
  if (t === 'bytes') return new Uint8Array(Buffer.from(String((value as Record<string, unknown>).base64), 'base64'));
  return Number(t);
}

/** First byte of a payload that holds an OTLP LogRecord message. */
const formatLogRecord = 0x01;
/** First byte of a LogRecord message as the agent's encoder writes it: time_unix_nano's tag. */
const tagRecordTime = 0x09;
/** First byte of a payload an earlier agent wrote (JSON): "{". */
const formatLegacyJson = 0x7b;

/**
 * The payload of `record`. The bytes are a view of a buffer that the next call overwrites: append
 * them at once (DiskBuffer.append copies them).
 */
export function encodeRecord(record: ReadableLogRecord): Buffer {
  return encodeLogRecordTransient(record, formatLogRecord);
}

/**
 * The record stored in `payload`, with `scope`'s resource and instrumentation scope; throws on
 * bytes that are not a stored record. A record of this version is not decoded: its fields are read
 * from the bytes only if something asks for them. `whole`, a view of all of `payload.buffer` (of
 * a read's entries), is what the record then holds, where it held a view of its own.
 */
export function decodeRecord(payload: Buffer, scope: RecordScope, whole?: Uint8Array): ReadableLogRecord {
  if (payload[0] === formatLogRecord && payload[1] === tagRecordTime) {
    if (whole?.buffer === payload.buffer && whole.byteOffset === 0) {
      // The record holds the bytes it was read into, not a view of its own (EncodedLogRecord's `slab`).
      const start = payload.byteOffset + 1;
      return new EncodedLogRecord(whole, scope.resource, scope.instrumentationScope, start, start + payload.length - 1);
    }
    return new EncodedLogRecord(payload.subarray(1), scope.resource, scope.instrumentationScope);
  }
  if (payload[0] === formatLegacyJson) return decodeLegacyRecord(payload, scope);
  throw new Error('not a buffered log record');
}

function decodeLegacyRecord(payload: Buffer, scope: RecordScope): ReadableLogRecord {
  const text = payload.toString('utf8');
  const stored = (text.includes('\\u0000ci_audit.value') ? JSON.parse(text, untagged) : JSON.parse(text)) as Stored;
  if (!Array.isArray(stored.t) || !Array.isArray(stored.o) || typeof stored.a !== 'object' || stored.a === null) {
    throw new Error('not a buffered log record');
  }
  return {
    hrTime: stored.t,
    hrTimeObserved: stored.o,
    ...(stored.n === undefined ? {} : { severityNumber: stored.n }),
    ...(stored.s === undefined ? {} : { severityText: stored.s }),
    ...(stored.b === undefined ? {} : { body: stored.b }),
    ...(stored.e === undefined ? {} : { eventName: stored.e }),
    attributes: stored.a,
    droppedAttributesCount: 0,
    resource: scope.resource,
    instrumentationScope: scope.instrumentationScope,
  };
}

/**
 * The attributes of the record stored in `payload` (decoded whole: read once per payload where
 * several are needed); undefined when it is not one.
 */
export function attributesOf(payload: Buffer): Attributes | undefined {
  try {
    return decodeRecord(payload, noScope).attributes;
  } catch {
    return undefined;
  }
}

/** Stands for the agent's resource and scope where only a record's attributes are read. */
const noScope = { resource: undefined, instrumentationScope: { name: '' } } as unknown as RecordScope;

/** The record id among `attributes`, as text. */
export function recordIdOf(attributes: Attributes | undefined): string | undefined {
  const id = attributes?.[recordAttr.recordId];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

/** True when `attributes` are a gap record's (a notice of loss, which must itself never be dropped). */
export function isGapRecord(attributes: Attributes | undefined): boolean {
  return attributes?.[recordAttr.gap] === true;
}
