// Wires the OpenTelemetry logs SDK between the sources and the exporter: a LoggerProvider with the
// agent's Resource and our AuditBatchProcessor. Sources write into `sink`; each record becomes one
// `logger.emit`, its ack handed to the batch processor beside it (`#current`; ack.ts carries the
// ack of a record that other code emits in its Context).
import type { Attributes, Logger as OtelLogger } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { version } from '../../core/version.ts';
import type { AckFn, RecordSink, SourceRecord, WriteResult } from '../sources/source.ts';
import type { ChainProcessor } from '../chain/chain-processor.ts';
import type { DiskBuffer, RecoveredDamage } from '../buffer/disk-buffer.ts';
import { AuditBatchProcessor, type AuditBatchProcessorOptions, type RecordAck } from './audit-batch-processor.ts';
import { DiskBufferedProcessor } from './disk-buffered-processor.ts';
import { roomyAttributes } from './roomy-attributes.ts';

/** Instrumentation scope of the records the agent emits. */
export const agentScopeName = 'ci-audit-agent';

export interface PipelineOptions extends Omit<AuditBatchProcessorOptions, 'exporter' | 'logger' | 'takeAck' | 'chain'> {
  resource: Resource;
  exporter: LogRecordExporter;
  logger: Logger;
  /**
   * Processors that run on each record before the batch processor (parse, enrich, redact; see
   * agent/processors/build.ts), in this order. Default: none (records go out as the sources wrote them).
   */
  processors?: LogRecordProcessor[];
  /**
   * The disk buffer (`buffer.type: disk`) and the damage found when it was opened. Absent: records
   * wait in memory and their sources' acks run when the aggregator acknowledged them.
   */
  diskBuffer?: { buffer: DiskBuffer; damage: readonly RecoveredDamage[] } | undefined;
  /**
   * The hash chain (docs/integrity.md): runs after `processors`, right before the batch processor
   * or disk buffer, and learns of each record's commit through its ack. Absent: records are not chained.
   */
  chain?: ChainProcessor | undefined;
}

export class Pipeline {
  readonly processor: AuditBatchProcessor | DiskBufferedProcessor;
  readonly sink: RecordSink;
  #provider: LoggerProvider;
  #otelLogger: OtelLogger;
  #closed = false;
  #shutdown: Promise<void> | undefined;
  /**
   * The record being emitted. The SDK runs the processors synchronously inside `emit`, so the
   * first processor (`#attach`) and the batch processor read its attributes and ack from here:
   * no Context per record to carry the ack, and no attribute validation per record by the SDK
   * (`setAttributes` was the largest cost of the hand-off; sources build their attributes from
   * core/wire.ts keys and primitive values, so there is nothing to validate).
   */
  #current: SourceRecord | undefined;
  /** The ack of a record the agent itself emits (emitAgentRecord). */
  #agentAck: AckFn | undefined;
  #chain: ChainProcessor | undefined;
  #resource: Resource;
  /** Signs a checkpoint (the Checkpointer); called once the chain has `everyRecords` new records. */
  onCheckpointDue: (() => void) | undefined;

  constructor(options: PipelineOptions) {
    const { resource, exporter, logger, processors = [], diskBuffer, chain, ...batch } = options;
    this.#chain = chain;
    this.#resource = resource;
    let damaged: (() => void) | undefined;
    if (diskBuffer === undefined) {
      // The record's own ack (as numbers when its source gives them) and its seq in the chain: the
      // batch processor acknowledges and commits a batch in runs.
      const takeAck = (into: RecordAck): void => {
        const record = this.#current;
        if (record?.acker !== undefined) {
          into.acker = record.acker;
          into.ackNumber = record.ackNumber ?? 0;
        } else {
          into.ack = record?.ack ?? this.#agentAck;
        }
        if (chain !== undefined) into.chainSeq = chain.takeChained();
      };
      const commits = chain === undefined ? undefined : { ackRange: (first: number, last: number) => chain.commitRange(first, last) };
      this.processor = new AuditBatchProcessor({ ...batch, exporter, logger, takeAck, chain: commits });
    } else {
      // The record's own ack, wrapped by the chain so that the chain learns when the record is
      // committed (durable in the buffer: the wait is short, a closure is fine).
      const currentAck = chain === undefined ? () => this.#current?.ack ?? this.#agentAck : () => chain.wrapAck(this.#current?.ack ?? this.#agentAck);
      // The sender asks the buffered processor for the ack of the record it feeds; the closure
      // runs only after both exist.
      const sender: AuditBatchProcessor = new AuditBatchProcessor({
        ...batch,
        exporter,
        logger,
        takeAck: (into) => buffered.takeFeedingAck(into),
      });
      const buffered: DiskBufferedProcessor = new DiskBufferedProcessor({
        buffer: diskBuffer.buffer,
        sender,
        scope: { resource, instrumentationScope: { name: agentScopeName, version } },
        logger,
        currentAck,
        readBatch: batch.maxBatchRecords ?? 512,
        chain,
        drainTimeoutMs: batch.shutdownTimeoutMs,
      });
      diskBuffer.buffer.onDrop = (dropped) => buffered.reportDrop(dropped);
      damaged = () => buffered.reportDamage(diskBuffer.damage);
      this.processor = buffered;
    }
    const attach: LogRecordProcessor = {
      onEmit: (logRecord: ReadWriteLogRecord) => {
        const record = this.#current;
        if (record === undefined) return;
        // The SDK's LogRecordImpl holds its attributes in a plain field, still empty here (the
        // emit passes none): an object with room for what the processors add takes its place.
        const target = roomyAttributes();
        (logRecord as { attributes: Attributes }).attributes = target;
        const source = record.attributes;
        // As the SDK would: an attribute set to undefined is left out.
        for (const key in source) {
          const value = source[key];
          if (value !== undefined) target[key] = value;
        }
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    // The SDK calls processors in order, synchronously, on the same record: the source's
    // attributes are attached, parsers and enrichers mutate it, redaction runs last of ours, then
    // the batch processor takes it.
    const chained = chain === undefined ? [] : [chain];
    this.#provider = new LoggerProvider({ resource, processors: [attach, ...processors, ...chained, this.processor] });
    this.#otelLogger = this.#provider.getLogger(agentScopeName, version);
    this.sink = { write: (record) => this.#write(record) };
    // After an unclean stop the chain's first record must be the one that declares the gap, before
    // anything else is chained (the disk buffer's damage reports included).
    const resume = chain?.resumeRecord();
    if (resume !== undefined) this.emitAgentRecord(resume);
    damaged?.();
  }

  /**
   * Emits a record of the agent's own (checkpoints, the chain's resume record) past the user's
   * processors, so that no parser or redaction rule touches what is signed: chained unless it is a
   * checkpoint, then handed to the batch processor or disk buffer. `ack` runs once it is committed.
   */
  emitAgentRecord(record: { body: string; attributes: Attributes; severityNumber?: number }, ack?: AckFn): void {
    if (this.#closed) return;
    const now = Date.now();
    const hr: [number, number] = [Math.floor(now / 1000), (now % 1000) * 1e6];
    const logRecord = {
      hrTime: hr,
      hrTimeObserved: hr,
      body: record.body,
      ...(record.severityNumber === undefined ? {} : { severityNumber: record.severityNumber }),
      attributes: { ...record.attributes },
      droppedAttributesCount: 0,
      resource: this.#resource,
      instrumentationScope: { name: agentScopeName, version },
    } as unknown as ReadWriteLogRecord;
    this.#agentAck = ack;
    try {
      this.#chain?.onEmit(logRecord);
      this.processor.onEmit(logRecord);
    } finally {
      this.#agentAck = undefined;
    }
  }

  #write(record: SourceRecord): WriteResult {
    if (this.#closed) {
      // Stopping: the record is not taken, so it is never acknowledged and its source reads it
      // again after the restart. Nothing is lost.
      return true;
    }
    this.#current = record;
    try {
      this.#otelLogger.emit({
        body: record.body,
        severityNumber: record.severityNumber,
        // The event's time if the source knows it, else when the agent read it; the parse processor
        // replaces it with the time it parses from the line.
        timestamp: record.timestamp ?? record.observedAt,
        observedTimestamp: record.observedAt,
      });
    } finally {
      this.#current = undefined;
    }
    if (this.#chain?.due === true) {
      this.#chain.due = false;
      this.onCheckpointDue?.();
    }
    // No promise per record while there is room: at hundreds of thousands of lines per second a
    // promise and its await per line cost more than the rest of the hand-off.
    return this.processor.hasRoom ? true : this.processor.waitForRoom();
  }

  /** Exports everything written so far and waits for the aggregator's acknowledgement. */
  flush(): Promise<void> {
    return this.processor.forceFlush();
  }

  /** Flushes (bounded by the processor's shutdownTimeoutMs) and shuts the SDK and exporter down. Safe to call twice. */
  shutdown(): Promise<void> {
    this.#closed = true;
    // The provider shuts its processors down (ours flushes first) and the processor its exporter.
    this.#shutdown ??= this.#provider.shutdown();
    return this.#shutdown;
  }
}
