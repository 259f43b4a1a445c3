// A circuit breaker in front of the Elasticsearch writer, with the durable spool behind it.
//   closed  (Elasticsearch ready, spool empty): writes go to Elasticsearch;
//   open    (a write failed with CIA_ERR_ES_UNAVAILABLE, or Elasticsearch is not ready): writes go
//           to the spool and are acknowledged once fsynced there;
//   draining (Elasticsearch ready again, spool not empty): batches are written oldest first, and new
//           writes keep going to the spool behind them, so that records reach Elasticsearch in the
//           order they were accepted; once the spool is empty the breaker closes.
// Only unavailability opens it: records Elasticsearch refuses for good are dead-lettered by the
// inner writer as usual. A full spool makes write() fail with CIA_ERR_SPOOL_FULL (the receiver
// answers 503, the agent keeps the records and retries).
import { setTimeout as sleep } from 'node:timers/promises';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { DocumentWriter, WriteResult, WriterState } from '../index/document-writer.ts';
import type { MappedRecord } from '../map/ecs.ts';
import type { Spool } from './spool.ts';

export interface SpoolingWriterOptions {
  inner: DocumentWriter;
  spool: Spool;
  logger: Logger;
  /** How often to check whether Elasticsearch is back while records are spooled, in ms. Default: 1000. */
  drainIntervalMs?: number;
}

export class SpoolingWriter implements DocumentWriter {
  readonly #inner: DocumentWriter;
  readonly #spool: Spool;
  readonly #logger: Logger;
  readonly #drainIntervalMs: number;
  readonly #abort = new AbortController();
  #drainer: Promise<void> | undefined;
  #closed = false;

  constructor(options: SpoolingWriterOptions) {
    this.#inner = options.inner;
    this.#spool = options.spool;
    this.#logger = options.logger;
    this.#drainIntervalMs = options.drainIntervalMs ?? 1000;
    if (!this.#spool.empty) this.#startDrain();
  }

  /** Records can be taken while Elasticsearch is ready or the spool has room. */
  get ready(): boolean {
    return this.#inner.ready || !this.#spool.full;
  }

  get state(): WriterState {
    return this.#inner.state;
  }

  /** Batches waiting in the spool. */
  get spooled(): number {
    return this.#spool.size;
  }

  retryAfterSeconds(): number {
    return this.#inner.retryAfterSeconds();
  }

  async write(records: readonly MappedRecord[]): Promise<WriteResult> {
    if (records.length === 0 || (this.#inner.ready && this.#spool.empty)) {
      try {
        return await this.#inner.write(records);
      } catch (err) {
        if (!hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE')) throw err;
        this.#logger.warn({ code: err.code, error: err.message, records: records.length }, 'elasticsearch unavailable: spooling records until it is back');
      }
    }
    try {
      await this.#spool.append(records);
    } catch (err) {
      // Full or failing spool: to the sender this is Elasticsearch being unavailable (503, retry later).
      const code = hasErrorCode(err) ? err.code : 'CIA_ERR_SPOOL_IO';
      this.#logger.error({ code, error: (err as Error).message }, 'spool cannot take records; answering 503');
      throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', `Elasticsearch is unavailable and the spool cannot take the records (${code}: ${(err as Error).message}); retry later`, {
        details: { spool_code: code },
      });
    }
    this.#startDrain();
    return { created: 0, duplicates: 0, rejected: [], deadLettered: [], spooled: records.length };
  }

  /** Resolves once the spool is empty (or the writer closed). For tests and shutdown. */
  async drained(): Promise<void> {
    while (!this.#closed && !this.#spool.empty) {
      this.#startDrain();
      await this.#drainer;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.#drainer;
  }

  #startDrain(): void {
    if (this.#drainer !== undefined || this.#closed) return;
    this.#drainer = this.#drain().finally(() => {
      this.#drainer = undefined;
    });
  }

  async #drain(): Promise<void> {
    let drainedBatches = 0;
    while (!this.#closed && !this.#spool.empty) {
      if (!this.#inner.ready) {
        await this.#sleep(this.#drainIntervalMs);
        continue;
      }
      try {
        const batch = await this.#spool.peek();
        if (batch === undefined) break;
        const result = await this.#inner.write(batch.records);
        if (result.rejected.length > 0) {
          // Refused and not dead-lettered either: keep them in the log; the batch is done.
          this.#logger.error({ batch: batch.name, rejected: result.rejected.length, first: result.rejected[0]!.error }, 'spooled records refused by elasticsearch');
        }
        await this.#spool.ack(batch.name);
        drainedBatches++;
      } catch (err) {
        const code = hasErrorCode(err) ? err.code : 'unknown';
        this.#logger.warn({ code, error: (err as Error).message }, 'spool drain paused; retrying');
        await this.#sleep(this.#drainIntervalMs);
      }
    }
    if (drainedBatches > 0) this.#logger.info({ batches: drainedBatches, left: this.#spool.size }, 'spool drained into elasticsearch');
  }

  async #sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
    } catch {
      // closed
    }
  }
}
