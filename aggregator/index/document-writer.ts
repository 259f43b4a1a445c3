// The index stage's interface: where mapped records go. The Elasticsearch writer implements it;
// tests use fakes.
import type { MappedRecord } from '../map/ecs.ts';
import type { FailedItem } from './bulk-result.ts';

export type WriterState = 'starting' | 'ready' | 'unavailable' | 'closed';

export interface WriteResult {
  /** Documents Elasticsearch created. */
  created: number;
  /** Documents it already held (409 on create): success, the record was sent before. */
  duplicates: number;
  /** Documents refused for good (mapping or parsing errors) AND whose dead letter was refused too: not stored anywhere. `index` is the position in the input. */
  rejected: FailedItem[];
  /** Documents refused for good, stored in the dead-letter data stream with the error instead. */
  deadLettered: FailedItem[];
  /** Documents kept in the durable spool because Elasticsearch is unavailable: written later, in order. */
  spooled?: number;
}

export interface DocumentWriter {
  /** True once Elasticsearch is reachable and the index templates are in place. */
  readonly ready: boolean;
  readonly state: WriterState;
  /** Seconds a client should wait before retrying while not ready or overloaded. */
  retryAfterSeconds(): number;
  /**
   * Resolves only once Elasticsearch holds every record that was not rejected. Throws CiAuditError
   * CIA_ERR_ES_UNAVAILABLE (or CIA_ERR_ES_AUTH) when it does not: the caller must not acknowledge.
   */
  write(records: readonly MappedRecord[]): Promise<WriteResult>;
}
