// The pipeline's last processor when `buffer.type` is `disk`: each record is appended to the disk
// buffer and its source ack runs as soon as it is durable there (so the source checkpoint moves on
// and the file may rotate away); a pump reads the buffer in order and feeds the AuditBatchProcessor,
// which batches, exports and retries as without the buffer, and whose acks now release buffer
// entries instead of source positions. After a crash or stop, what was not acknowledged is still
// in the buffer and is sent again under the same record ids.
import { context as otelContext, type Context } from '@opentelemetry/api';
import type { LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { chainAttr, chainGapAttr, recordAttr, type ChainGapReason } from '../../core/wire.ts';
import type { ChainProcessor } from '../chain/chain-processor.ts';
import type { DiskBuffer, DroppedSegment, RecoveredDamage } from '../buffer/disk-buffer.ts';
import { attributesOf, decodeRecord, encodeRecord, isGapRecord, recordIdOf, type RecordScope } from '../buffer/record-codec.ts';
import type { AckFn, RangeAcker } from '../sources/source.ts';
import { ackFromContext } from './ack.ts';
import type { AuditBatchProcessor, RecordAck } from './audit-batch-processor.ts';

export interface DiskBufferedProcessorOptions {
  buffer: DiskBuffer;
  /** Sends what the buffer holds; created with `takeAck` calling this processor's `takeFeedingAck`. */
  sender: AuditBatchProcessor;
  scope: RecordScope;
  logger: Logger;
  currentAck?: () => AckFn | undefined;
  /** Records read from the buffer at once. */
  readBatch: number;
  /** The hash chain: the buffer's own gap records are chained too. */
  chain?: ChainProcessor | undefined;
  /**
   * How long a stop keeps sending what the buffer holds, in ms (the agent's shutdown timeout), so
   * that the final checkpoint and the last lines leave now rather than after the next start.
   * Default: 5000.
   */
  drainTimeoutMs?: number;
}

/** Dataset of the gap records the buffer itself reports. */
const bufferGapDataset = 'agent';

export class DiskBufferedProcessor implements LogRecordProcessor {
  #o: DiskBufferedProcessorOptions;
  #pump: Promise<void>;
  #stopped = false;
  /** The entry being fed to the sender: its segment's acker and its ordinal there. */
  #feeding: RangeAcker | undefined;
  #feedingOrdinal = 0;
  /** Acknowledges entries of one segment in runs (DiskBuffer.ackRange): the acker of the last segment read. */
  #segmentAcker: { segment: number; acker: RangeAcker } | undefined;
  /** The pump holds entries read from the buffer and not yet fed to the sender. */
  #reading = false;
  #shutdown: Promise<void> | undefined;

  constructor(o: DiskBufferedProcessorOptions) {
    this.#o = o;
    this.#pump = this.#run();
  }

  /**
   * How the record being fed to the sender is acknowledged (its `takeAck`): as its ordinal in its
   * segment, so that a batch's entries are released a run at a time, with no closure per record
   * waiting for the aggregator's answer.
   */
  takeFeedingAck(into: RecordAck): void {
    if (this.#feeding === undefined) return;
    into.acker = this.#feeding;
    into.ackNumber = this.#feedingOrdinal;
  }

  get hasRoom(): boolean {
    return this.#o.buffer.hasRoom;
  }

  waitForRoom(): Promise<void> {
    return this.#o.buffer.waitForRoom();
  }

  /** Records in the buffer not yet acknowledged by the aggregator. */
  get queued(): number {
    return this.#o.buffer.unacknowledged;
  }

  get rejected(): number {
    return this.#o.sender.rejected;
  }

  onEmit(logRecord: ReadWriteLogRecord, context?: Context): void {
    if (this.#stopped) return; // not taken: never acknowledged, read again at the source after the restart
    const ack = this.#o.currentAck?.() ?? ackFromContext(context ?? otelContext.active());
    this.#o.buffer.append(encodeRecord(logRecord), ack);
  }

  /** Reports damage found when the buffer was opened, as gap records sent like any other record. */
  reportDamage(damage: readonly RecoveredDamage[]): void {
    for (const d of damage) {
      this.#o.logger.error(
        { code: 'CIA_ERR_BUFFER_CORRUPT', segment: d.segment, reason: d.reason, offset: d.offset, lostBytes: d.lostBytes },
        'disk buffer segment damaged (torn write or disk damage); its intact entries are sent, the rest is reported as a gap',
      );
      this.#appendGap(
        `buffer gap: ${d.lostBytes} bytes at offset ${d.offset} of disk buffer segment ${d.segment} were unreadable (${describe(d.reason)}); ` +
          // A write cut short never acknowledged its records to their source, which reads them
          // again; a write the machine's crash undid (fsync not "always") may have: those are lost.
          `the records in them are lost unless their source had not yet acknowledged them, in which case it reads them again`,
        `buffer:${d.segment}:${d.offset}:${d.reason}`,
        { reason: 'buffer_damaged' },
      );
    }
  }

  /**
   * `drop_oldest` evicted a segment: its records are reported as one gap record with the count and
   * the id range. Gap records it held are appended again, so that no earlier notice of loss is lost;
   * a segment of nothing but gap records is not dropped (false), so notices never circle.
   */
  reportDrop(dropped: DroppedSegment): boolean {
    const entries = dropped.payloads.map((payload) => ({ payload, attributes: attributesOf(payload) }));
    const records = entries.filter((e) => !isGapRecord(e.attributes));
    if (records.length === 0) return false;
    for (const e of entries) if (isGapRecord(e.attributes)) this.#o.buffer.append(e.payload);
    const first = recordIdOf(records[0]?.attributes) ?? 'unknown';
    const last = recordIdOf(records.at(-1)?.attributes) ?? 'unknown';
    // The chain numbers of the dropped records, so that the aggregator knows the gap is declared.
    let firstSeq: number | undefined;
    let lastSeq: number | undefined;
    for (const { attributes } of records) {
      const seq = attributes?.[chainAttr.seq];
      if (typeof seq !== 'number') continue;
      if (firstSeq === undefined || seq < firstSeq) firstSeq = seq;
      if (lastSeq === undefined || seq > lastSeq) lastSeq = seq;
    }
    this.#o.logger.error(
      { code: 'CIA_ERR_BUFFER_DROPPED', segment: dropped.segment, records: records.length, firstId: first, lastId: last },
      'disk buffer full (overflow drop_oldest): dropped its oldest unsent segment',
    );
    this.#appendGap(
      `buffer gap: the disk buffer was full (overflow drop_oldest) and dropped ${records.length} unsent records, ids ${first} to ${last}`,
      `buffer:drop:${first}:${last}`,
      { reason: 'buffer_dropped', ...(firstSeq === undefined || lastSeq === undefined ? {} : { firstSeq, lastSeq }) },
    );
    return true;
  }

  async forceFlush(): Promise<void> {
    await this.#o.buffer.flushed();
    while ((!this.#o.buffer.caughtUp || this.#reading) && !this.#stopped) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.#o.sender.forceFlush();
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      // Everything taken is made durable first: from then on the buffer owns its delivery.
      await this.#o.buffer.flushed();
      // A graceful stop delivers what the buffer holds (the final checkpoint among it) while the
      // aggregator answers, for at most the drain timeout; what is left is sent after the restart.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.forceFlush(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.#o.drainTimeoutMs ?? 5000);
        }),
      ]);
      clearTimeout(timer);
      this.#stopped = true;
      // The sender tries to deliver what it holds for its shutdown timeout; what it cannot is
      // still in the buffer and is sent after the restart. Its shutdown also wakes the pump should
      // it wait for room, and closing the buffer wakes it should it wait for data.
      this.#o.buffer.wake();
      const senderDone = this.#o.sender.shutdown();
      await this.#pump;
      await senderDone;
      // After the sender's last acks, so that the saved cursor counts them.
      await this.#o.buffer.close();
    })();
    return this.#shutdown;
  }

  async #run(): Promise<void> {
    const { buffer, sender, scope, readBatch } = this.#o;
    while (!this.#stopped) {
      if (!sender.hasRoom) {
        await sender.waitForRoom();
        continue;
      }
      const waiting = buffer.dataAvailable();
      let entries;
      this.#reading = true;
      try {
        entries = await buffer.read(readBatch);
      } catch (err) {
        this.#reading = false;
        this.#o.logger.error({ code: 'CIA_ERR_BUFFER_IO', err: (err as Error).message }, 'cannot read the disk buffer; retrying in 1 s');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      if (this.#stopped) return; // not fed: still in the buffer, sent after the restart
      if (entries.length === 0) {
        this.#reading = false;
        await waiting;
        continue;
      }
      // The entries of a read share its bytes: the records hold them with one view.
      let whole: Uint8Array | undefined;
      for (const entry of entries) {
        let record: ReadableLogRecord;
        try {
          const bytes = entry.payload.buffer;
          if (whole?.buffer !== bytes) whole = new Uint8Array(bytes);
          record = decodeRecord(entry.payload, scope, whole);
        } catch (err) {
          // Its CRC matched, so these are the bytes written: a bug, not damage. Skip it, say so.
          this.#o.logger.error({ code: 'CIA_ERR_BUFFER_CORRUPT', err: (err as Error).message }, 'skipping a disk buffer entry that is not a log record');
          buffer.ack(entry.segment, entry.ordinal);
          continue;
        }
        this.#feeding = this.#ackerOf(entry.segment);
        this.#feedingOrdinal = entry.ordinal;
        try {
          sender.onEmit(record as ReadWriteLogRecord);
        } finally {
          this.#feeding = undefined;
        }
      }
      this.#reading = false;
    }
  }

  #ackerOf(segment: number): RangeAcker {
    if (this.#segmentAcker?.segment !== segment) {
      const buffer = this.#o.buffer;
      this.#segmentAcker = { segment, acker: { ackRange: (first, last) => buffer.ackRange(segment, first, last) } };
    }
    return this.#segmentAcker.acker;
  }

  #appendGap(body: string, id: string, declared: { reason: ChainGapReason; firstSeq?: number; lastSeq?: number }): void {
    const now = Date.now();
    const hr: [number, number] = [Math.floor(now / 1000), (now % 1000) * 1e6];
    const attributes: Record<string, string | number | boolean> = { [recordAttr.dataset]: bufferGapDataset, [recordAttr.recordId]: id, [recordAttr.gap]: true };
    const chain = this.#o.chain;
    if (chain !== undefined) {
      if (declared.firstSeq !== undefined && declared.lastSeq !== undefined) {
        attributes[chainGapAttr.firstSeq] = declared.firstSeq;
        attributes[chainGapAttr.lastSeq] = declared.lastSeq;
      }
      attributes[chainGapAttr.reason] = declared.reason;
    }
    const record: ReadableLogRecord = {
      hrTime: hr,
      hrTimeObserved: hr,
      body,
      attributes,
      droppedAttributesCount: 0,
      resource: this.#o.scope.resource,
      instrumentationScope: this.#o.scope.instrumentationScope,
    };
    // Appended straight into the buffer, past the SDK: chained here, committed once durable.
    let committed: (() => void) | undefined;
    if (chain !== undefined) {
      chain.chain(record);
      committed = chain.wrapAck(undefined);
    }
    this.#o.buffer.append(encodeRecord(record), committed);
  }
}

function describe(reason: RecoveredDamage['reason']): string {
  if (reason === 'torn') return 'torn write: the entry was cut short, as by a crash during the write';
  if (reason === 'crc') return 'checksum mismatch: the bytes changed on disk';
  return 'impossible entry length: the entry header is damaged';
}
