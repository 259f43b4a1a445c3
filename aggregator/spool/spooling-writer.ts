// A circuit breaker in front of the Elasticsearch writer, with the durable spool behind it.
//   closed  (Elasticsearch ready, spool empty): writes go to Elasticsearch;
//   open    (a write failed with CIA_ERR_ES_UNAVAILABLE, or Elasticsearch is not ready): writes go
//           to the spool and are acknowledged once fsynced there;
//   draining (Elasticsearch ready again, spool not empty): batches are written oldest first, and new
//           writes keep going to the spool behind them, so that records reach Elasticsearch in the
//           order they were accepted; once the spool is empty the breaker closes.
// The drain writes rounds: the oldest batches, up to `drainMaxBytes` of them, in one write (the
// inner writer packs them into as few bulk requests as its limits allow), then deletes them oldest
// first. So it goes at Elasticsearch's pace, not one batch per bulk request and companion delay.
// A round that holds everything spooled is the last: new writes wait for it (in memory, not yet
// acknowledged) rather than queue behind it, then go straight to Elasticsearch; so the spool
// empties and the breaker closes also while traffic continues. A write made from within a round
// (the inner writer storing a fork's integrity event before its write resolves) goes straight to
// Elasticsearch, which has just answered: queued behind the round it would wait for the round that
// waits for it, and spooled it could fail for a full spool, and with it the round, for good.
// Only unavailability opens it: records Elasticsearch refuses for good are dead-lettered by the
// inner writer as usual. A spooled batch with a record whose dead letter was refused too is kept
// as `<seq>.rejected` and each such record logged (id, data stream, error). A full spool makes
// write() fail with CIA_ERR_SPOOL_FULL (the receiver answers 503, the agent keeps the records and
// retries).
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { FailedItem } from '../index/bulk-result.ts';
import type { DocumentWriter, WriteResult, WriterState } from '../index/document-writer.ts';
import type { MappedRecord } from '../map/ecs.ts';
import type { Spool, SpooledBatch } from './spool.ts';

export interface SpoolingWriterOptions {
  inner: DocumentWriter;
  spool: Spool;
  logger: Logger;
  /** How often to check whether Elasticsearch is back while records are spooled, in ms. Default: 1000. */
  drainIntervalMs?: number;
  /** Most bytes of batch files read and written in one drain round (at least one batch). Default: 8 MiB. */
  drainMaxBytes?: number;
}

/** Refused or dead-lettered records of one spooled batch logged one by one; the rest are counted in one line. */
const maxItemsLogged = 10;

export class SpoolingWriter implements DocumentWriter {
  readonly #inner: DocumentWriter;
  readonly #spool: Spool;
  readonly #logger: Logger;
  readonly #drainIntervalMs: number;
  readonly #drainMaxBytes: number;
  readonly #abort = new AbortController();
  #drainer: Promise<void> | undefined;
  /** The drain's round that holds every spooled batch, while it runs: new writes wait for it. */
  #lastRound: Promise<void> | undefined;
  /** Set in the drain's writes, so that a write they cause (a fork's integrity event) goes straight to Elasticsearch. */
  readonly #inRound = new AsyncLocalStorage<true>();
  #closed = false;

  constructor(options: SpoolingWriterOptions) {
    this.#inner = options.inner;
    this.#spool = options.spool;
    this.#logger = options.logger;
    this.#drainIntervalMs = options.drainIntervalMs ?? 1000;
    this.#drainMaxBytes = options.drainMaxBytes ?? 8 * 1024 * 1024;
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
    if (this.#inRound.getStore() !== undefined) return this.#inner.write(records);
    // Queued behind the last round in the spool, these records would keep the breaker open.
    while (records.length > 0 && this.#lastRound !== undefined) await this.#lastRound;
    // Not while an append is under way either: these records would overtake the batch it adds.
    if (records.length === 0 || (this.#inner.ready && this.#spool.empty && this.#spool.appending === 0)) {
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
    let setAside = 0;
    while (!this.#closed && !this.#spool.empty) {
      if (!this.#inner.ready) {
        await this.#sleep(this.#drainIntervalMs);
        continue;
      }
      try {
        const batches = await this.#spool.peekUpTo(this.#drainMaxBytes);
        if (batches.length === 0) break;
        const round = this.#writeRound(batches);
        if (batches.length === this.#spool.size && this.#spool.appending === 0) {
          this.#lastRound = round.then(
            () => undefined,
            () => undefined,
          );
        }
        try {
          const done = await round;
          drainedBatches += done.drained;
          setAside += done.setAside;
        } finally {
          this.#lastRound = undefined;
        }
      } catch (err) {
        const code = hasErrorCode(err) ? err.code : 'unknown';
        this.#logger.warn({ code, error: (err as Error).message }, 'spool drain paused; retrying');
        await this.#sleep(this.#drainIntervalMs);
      }
    }
    if (drainedBatches > 0) this.#logger.info({ batches: drainedBatches, set_aside: setAside, left: this.#spool.size }, 'spool drained into elasticsearch');
  }

  /**
   * Writes the records of `batches` in one write and then, oldest first, deletes each batch, or
   * keeps it as `.rejected` when Elasticsearch refused one of its records and its dead letter (the
   * sender was answered 200 long ago: the records must stay somewhere). A batch is deleted only
   * once every record of it and of every earlier batch is settled.
   */
  async #writeRound(batches: readonly SpooledBatch[]): Promise<{ drained: number; setAside: number }> {
    const result = await this.#inRound.run(true, () => this.#inner.write(batches.flatMap((b) => b.records)));
    const sizes = batches.map((b) => b.records.length);
    const refused = itemsByBatch(sizes, result.rejected);
    const deadLettered = itemsByBatch(sizes, result.deadLettered);
    let setAside = 0;
    for (const [i, batch] of batches.entries()) {
      this.#logItems(batch, deadLettered[i]!, undefined);
      if (refused[i]!.length === 0) {
        await this.#spool.ack(batch.name);
        continue;
      }
      const kept = await this.#spool.setAside(batch.name, 'rejected');
      this.#logItems(batch, refused[i]!, kept);
      setAside++;
    }
    return { drained: batches.length, setAside };
  }

  /** What pipeline.ts logs on the direct path: data stream, id and error, never the document. */
  #logItems(batch: SpooledBatch, items: readonly FailedItem[], kept: string | undefined): void {
    for (const item of items.slice(0, maxItemsLogged)) {
      const r = batch.records[item.index]!;
      const fields = { batch: batch.name, data_stream: r.dataStream, id: r.id, status: item.status, error: item.error };
      if (kept === undefined) this.#logger.warn(fields, 'elasticsearch refused a spooled record; stored in the dead-letter data stream with the error');
      else this.#logger.error({ ...fields, kept }, 'elasticsearch refused a spooled record and its dead letter; its batch is kept as .rejected in the spool folder');
    }
    if (items.length <= maxItemsLogged) return;
    const more = items.length - maxItemsLogged;
    if (kept === undefined) this.#logger.warn({ batch: batch.name, more }, 'elasticsearch refused more records of the same spooled batch; stored as dead letters');
    else this.#logger.error({ batch: batch.name, kept, more }, 'elasticsearch refused more records and dead letters of the same spooled batch; kept with it');
  }

  async #sleep(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
    } catch {
      // closed
    }
  }
}

/**
 * The items of a write of several batches' records (`sizes`: records per batch, in order), split by
 * the batch that holds them, each `index` then a position within its batch. A pure function.
 */
export function itemsByBatch(sizes: readonly number[], items: readonly FailedItem[]): FailedItem[][] {
  const starts: number[] = [];
  let at = 0;
  for (const size of sizes) {
    starts.push(at);
    at += size;
  }
  const out = sizes.map((): FailedItem[] => []);
  for (const item of items) {
    // The last batch that starts at or before the item (an empty batch holds none).
    let lo = 0;
    let hi = sizes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= item.index) lo = mid;
      else hi = mid - 1;
    }
    out[lo]?.push({ ...item, index: item.index - starts[lo]! });
  }
  return out;
}
