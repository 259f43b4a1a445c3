// The aggregator's stages after the receiver: (verify: a later issue) -> map -> index.
import type { Logger } from '../core/logger.ts';
import type { DocumentWriter, WriterState } from './index/document-writer.ts';
import type { Ingest, IngestResult } from './ingest.ts';
import type { DecodedLogRecord } from './log-record.ts';
import { mapToEcs } from './map/ecs.ts';
import type { MappingIssue } from './map/ecs.ts';

export interface PipelineOptions {
  /** Namespace of the data streams. */
  namespace: string;
  writer: DocumentWriter;
  logger: Logger;
  /** Clock for `event.ingested`. Default: the system clock. */
  now?: () => Date;
}

/** Rejected items logged one by one per request; the rest are counted in one line. */
const maxRejectionsLogged = 10;

export class Pipeline implements Ingest {
  readonly #namespace: string;
  readonly #writer: DocumentWriter;
  readonly #logger: Logger;
  readonly #now: () => Date;
  /** Each kind of mapping issue is warned about once, then only counted. */
  readonly #issueCounts = new Map<MappingIssue, number>();

  constructor(options: PipelineOptions) {
    this.#namespace = options.namespace;
    this.#writer = options.writer;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
  }

  get ready(): boolean {
    return this.#writer.ready;
  }

  get state(): WriterState {
    return this.#writer.state;
  }

  retryAfterSeconds(): number {
    return this.#writer.retryAfterSeconds();
  }

  /** How many records had each mapping issue since start. */
  issueCounts(): ReadonlyMap<MappingIssue, number> {
    return this.#issueCounts;
  }

  async ingest(records: DecodedLogRecord[]): Promise<IngestResult> {
    const ingested = this.#now();
    const mapped = records.map((record) => mapToEcs(record, { namespace: this.#namespace, ingested }));
    for (const m of mapped) {
      for (const issue of m.issues) {
        const count = this.#issueCounts.get(issue) ?? 0;
        this.#issueCounts.set(issue, count + 1);
        // record_id_missing is normal for plain OpenTelemetry senders: not worth a warning.
        if (count === 0 && issue !== 'record_id_missing') {
          this.#logger.warn({ issue, data_stream: m.dataStream }, 'record flagged while mapping (warned once per kind; see ci_audit.issues)');
        }
      }
    }
    const written = await this.#writer.write(mapped);
    for (const item of written.rejected.slice(0, maxRejectionsLogged)) {
      const m = mapped[item.index]!;
      this.#logger.error(
        { data_stream: m.dataStream, id: m.id, status: item.status, error: item.error },
        'elasticsearch rejected a record; reported to the sender as partial success',
      );
    }
    for (const item of written.deadLettered.slice(0, maxRejectionsLogged)) {
      const m = mapped[item.index]!;
      this.#logger.warn(
        { data_stream: m.dataStream, id: m.id, status: item.status, error: item.error },
        'elasticsearch refused a record; stored in the dead-letter data stream with the error',
      );
    }
    if (written.rejected.length > maxRejectionsLogged) {
      this.#logger.error({ more: written.rejected.length - maxRejectionsLogged }, 'elasticsearch rejected more records in the same request');
    }
    const result: IngestResult = {
      received: records.length,
      created: written.created,
      duplicates: written.duplicates,
      rejected: written.rejected.length,
    };
    const first = written.rejected[0];
    if (first !== undefined) result.firstError = `HTTP ${first.status} ${first.error}`;
    return result;
  }
}
