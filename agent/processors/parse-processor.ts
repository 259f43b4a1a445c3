// LogRecordProcessor that parses each record (parse-record.ts) and writes the result onto it: the
// fields as attributes, the event's own time as the record's timestamp (the observed time stays
// when the agent read it), and the parse status. The body stays the original line: it is
// `event.original` at the aggregator.
import type { LogRecordProcessor, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { parseAttr } from '../../core/wire.ts';
import { parseRecord } from './parse-record.ts';
import type { TimeZoneResolver } from './syslog/time.ts';

export class ParseProcessor implements LogRecordProcessor {
  #zone: TimeZoneResolver;

  constructor(options: { zone: TimeZoneResolver }) {
    this.#zone = options.zone;
  }

  onEmit(record: ReadWriteLogRecord): void {
    const observed = record.hrTimeObserved;
    const observedMs = observed[0] * 1000 + Math.floor(observed[1] / 1e6);
    const result = parseRecord(record.body, record.attributes, observedMs, this.#zone);
    // One setAttributes call: the SDK checks each value once, and the fields object is ours to extend.
    const fields = result.fields;
    fields[parseAttr.status] = result.status;
    if (result.parser !== undefined) fields[parseAttr.parser] = result.parser;
    record.setAttributes(fields);
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
