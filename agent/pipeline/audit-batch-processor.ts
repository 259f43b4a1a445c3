// Batches log records for export, the way an audit log needs it. Unlike the SDK's
// BatchLogRecordProcessor, it never drops a record: the queue is bounded by backpressure
// (`waitForRoom`, which the sink awaits, so sources stop reading while it is full) instead of by
// dropping, a failed export is retried until it succeeds or the agent stops, and each record's ack
// is called only after the aggregator accepted its batch. A batch the aggregator rejects for good
// (malformed) is handed to `onRejected`, which sets it aside durably and declares its records as a
// chain gap (set-aside.ts); it is acknowledged once that declaration is committed.
//
// Up to `maxInFlight` batches are exported at once: one at a time, a batch's round trip (encoding
// here, verify, map and bulk at the aggregator, indexing in Elasticsearch) is paid in full before
// the next begins, and the processes mostly wait. Batches then complete, and records are
// acknowledged, out of order; everything downstream of an ack counts only contiguous ones (the file
// source's offsets, the disk buffer's acknowledged prefix, the chain's committed head), and the
// aggregator holds a hole open for a grace period. While the aggregator fails, only the failing
// batch is retried: the others wait instead of multiplying the retries.
// A batch is exported when it holds `maxBatchRecords` records, when no batch is being exported,
// when its oldest record has waited `maxDelayMs`, or on flush. The second rule clocks the batches
// by the aggregator's answers, as Nagle's algorithm clocks segments by acks: under light load a
// record leaves at once instead of waiting for companions that are not coming, and under heavy load
// the next batch fills while the previous ones are answered, so batches stay large. Records emitted
// in one go (a chunk of lines, a read of the disk buffer) leave together: an idle pipe sends on the
// next turn of the event loop, not on the first record.
import { context as otelContext, type Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { encodeLogRecord } from '../sinks/otlp-protobuf-encode.ts';
import type { AckFn } from '../sources/source.ts';
import { ackFromContext } from './ack.ts';
import { backoffDelay } from './backoff.ts';
import { isPermanentExportFailure, retryAfterOf } from './export-failure.ts';
import type { RejectedBatchHandler } from './set-aside.ts';

export interface AuditBatchProcessorOptions {
  exporter: LogRecordExporter;
  logger: Logger;
  /** Most records in one export (`output.batch.max_records`). Default: 512. */
  maxBatchRecords?: number;
  /** Most batches exported at once (`output.max_in_flight`). Default: 1. */
  maxInFlight?: number;
  /**
   * Longest a record waits for its batch to fill while other batches are being exported, in ms
   * (`output.batch.max_delay_ms`); with none being exported, a batch leaves at once. Default: 1000.
   */
  maxDelayMs?: number;
  /**
   * Records held (waiting plus being exported) beyond which `waitForRoom` waits. It is a bound on
   * cooperating writers: a record emitted anyway is still kept, never dropped. At least
   * `maxBatchRecords`. Default: (maxInFlight + 3) × maxBatchRecords.
   */
  maxQueueRecords?: number;
  /**
   * Bytes of encoded records held beyond which `waitForRoom` waits, so that a few huge records (the
   * 1 MiB fragments of a 50 MB line) cannot fill memory while the record count is low. A single
   * record is always taken. Default: 8 MiB.
   */
  maxQueueBytes?: number;
  /**
   * The ack of the record being emitted, when the emitter hands it over out of band (the
   * Pipeline does); otherwise it is looked for in the emit's Context (ack.ts).
   */
  currentAck?: () => AckFn | undefined;
  /**
   * Takes a batch the aggregator rejected for good (setAsideRejected). Absent: the batch is held in
   * memory, never acknowledged, so its sources re-read it after a restart.
   */
  onRejected?: RejectedBatchHandler | undefined;
  /** Upper bound of the first retry delay, in ms. Default: 250. */
  initialBackoffMs?: number;
  /** Largest retry delay, in ms. Default: 30000. */
  maxBackoffMs?: number;
  /** Longest wait honoured from a Retry-After header, in ms. Default: 300000. */
  maxRetryAfterMs?: number;
  /**
   * How long `shutdown` keeps trying to deliver what is queued, in ms. What is still undelivered
   * then stays unacknowledged, so its lines are read and sent again after the restart. Default: 5000.
   */
  shutdownTimeoutMs?: number;
}

interface Entry {
  /** Encoded on arrival (encodeLogRecord): what waits for the answer is bytes, not the SDK's objects. */
  record: ReadableLogRecord;
  ack: AckFn | undefined;
  seq: number;
  /** When the record arrived (ms, monotonic clock). */
  at: number;
  /** Bytes held for the record (its encoding). */
  bytes: number;
}

interface FlushWaiter {
  target: number;
  resolve: () => void;
}

export class AuditBatchProcessor implements LogRecordProcessor {
  #exporter: LogRecordExporter;
  #logger: Logger;
  #maxBatch: number;
  #maxInFlight: number;
  #maxDelayMs: number;
  #maxQueue: number;
  #maxQueueBytes: number;
  /** Estimated bytes of the records held (waiting plus exporting). */
  #queuedBytes = 0;
  #currentAck: (() => AckFn | undefined) | undefined;
  #backoff: { initialMs: number; maxMs: number };
  #maxRetryAfterMs: number;
  #shutdownTimeoutMs: number;

  #waiting: Entry[] = [];
  /** Batches being exported, in the order they were taken (so by seq). */
  #exporting: Entry[][] = [];
  #exportingRecords = 0;
  /** The export loops of the batches being exported. */
  #loops = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  /** Sends what is waiting once the records emitted in the current turn are in (the pipe was idle). */
  #idleSend: NodeJS.Immediate | undefined;
  #nextSeq = 0;
  /** Every record with seq <= this was acknowledged or set aside. */
  #settledSeq = -1;
  /** Records with seq <= this are exported without waiting for their batch to fill. */
  #flushTarget = -1;
  #flushWaiters: FlushWaiter[] = [];
  #roomWaiters: (() => void)[] = [];
  #closing = false;
  /** Shutdown gave up: no more attempts. */
  #aborted = false;
  /** Cancels the retry waits (shutdown gave up). */
  #cancelSleeps = new Set<() => void>();
  #shutdown: Promise<void> | undefined;
  #onRejected: RejectedBatchHandler | undefined;
  /** Records the aggregator refused, held when there is no `onRejected`. */
  #rejected: Entry[] = [];
  #setAsideBatches = 0;
  #setAsideRecords = 0;
  /** Reason of the failure being retried, to log each change of state once. */
  #failing: string | undefined;

  constructor(options: AuditBatchProcessorOptions) {
    this.#exporter = options.exporter;
    this.#logger = options.logger;
    this.#maxBatch = options.maxBatchRecords ?? 512;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#maxDelayMs = options.maxDelayMs ?? 1000;
    this.#maxQueue = Math.max(options.maxQueueRecords ?? (this.#maxInFlight + 3) * this.#maxBatch, this.#maxBatch);
    this.#maxQueueBytes = options.maxQueueBytes ?? 8 * 1024 * 1024;
    this.#currentAck = options.currentAck;
    this.#onRejected = options.onRejected;
    this.#backoff = { initialMs: options.initialBackoffMs ?? 250, maxMs: options.maxBackoffMs ?? 30_000 };
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 300_000;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
  }

  /** Records held: waiting for a batch, or in the batches being exported. */
  get queued(): number {
    return this.#waiting.length + this.#exportingRecords;
  }

  /** Records of batches the aggregator rejected and that are held in memory (no `onRejected`). */
  get rejected(): number {
    return this.#rejected.length;
  }

  /** Batches and records the aggregator rejected that were set aside since the start. */
  get setAside(): { batches: number; records: number } {
    return { batches: this.#setAsideBatches, records: this.#setAsideRecords };
  }

  onEmit(logRecord: ReadWriteLogRecord, context?: Context): void {
    if (this.#aborted) {
      // Too late to deliver; the record stays unacknowledged and is read again after a restart.
      return;
    }
    const ack = this.#currentAck?.() ?? ackFromContext(context ?? otelContext.active());
    const record = encodeLogRecord(logRecord);
    const bytes = record.encoded.length;
    this.#queuedBytes += bytes;
    this.#waiting.push({ record, ack, seq: this.#nextSeq++, at: performance.now(), bytes });
    this.#pump();
  }

  /** True while fewer than `maxQueueRecords` records are held (or the processor shuts down). */
  get hasRoom(): boolean {
    return this.#hasRoom();
  }

  /**
   * Resolves when fewer than `maxQueueRecords` records are held, at once if they are already.
   * Also resolves once the processor shuts down, so no writer waits forever.
   */
  waitForRoom(): Promise<void> {
    if (this.#hasRoom()) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Exports everything emitted so far; resolves when all of it is acknowledged (or set aside). */
  forceFlush(): Promise<void> {
    const target = this.#nextSeq - 1;
    if (this.#settledSeq >= target || this.#aborted) return Promise.resolve();
    this.#flushTarget = Math.max(this.#flushTarget, target);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#flushWaiters.push({ target, resolve });
    this.#pump();
    return promise;
  }

  /** Flushes (for at most `shutdownTimeoutMs`), then shuts the exporter down. Safe to call twice. */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    this.#closing = true;
    this.#releaseRoomWaiters();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#shutdownTimeoutMs);
    });
    const gaveUp = await Promise.race([this.forceFlush().then(() => false), timedOut]);
    clearTimeout(timer);
    if (gaveUp) {
      this.#aborted = true;
      const unacknowledged = this.queued;
      for (const cancel of this.#cancelSleeps) cancel();
      await this.#exporter.shutdown();
      await Promise.all(this.#loops);
      clearTimeout(this.#timer);
      clearImmediate(this.#idleSend);
      for (const w of this.#flushWaiters.splice(0)) w.resolve();
      this.#logger.warn(
        { code: 'CIA_ERR_SHIP_UNAVAILABLE', records: unacknowledged },
        'stopping with records the aggregator has not acknowledged; they are read and sent again after the restart',
      );
    } else {
      await this.#exporter.shutdown();
    }
    if (this.#rejected.length > 0) {
      this.#logger.error(
        { code: 'CIA_ERR_SHIP_REJECTED', records: this.#rejected.length },
        'stopping with records the aggregator rejected; their sources did not move past them and send them again after the restart',
      );
    }
  }

  #ack(batch: readonly Entry[]): void {
    for (const entry of batch) {
      if (entry.ack === undefined) continue;
      try {
        entry.ack();
      } catch (err) {
        this.#logger.error({ err: (err as Error).message }, 'record ack failed');
      }
    }
  }

  #hasRoom(): boolean {
    return (this.queued < this.#maxQueue && this.#queuedBytes < this.#maxQueueBytes) || this.#closing;
  }

  #releaseRoomWaiters(): void {
    if (!this.#hasRoom()) return;
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
  }

  /**
   * Starts exporting the batches that are due, while fewer than `maxInFlight` are (one while
   * failing). `idle`: called for the idle send, which may take a partial batch.
   */
  #pump(idle = false): void {
    for (;;) {
      if (this.#aborted) return;
      if (this.#loops.size >= (this.#failing === undefined ? this.#maxInFlight : 1)) return;
      const head = this.#waiting[0];
      if (head === undefined) return;
      const waited = performance.now() - head.at;
      const due =
        this.#waiting.length >= this.#maxBatch ||
        head.seq <= this.#flushTarget ||
        waited >= this.#maxDelayMs ||
        (idle && this.#loops.size === 0);
      if (!due) {
        if (this.#loops.size === 0) {
          this.#idleSend ??= setImmediate(() => {
            this.#idleSend = undefined;
            this.#pump(true);
          });
        }
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, this.#maxDelayMs - waited);
        return;
      }
      clearTimeout(this.#timer);
      this.#timer = undefined;
      const batch = this.#waiting.splice(0, this.#maxBatch);
      this.#exporting.push(batch);
      this.#exportingRecords += batch.length;
      const loop: Promise<void> = this.#exportUntilDone(batch).finally(() => {
        this.#loops.delete(loop);
        this.#pump();
      });
      this.#loops.add(loop);
    }
  }

  /** Exports one batch, retrying transient failures until it is delivered, rejected or shutdown gives up. */
  async #exportUntilDone(batch: Entry[]): Promise<void> {
    const records = batch.map((e) => e.record);
    for (let attempt = 0; ; attempt++) {
      const result = await this.#exportOnce(records);
      if (result.code === ExportResultCode.SUCCESS) {
        if (this.#failing !== undefined) {
          this.#logger.info({ attempts: attempt + 1 }, 'aggregator accepts records again');
          this.#failing = undefined;
        }
        this.#settle(batch, true);
        return;
      }
      if (isPermanentExportFailure(result.error) && this.#onRejected !== undefined) {
        await this.#setAsideBatch(batch, this.#onRejected, result.error);
        return;
      }
      if (isPermanentExportFailure(result.error)) {
        // A permanent rejection: sending the same batch again would fail again. The records are
        // kept and never acknowledged, so their sources' checkpoints do not move past them (later
        // batches are still sent; a restart re-reads from the first rejected line).
        this.#logger.error(
          { code: 'CIA_ERR_SHIP_REJECTED', records: batch.length, err: result.error?.message },
          'aggregator rejected a batch; it is held and its sources stop advancing their checkpoints',
        );
        this.#rejected.push(...batch);
        this.#settle(batch, false);
        return;
      }
      if (this.#aborted) return;
      const reason = result.error?.message ?? 'export failed';
      if (reason !== this.#failing) {
        this.#logger.warn(
          { code: 'CIA_ERR_SHIP_UNAVAILABLE', records: batch.length, err: reason },
          this.#failing === undefined ? 'cannot deliver records to the aggregator; retrying until it accepts them' : 'still cannot deliver records; retrying',
        );
        this.#failing = reason;
      }
      const retryAfter = retryAfterOf(result.error);
      const delay =
        retryAfter === undefined ? backoffDelay(attempt, this.#backoff) : Math.min(retryAfter, this.#maxRetryAfterMs);
      await this.#sleep(delay);
      if (this.#aborted) return;
    }
  }

  /**
   * Hands a rejected batch to `onRejected` until it is set aside (a write error is retried with
   * backoff; later batches wait, since acknowledging past a batch that is neither delivered nor
   * set aside would lose it). Its records are acknowledged once the declaration is committed.
   */
  async #setAsideBatch(batch: Entry[], onRejected: RejectedBatchHandler, error: Error | undefined): Promise<void> {
    const records = batch.map((e) => e.record);
    for (let attempt = 0; ; attempt++) {
      try {
        await onRejected(records, error, () => this.#ack(batch));
        break;
      } catch (err) {
        if (attempt === 0) {
          this.#logger.error(
            { code: 'CIA_ERR_REJECTED_IO', records: batch.length, err: (err as Error).message },
            'cannot set aside a batch the aggregator rejected; it is held and the write retried',
          );
        }
        if (this.#aborted) return;
        await this.#sleep(backoffDelay(attempt, this.#backoff));
        if (this.#aborted) return;
      }
    }
    this.#setAsideBatches += 1;
    this.#setAsideRecords += batch.length;
    // The declaration was emitted after the flushes now waiting for this batch were asked for; they
    // wait for it too, so that a graceful stop delivers it (and with it the batch's acks).
    const declared = this.#nextSeq - 1;
    const last = batch.at(-1)?.seq ?? -1;
    let extended = false;
    for (const w of this.#flushWaiters) {
      if (w.target < last) continue;
      w.target = Math.max(w.target, declared);
      extended = true;
    }
    if (extended) this.#flushTarget = Math.max(this.#flushTarget, declared);
    this.#settle(batch, false);
  }

  #exportOnce(records: ReadableLogRecord[]): Promise<ExportResult> {
    return new Promise<ExportResult>((resolve) => {
      try {
        this.#exporter.export(records, resolve);
      } catch (err) {
        resolve({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      }
    });
  }

  /** Waits `ms`, or less when shutdown gives up. */
  #sleep(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    const cancel = (): void => {
      clearTimeout(timer);
      resolve();
    };
    this.#cancelSleeps.add(cancel);
    return promise.finally(() => {
      this.#cancelSleeps.delete(cancel);
    });
  }

  /** The batch is done: acknowledge it (or not), make room, and resolve the flushes it completes. */
  #settle(batch: Entry[], acknowledged: boolean): void {
    if (acknowledged) this.#ack(batch);
    for (const entry of batch) this.#queuedBytes -= entry.bytes;
    const at = this.#exporting.indexOf(batch);
    if (at !== -1) {
      this.#exporting.splice(at, 1);
      this.#exportingRecords -= batch.length;
    }
    // Settled: every record before the oldest one still exported or waiting.
    const oldest = this.#exporting[0]?.[0]?.seq ?? this.#waiting[0]?.seq ?? this.#nextSeq;
    this.#settledSeq = oldest - 1;
    this.#releaseRoomWaiters();
    const remaining: FlushWaiter[] = [];
    for (const w of this.#flushWaiters) {
      if (w.target <= this.#settledSeq) w.resolve();
      else remaining.push(w);
    }
    this.#flushWaiters = remaining;
  }
}
