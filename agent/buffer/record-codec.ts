// How a log record is stored in the disk buffer: compact JSON of the fields the OTLP exporter
// sends, taken after parsing, enrichment and redaction, so what is on disk is exactly what goes on
// the wire (and no secret the redaction removed). Resource and scope are the agent's own and the
// same for every record, so they are not stored but given back when decoding.
//
// Decoding gives back exactly the values encoded, so that the canonical record the hash chain
// computed before the buffer is the one the exporter sends after it: JSON keeps strings, booleans,
// finite numbers and HrTimes as they are; the values JSON has no form for (NaN, ±Infinity, bytes)
// are written as a tagged object instead, which only costs a second pass when one is present.
import type { AnyValue, Attributes, HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { recordAttr } from '../../core/wire.ts';

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

function tagged(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return { [tag]: String(value) };
  if (value instanceof Uint8Array) return { [tag]: 'bytes', base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  return value;
}

function untagged(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !(tag in value)) return value;
  const t = (value as Record<string, unknown>)[tag];
  if (t === 'bytes') return new Uint8Array(Buffer.from(String((value as Record<string, unknown>).base64), 'base64'));
  return Number(t);
}

export function encodeRecord(record: ReadableLogRecord): Buffer {
  const stored: Stored = { t: record.hrTime, o: record.hrTimeObserved, a: record.attributes };
  if (record.severityNumber !== undefined) stored.n = record.severityNumber;
  if (record.severityText !== undefined) stored.s = record.severityText;
  if (record.body !== undefined) stored.b = record.body;
  if (record.eventName !== undefined) stored.e = record.eventName;
  let text = JSON.stringify(stored);
  // JSON.stringify writes NaN and ±Infinity as null (a record holds no null of its own outside
  // arrays) and bytes as an object of indexes: encode those with tags instead.
  if (text.includes('null') || (typeof record.body === 'object' && record.body !== null)) text = JSON.stringify(stored, tagged);
  return Buffer.from(text, 'utf8');
}

/** The record stored in `payload`; throws on bytes that are not a stored record. */
export function decodeRecord(payload: Buffer, scope: RecordScope): ReadableLogRecord {
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

/** The record id stored in `payload`, without decoding the rest of the record when it fails. */
export function recordIdOf(payload: Buffer | undefined): string | undefined {
  if (payload === undefined) return undefined;
  try {
    const id = (JSON.parse(payload.toString('utf8')) as Stored).a[recordAttr.recordId];
    return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
  } catch {
    return undefined;
  }
}

/** One attribute of the record stored in `payload` (undefined when absent or unreadable). */
export function attributeOf(payload: Buffer, key: string): unknown {
  try {
    return (JSON.parse(payload.toString('utf8')) as Stored).a[key];
  } catch {
    return undefined;
  }
}

/** True when `payload` is a gap record (a notice of loss, which must itself never be dropped). */
export function isGapRecord(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString('utf8')) as Stored).a[recordAttr.gap] === true;
  } catch {
    return false;
  }
}
