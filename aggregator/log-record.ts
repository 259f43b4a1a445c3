// The record every aggregator stage after the receiver works on: one OTLP log record with its
// resource and scope flattened onto it, in plain JavaScript values.

/**
 * An OTLP AnyValue as a JavaScript value. int64 values are numbers when they are safe integers and
 * bigints otherwise, so that nothing is rounded; bytes stay bytes. `undefined` is an empty AnyValue.
 */
export type AttributeValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | AttributeValue[]
  | { [key: string]: AttributeValue }
  | undefined;

export type Attributes = Record<string, AttributeValue>;

export interface InstrumentationScope {
  name: string;
  version: string;
  attributes: Attributes;
}

export interface DecodedLogRecord {
  /** Resource attributes (host.name, service.name, ci_audit.agent.id, ...). */
  resource: Attributes;
  scope: InstrumentationScope;
  /** Time of the event in nanoseconds since the epoch; 0n when the sender did not set it. */
  timeUnixNano: bigint;
  /** Time the sender first saw the record, in nanoseconds since the epoch; 0n when not set. */
  observedTimeUnixNano: bigint;
  /** OTLP SeverityNumber, 0 (unspecified) to 24. */
  severityNumber: number;
  severityText: string;
  body: AttributeValue;
  attributes: Attributes;
  droppedAttributesCount: number;
  flags: number;
  /** Lower-case hex; empty when not set. */
  traceId: string;
  /** Lower-case hex; empty when not set. */
  spanId: string;
  eventName: string;
}
