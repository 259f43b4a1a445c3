// The receiver's one dependency: a stage that takes decoded records and resolves once they are
// stored. The pipeline (verify later -> map -> index) implements it; receiver tests use fakes.
import type { WriterState } from './index/document-writer.ts';
import type { DecodedLogRecord } from './log-record.ts';

export interface IngestResult {
  /** Records in the request. */
  received: number;
  /** Records Elasticsearch now holds that it did not before. */
  created: number;
  /** Records it already held (a re-send): acknowledged like created ones. */
  duplicates: number;
  /** Records refused for good: reported to the client as partial success, never dropped silently. */
  rejected: number;
  /** The first rejection's reason, for the client's partial-success message. */
  firstError?: string;
}

export interface Ingest {
  /** True when a request can be taken; otherwise the receiver answers 503 with Retry-After. */
  readonly ready: boolean;
  readonly state: WriterState;
  retryAfterSeconds(): number;
  /** Resolves only once every record that was not rejected is stored; throws CiAuditError otherwise. */
  ingest(records: DecodedLogRecord[]): Promise<IngestResult>;
}
