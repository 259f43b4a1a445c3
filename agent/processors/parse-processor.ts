// LogRecordProcessor that parses each record (parse-record.ts) and writes the result onto it: the
// fields as attributes, the event's own time as the record's timestamp (the observed time stays
// when the agent read it), and the parse status. The body stays the original line: it is
// `event.original` at the aggregator.
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { parseAttr } from '../../core/wire.ts';
import type { LinePieces } from './line-pieces.ts';
import { parseRecordInto, type FieldSink } from './parse-record.ts';
import type { TimeZoneResolver } from './syslog/time.ts';

type ParseAttributes = { [K in (typeof parseAttr)['status' | 'parser']]?: string };

export class ParseProcessor implements LogRecordProcessor {
  #zone: TimeZoneResolver;
  #pieces: LinePieces | undefined;

  /** `pieces`: where to tell the redaction processor which fields are pieces of the line (line-pieces.ts). */
  constructor(options: { zone: TimeZoneResolver; pieces?: LinePieces }) {
    this.#zone = options.zone;
    this.#pieces = options.pieces;
  }

  onEmit(record: ReadWriteLogRecord): void {
    const observed = record.hrTimeObserved;
    const observedMs = observed[0] * 1000 + Math.floor(observed[1] / 1e6);
    // Straight onto the record's attributes, as the pipeline attaches the source's: the parsers set
    // only strings, numbers and string arrays, so the SDK's per-value validation in setAttributes
    // would check nothing. Literal keys, as in writeAuthEvent: they keep the object in fast mode.
    const attributes = record.attributes as FieldSink & ParseAttributes;
    this.#pieces?.clear();
    const result = parseRecordInto(record.body, attributes, observedMs, this.#zone, attributes, this.#pieces);
    attributes['ci_audit.parse.status'] = result.status;
    if (result.parser !== undefined) attributes['ci_audit.parser'] = result.parser;
    if (result.time !== undefined) {
      const seconds = Math.floor(result.time.ms / 1000);
      record.hrTime = [seconds, (result.time.ms - seconds * 1000) * 1e6 + result.time.subMsNanos];
    }
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
