// The seam between inputs and the pipeline: a Source reads records and writes them into a
// RecordSink; the pipeline calls each record's `ack` once the aggregator has acknowledged the
// batch that carried it. A source moves its durable position (file offset, journald cursor) only
// on `ack`, so whatever was not acknowledged is read again after a restart (at-least-once).
import type { AnyValue, AttributeValue, HrTime, SeverityNumber } from '@opentelemetry/api';

/**
 * Attributes a source sets on a record. Keys come from `recordAttr` in core/wire.ts
 * (dataset, record id, log.file.path, log.offset) plus any the source adds.
 */
export type SourceRecordAttributes = Record<string, AttributeValue>;

/** Called once, after the aggregator acknowledged the batch holding the record. Must not throw. */
export type AckFn = () => void;

/**
 * Acknowledges records by the numbers it handed out, a run at a time: one call per batch and
 * source where a closure per record waited for the aggregator's answer, long enough to be promoted
 * to V8's old generation and die there. Numbers may be acknowledged out of order, and twice. Must not throw.
 */
export interface RangeAcker {
  /** Every record numbered `first` to `last` (both included) was acknowledged. */
  ackRange(first: number, last: number): void;
}

/** One record as a source emits it, before enrichment. */
export interface SourceRecord {
  /** The record's text (for files: one line without its line ending). */
  body: AnyValue;
  attributes: SourceRecordAttributes;
  /** When the source read the record (milliseconds since the epoch). */
  observedAt: number;
  /**
   * When the event happened, if the source knows it (journald's `__REALTIME_TIMESTAMP`):
   * milliseconds since the epoch or [seconds, nanoseconds]. Default: `observedAt`.
   */
  timestamp?: number | HrTime;
  /** Set by parsers that know it; absent for raw lines. */
  severityNumber?: SeverityNumber;
  /** Called once the aggregator acknowledged the record. Never called for a record that was not. */
  ack: AckFn;
  /**
   * Set by sources that acknowledge in runs (the file source): the pipeline then calls
   * `acker.ackRange` for runs of neighbouring numbers instead of `ack`, which must do the same as
   * `acker.ackRange(ackNumber, ackNumber)`.
   */
  acker?: RangeAcker;
  /** The record's number for `acker`. */
  ackNumber?: number;
}

/** `true`: there is room, write on; a promise: wait for it before writing the next record. */
export type WriteResult = true | Promise<void>;

/** Where a source writes its records. */
export interface RecordSink {
  /**
   * Hands one record to the pipeline. Returns `true` when there is still room downstream (the
   * common case: no promise per record), or a promise that resolves once there is room again: that
   * is the backpressure. A source awaits such a promise before reading more, so a slow or
   * unreachable aggregator stops reading instead of filling memory or dropping records.
   * `await sink.write(r)` is correct for both results.
   */
  write(record: SourceRecord): WriteResult;
}

/** An input of the agent. */
export interface Source {
  /** The source's id from the configuration; used in logs and checkpoint file names. */
  readonly id: string;
  /** Loads the source's durable state and starts reading into `sink`. Rejects when it cannot start. */
  start(sink: RecordSink): Promise<void>;
  /** Stops reading: no `sink.write` after it resolves. Acks may still arrive until `close()`. */
  stop(): Promise<void>;
  /**
   * Called after the pipeline flushed: persists the final state (checkpoints) and releases
   * resources. Acks that arrive later are ignored. Safe to call twice.
   */
  close(): Promise<void>;
}
