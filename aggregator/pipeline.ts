// The aggregator's stages after the receiver: verify -> map -> index. Integrity events the verify
// stage finds go to the index stage with the request's records, so both are stored before the
// request is acknowledged.
import type { Logger } from '../core/logger.ts';
import type { DocumentWriter, WriterState } from './index/document-writer.ts';
import type { Ingest, IngestResult } from './ingest.ts';
import type { DecodedLogRecord } from './log-record.ts';
import { mapToEcs } from './map/ecs.ts';
import type { MappedRecord, MappingIssue } from './map/ecs.ts';
import { integrityEventRecord } from './verify/events.ts';
import type { IntegrityEvent } from './verify/events.ts';
import { VerifyStage } from './verify/stage.ts';
import type { ChainConflict } from './verify/stage.ts';

export interface PipelineOptions {
  /** Namespace of the data streams. */
  namespace: string;
  writer: DocumentWriter;
  logger: Logger;
  /** Clock for `event.ingested`. Default: the system clock. */
  now?: () => Date;
  /** The verify stage. Default: one that checks hashes and links, without keys, Elasticsearch reads or anchor file. */
  verify?: VerifyStage;
}

/** Rejected items logged one by one per request; the rest are counted in one line. */
const maxRejectionsLogged = 10;

export class Pipeline implements Ingest {
  readonly #namespace: string;
  readonly #writer: DocumentWriter;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #verify: VerifyStage;
  /** Each kind of mapping issue is warned about once, then only counted. */
  readonly #issueCounts = new Map<MappingIssue, number>();

  constructor(options: PipelineOptions) {
    this.#namespace = options.namespace;
    this.#writer = options.writer;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
    this.#verify = options.verify ?? new VerifyStage({ logger: options.logger, gapGraceMs: 30_000 });
    this.#verify.start((events) => this.#writeEvents(events));
  }

  /** The index stage's forks (a seq held with another hash): stored as integrity events before the write resolves. */
  async chainConflicts(conflicts: readonly ChainConflict[]): Promise<void> {
    await this.#writeEvents(conflicts.map((c) => this.#verify.forkEvent(c)));
  }

  /** Stops the verify stage's sweeps. */
  async close(): Promise<void> {
    await this.#verify.close();
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
    const verified = await this.#verify.verify(records);
    const ingested = this.#now();
    const mapped = records.map((record, i) => {
      const verdict = verified.verdicts[i];
      return mapToEcs(record, { namespace: this.#namespace, ingested, chain: verdict?.chain, checkpointVerified: verdict?.checkpointVerified });
    });
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
    let written;
    try {
      // Submitted together, so the records and their events share bulk requests.
      [written] = await Promise.all([this.#writer.write(mapped), this.#writeEvents(verified.events)]);
    } catch (err) {
      // The records are retried by their sender, but a link or gap seen now is not seen again.
      this.#verify.requeue(verified.events);
      throw err;
    }
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

  /** Stores integrity events and logs each (alerts at warn). Throws like DocumentWriter.write. */
  async #writeEvents(events: readonly IntegrityEvent[]): Promise<void> {
    if (events.length === 0) return;
    const at = this.#now();
    const docs: MappedRecord[] = events.map((event) => integrityEventRecord(event, { namespace: this.#namespace, at }));
    const written = await this.#writer.write(docs);
    for (const [i, event] of events.entries()) {
      const fields = { action: event.action, agent: event.agentId, first_seq: event.firstSeq, last_seq: event.lastSeq, doc_id: event.docId, event_id: docs[i]!.id };
      if (event.action === 'chain_gap_declared') this.#logger.info(fields, event.message);
      else this.#logger.warn(fields, event.message);
    }
    for (const item of written.rejected) {
      this.#logger.error({ id: docs[item.index]!.id, status: item.status, error: item.error }, 'elasticsearch refused an integrity event; it is only in this log');
    }
  }
}
