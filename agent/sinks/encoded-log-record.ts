// A log record carried as the bytes of its OTLP LogRecord message. The agent encodes each record
// once, when it enters a batch or the disk buffer; the request then splices those bytes in
// (otlp-protobuf-encode.ts). Held as objects, the records waiting for their batch's answer lived
// long enough to reach V8's old generation, with their 29 attributes each; as bytes they are one
// small object and a slice of a shared slab. Read from the disk buffer, they skip the JSON the
// buffer used to store and the objects it decoded into.
//
// It is still a ReadableLogRecord: whatever reads its fields (a set-aside batch's sequence numbers,
// an exporter in a test, a dropped segment's record ids) gets them decoded from the bytes on first
// read, by the aggregator's decoder, so that they are what the aggregator will see.
import type { AnyValue, Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Attributes as DecodedAttributes, AttributeValue as DecodedValue, DecodedLogRecord } from '../../aggregator/log-record.ts';
import { assignAttribute } from '../../aggregator/receiver/attribute-shapes.ts';
import { readExportLogsRequest } from '../../aggregator/receiver/otlp-protobuf-decode.ts';

type Scope = ReadableLogRecord['instrumentationScope'];

interface Fields {
  hrTime: HrTime;
  hrTimeObserved: HrTime;
  spanContext: SpanContext | undefined;
  severityText: string | undefined;
  severityNumber: number | undefined;
  body: AnyValue;
  eventName: string | undefined;
  attributes: Attributes;
  droppedAttributesCount: number;
}

export class EncodedLogRecord implements ReadableLogRecord {
  /**
   * Holds the LogRecord message, from `start` to `end`: a slab shared with other records. Not a
   * view of its own: a view is an object of about 70 bytes that waited for the batch's answer with
   * the record, long enough to be promoted to V8's old generation; `encoded` makes one when asked.
   */
  readonly slab: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly resource: Resource;
  readonly instrumentationScope: Scope;
  #fields: Fields | undefined;

  /** The message is `slab[start, end)`, by default all of `slab`. */
  constructor(slab: Uint8Array, resource: Resource, instrumentationScope: Scope, start = 0, end = slab.length) {
    this.slab = slab;
    this.start = start;
    this.end = end;
    this.resource = resource;
    this.instrumentationScope = instrumentationScope;
  }

  /** The LogRecord message: its fields, without a tag or length. */
  get encoded(): Uint8Array {
    const { slab, start, end } = this;
    return start === 0 && end === slab.length ? slab : slab.subarray(start, end);
  }

  /** Bytes of the LogRecord message. */
  get encodedLength(): number {
    return this.end - this.start;
  }

  get hrTime(): HrTime {
    return this.#decoded().hrTime;
  }

  get hrTimeObserved(): HrTime {
    return this.#decoded().hrTimeObserved;
  }

  get spanContext(): SpanContext | undefined {
    return this.#decoded().spanContext;
  }

  get severityText(): string | undefined {
    return this.#decoded().severityText;
  }

  get severityNumber(): number | undefined {
    return this.#decoded().severityNumber;
  }

  get body(): AnyValue {
    return this.#decoded().body;
  }

  get eventName(): string | undefined {
    return this.#decoded().eventName;
  }

  get attributes(): Attributes {
    return this.#decoded().attributes;
  }

  get droppedAttributesCount(): number {
    return this.#decoded().droppedAttributesCount;
  }

  #decoded(): Fields {
    this.#fields ??= decodeFields(this.encoded);
    return this.#fields;
  }
}

/**
 * The fields of a LogRecord message, as the SDK holds them: the aggregator's decoder reads it
 * wrapped in the smallest request, and its values become SDK values again (an int64 beyond 2^53,
 * a bigint there, was a number here; an unset severity, text or event name is absent).
 */
function decodeFields(encoded: Uint8Array): Fields {
  const scopeLogs = lengthDelimited(0x12, encoded); // ScopeLogs.log_records = 2
  const resourceLogs = lengthDelimited(0x12, scopeLogs); // ResourceLogs.scope_logs = 2
  const request = lengthDelimited(0x0a, resourceLogs); // ExportLogsServiceRequest.resource_logs = 1
  const [decoded] = readExportLogsRequest(request) as [DecodedLogRecord];
  const attributes: Attributes = {};
  for (const key in decoded.attributes) assign(attributes, key, sdkValue(decoded.attributes[key]));
  return {
    hrTime: hrTimeOf(decoded.timeUnixNano),
    hrTimeObserved: hrTimeOf(decoded.observedTimeUnixNano),
    spanContext: decoded.traceId === '' && decoded.spanId === '' ? undefined : { traceId: decoded.traceId, spanId: decoded.spanId, traceFlags: decoded.flags },
    severityText: decoded.severityText === '' ? undefined : decoded.severityText,
    severityNumber: decoded.severityNumber === 0 ? undefined : decoded.severityNumber,
    body: decoded.body === undefined ? undefined : sdkValue(decoded.body),
    eventName: decoded.eventName === '' ? undefined : decoded.eventName,
    attributes,
    droppedAttributesCount: decoded.droppedAttributesCount,
  };
}

function sdkValue(value: DecodedValue): AnyValue {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(sdkValue);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const out: Record<string, AnyValue> = {};
    for (const key in value) assign(out, key, sdkValue(value[key]));
    return out;
  }
  return value;
}

/** `into[key] = value`, "__proto__" a key like any other, as the decoder keeps it (assignAttribute). */
function assign(into: Record<string, AnyValue>, key: string, value: AnyValue): void {
  assignAttribute(into as DecodedAttributes, key, value as DecodedValue);
}

function hrTimeOf(nanos: bigint): HrTime {
  return [Number(nanos / 1_000_000_000n), Number(nanos % 1_000_000_000n)];
}

function lengthDelimited(tag: number, body: Uint8Array): Buffer {
  const head: number[] = [tag];
  let n = body.length;
  while (n > 0x7f) {
    head.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  head.push(n);
  return Buffer.concat([Buffer.from(head), body]);
}
