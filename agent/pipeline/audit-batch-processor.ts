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
import type { EncodedLogRecord } from '../sinks/encoded-log-record.ts';
import { encodeLogRecord } from '../sinks/otlp-protobuf-encode.ts';
import type { AckFn, RangeAcker } from '../sources/source.ts';
import { ackFromContext } from './ack.ts';
import { backoffDelay, retryDelay } from './backoff.ts';
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
   * Fills in how the record being emitted is acknowledged, when the emitter hands that over out of
   * band (the Pipeline does); when it leaves `ack` and `acker` unset, the ack is looked for in the
   * emit's Context (ack.ts).
   */
  takeAck?: (into: RecordAck) => void;
  /** Commits the records' `chainSeq`s, a run at a time, before their sources' acks run (ChainProcessor.commitRange). */
  chain?: RangeAcker | undefined;
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

/**
 * How a record is acknowledged. Numbers where they can be: a batch's records are then acknowledged
 * in a call per run of neighbours, and nothing per record but the numbers waits for the answer.
 */
export interface RecordAck {
  /** Called once the record is acknowledged. */
  ack: AckFn | undefined;
  /** Acknowledges the record as number `ackNumber`, in runs with its neighbours (the file source's offset tracker). */
  acker: RangeAcker | undefined;
  ackNumber: number;
  /** Its seq in the hash chain (0: not chained), committed through the `chain` option. */
  chainSeq: number;
}

/** A record's `ack`, or its `acker` (then acknowledged as `ackNumbers[i]`). */
type AckOrAcker = AckFn | RangeAcker | undefined;

/**
 * Records taken together for export, in columns: no object per record but its EncodedLogRecord
 * waits for the answer (an entry object each, with its arrival time boxed in a number object of
 * its own, lived long enough to be promoted to V8's old generation and die there).
 */
interface Batch {
  /** Encoded on arrival (encodeLogRecord): what waits for the answer is bytes, not the SDK's objects. */
  records: EncodedLogRecord[];
  acks: AckOrAcker[];
  ackNumbers: number[];
  chainSeqs: number[];
  /** Processor seq of the first record (the others follow it). */
  firstSeq: number;
  /** Bytes held for the records (their encoding). */
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
  #takeAck: ((into: RecordAck) => void) | undefined;
  /** Where `takeAck` writes, reused. */
  #taken: RecordAck = { ack: undefined, acker: undefined, ackNumber: 0, chainSeq: 0 };
  #chain: RangeAcker | undefined;
  #backoff: { initialMs: number; maxMs: number };
  #maxRetryAfterMs: number;
  #shutdownTimeoutMs: number;

  /** The records waiting for a batch, in the columns of a Batch (`firstSeq`: the seq of the first). */
  #waiting: Batch = { records: [], acks: [], ackNumbers: [], chainSeqs: [], firstSeq: 0, bytes: 0 };
  /** When each waiting record arrived (ms, monotonic clock): a column of unboxed numbers. */
  #waitingSince: number[] = [];
  /** Batches being exported, in the order they were taken (so by seq). */
  #exporting: Batch[] = [];
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
  #rejected: Batch[] = [];
  #rejectedRecords = 0;
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
    this.#takeAck = options.takeAck;
    this.#chain = options.chain;
    this.#onRejected = options.onRejected;
    this.#backoff = { initialMs: options.initialBackoffMs ?? 250, maxMs: options.maxBackoffMs ?? 30_000 };
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 300_000;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
  }

  /** Records held: waiting for a batch, or in the batches being exported. */
  get queued(): number {
    return this.#waiting.records.length + this.#exportingRecords;
  }

  /** Records of batches the aggregator rejected and that are held in memory (no `onRejected`). */
  get rejected(): number {
    return this.#rejectedRecords;
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
    const taken = this.#taken;
    taken.ack = undefined;
    taken.acker = undefined;
    taken.ackNumber = 0;
    taken.chainSeq = 0;
    this.#takeAck?.(taken);
    if (taken.ack === undefined && taken.acker === undefined) taken.ack = ackFromContext(context ?? otelContext.active());
    const record = encodeLogRecord(logRecord);
    const bytes = record.encodedLength;
    this.#queuedBytes += bytes;
    const waiting = this.#waiting;
    waiting.records.push(record);
    waiting.acks.push(taken.acker ?? taken.ack);
    waiting.ackNumbers.push(taken.ackNumber);
    waiting.chainSeqs.push(taken.chainSeq);
    waiting.bytes += bytes;
    this.#waitingSince.push(performance.now());
    this.#nextSeq++;
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
    if (this.#rejectedRecords > 0) {
      this.#logger.error(
        { code: 'CIA_ERR_SHIP_REJECTED', records: this.#rejectedRecords },
        'stopping with records the aggregator rejected; their sources did not move past them and send them again after the restart',
      );
    }
  }

  /**
   * Acknowledges the batch's records: the chain's commits first (a run of seqs at a time), then
   * their sources (a call per record with an `ack`, per run of neighbouring numbers with an `acker`).
   */
  #ack(batch: Batch): void {
    const n = batch.records.length;
    const chain = this.#chain;
    const seqs = batch.chainSeqs;
    if (chain !== undefined) this.#ackRuns(n, (i) => (seqs[i] === 0 ? undefined : chain), seqs);
    const acks = batch.acks;
    this.#ackRuns(
      n,
      (i) => (typeof acks[i] === 'object' ? acks[i] : undefined),
      batch.ackNumbers,
      (i) => {
        const ack = acks[i];
        if (ack === undefined) return;
        try {
          (ack as AckFn)();
        } catch (err) {
          this.#logger.error({ err: (err as Error).message }, 'record ack failed');
        }
      },
    );
  }

  /**
   * One `ackRange` per run of neighbouring numbers of one acker: record i is number `numbers[i]`
   * of `ackerOf(i)`. A record without one (undefined) neither joins nor ends a run; `other` is
   * called for it in its place.
   */
  #ackRuns(n: number, ackerOf: (i: number) => RangeAcker | undefined, numbers: readonly number[], other?: (i: number) => void): void {
    let acker: RangeAcker | undefined;
    let first = 0;
    let last = 0;
    for (let i = 0; i < n; i++) {
      const next = ackerOf(i);
      if (next === undefined) {
        other?.(i);
        continue;
      }
      const number = numbers[i]!;
      if (next === acker && number === last + 1) {
        last = number;
        continue;
      }
      if (acker !== undefined) this.#ackRange(acker, first, last);
      acker = next;
      first = last = number;
    }
    if (acker !== undefined) this.#ackRange(acker, first, last);
  }

  #ackRange(acker: RangeAcker, first: number, last: number): void {
    try {
      acker.ackRange(first, last);
    } catch (err) {
      this.#logger.error({ err: (err as Error).message }, 'record ack failed');
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
      const waiting = this.#waiting;
      if (waiting.records.length === 0) return;
      const waited = performance.now() - this.#waitingSince[0]!;
      const due =
        waiting.records.length >= this.#maxBatch ||
        waiting.firstSeq <= this.#flushTarget ||
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
      const batch = this.#takeBatch();
      this.#exporting.push(batch);
      this.#exportingRecords += batch.records.length;
      const loop: Promise<void> = this.#exportUntilDone(batch).finally(() => {
        this.#loops.delete(loop);
        this.#pump();
      });
      this.#loops.add(loop);
    }
  }

  /** The first `maxBatchRecords` waiting records, taken out of the waiting columns. */
  #takeBatch(): Batch {
    const waiting = this.#waiting;
    const n = Math.min(waiting.records.length, this.#maxBatch);
    if (n === waiting.records.length) {
      this.#waiting = { records: [], acks: [], ackNumbers: [], chainSeqs: [], firstSeq: waiting.firstSeq + n, bytes: 0 };
      this.#waitingSince = [];
      return waiting;
    }
    const records = waiting.records.splice(0, n);
    let bytes = 0;
    for (const record of records) bytes += record.encodedLength;
    const batch: Batch = {
      records,
      acks: waiting.acks.splice(0, n),
      ackNumbers: waiting.ackNumbers.splice(0, n),
      chainSeqs: waiting.chainSeqs.splice(0, n),
      firstSeq: waiting.firstSeq,
      bytes,
    };
    this.#waitingSince.splice(0, n);
    waiting.firstSeq += n;
    waiting.bytes -= bytes;
    return batch;
  }

  /** Exports one batch, retrying transient failures until it is delivered, rejected or shutdown gives up. */
  async #exportUntilDone(batch: Batch): Promise<void> {
    const records = batch.records;
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
          { code: 'CIA_ERR_SHIP_REJECTED', records: batch.records.length, err: result.error?.message },
          'aggregator rejected a batch; it is held and its sources stop advancing their checkpoints',
        );
        this.#rejected.push(batch);
        this.#rejectedRecords += batch.records.length;
        this.#settle(batch, false);
        return;
      }
      if (this.#aborted) return;
      const reason = result.error?.message ?? 'export failed';
      if (reason !== this.#failing) {
        this.#logger.warn(
          { code: 'CIA_ERR_SHIP_UNAVAILABLE', records: batch.records.length, err: reason },
          this.#failing === undefined ? 'cannot deliver records to the aggregator; retrying until it accepts them' : 'still cannot deliver records; retrying',
        );
        this.#failing = reason;
      }
      await this.#sleep(retryDelay(attempt, retryAfterOf(result.error), this.#maxRetryAfterMs, this.#backoff));
      if (this.#aborted) return;
    }
  }

  /**
   * Hands a rejected batch to `onRejected` until it is set aside (a write error is retried with
   * backoff; later batches wait, since acknowledging past a batch that is neither delivered nor
   * set aside would lose it). Its records are acknowledged once the declaration is committed.
   */
  async #setAsideBatch(batch: Batch, onRejected: RejectedBatchHandler, error: Error | undefined): Promise<void> {
    const records = batch.records;
    for (let attempt = 0; ; attempt++) {
      try {
        await onRejected(records, error, () => this.#ack(batch));
        break;
      } catch (err) {
        if (attempt === 0) {
          this.#logger.error(
            { code: 'CIA_ERR_REJECTED_IO', records: batch.records.length, err: (err as Error).message },
            'cannot set aside a batch the aggregator rejected; it is held and the write retried',
          );
        }
        if (this.#aborted) return;
        await this.#sleep(backoffDelay(attempt, this.#backoff));
        if (this.#aborted) return;
      }
    }
    this.#setAsideBatches += 1;
    this.#setAsideRecords += batch.records.length;
    // The declaration was emitted after the flushes now waiting for this batch were asked for; they
    // wait for it too, so that a graceful stop delivers it (and with it the batch's acks).
    const declared = this.#nextSeq - 1;
    const last = batch.firstSeq + batch.records.length - 1;
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
  #settle(batch: Batch, acknowledged: boolean): void {
    if (acknowledged) this.#ack(batch);
    this.#queuedBytes -= batch.bytes;
    const at = this.#exporting.indexOf(batch);
    if (at !== -1) {
      this.#exporting.splice(at, 1);
      this.#exportingRecords -= batch.records.length;
    }
    // Settled: every record before the oldest one still exported or waiting (or emitted next).
    const oldest = this.#exporting[0]?.firstSeq ?? this.#waiting.firstSeq;
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
