// How a log record is stored in the disk buffer: compact JSON of the fields the OTLP exporter
// sends, taken after parsing, enrichment and redaction, so what is on disk is exactly what goes on
// the wire (and no secret the redaction removed). Resource and scope are the agent's own and the
// same for every record, so they are not stored but given back when decoding.
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

export function encodeRecord(record: ReadableLogRecord): Buffer {
  const stored: Stored = { t: record.hrTime, o: record.hrTimeObserved, a: record.attributes };
  if (record.severityNumber !== undefined) stored.n = record.severityNumber;
  if (record.severityText !== undefined) stored.s = record.severityText;
  if (record.body !== undefined) stored.b = record.body;
  if (record.eventName !== undefined) stored.e = record.eventName;
  return Buffer.from(JSON.stringify(stored), 'utf8');
}

/** The record stored in `payload`; throws on bytes that are not a stored record. */
export function decodeRecord(payload: Buffer, scope: RecordScope): ReadableLogRecord {
  const stored = JSON.parse(payload.toString('utf8')) as Stored;
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

/** True when `payload` is a gap record (a notice of loss, which must itself never be dropped). */
export function isGapRecord(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString('utf8')) as Stored).a[recordAttr.gap] === true;
  } catch {
    return false;
  }
}
