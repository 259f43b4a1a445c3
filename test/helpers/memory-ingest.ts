// The aggregator's index stage as a stand-in for tests of what comes before it (the receiver, the
// agent's exporter): it keeps every record it is handed and reports each as created.
import type { WriterState } from '../../aggregator/index/document-writer.ts';
import type { Ingest, IngestResult } from '../../aggregator/ingest.ts';
import type { DecodedLogRecord } from '../../aggregator/log-record.ts';

export class MemoryIngest implements Ingest {
  ready = true;
  state: WriterState = 'ready';
  records: DecodedLogRecord[] = [];
  retryAfterSeconds(): number {
    return 1;
  }
  ingest(records: DecodedLogRecord[]): Promise<IngestResult> {
    this.records.push(...records);
    return Promise.resolve({ received: records.length, created: records.length, duplicates: 0, rejected: 0 });
  }
}
