// Wires the OpenTelemetry logs SDK between the sources and the exporter: a LoggerProvider with the
// agent's Resource and our AuditBatchProcessor. Sources write into `sink`; each record becomes one
// `logger.emit`, its ack riding along in the emit's Context (see ack.ts).
import type { Logger as OtelLogger } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter, type LogRecordProcessor, type ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { version } from '../../core/version.ts';
import type { RecordSink, SourceRecord, WriteResult } from '../sources/source.ts';
import type { DiskBuffer, RecoveredDamage } from '../buffer/disk-buffer.ts';
import { AuditBatchProcessor, type AuditBatchProcessorOptions } from './audit-batch-processor.ts';
import { DiskBufferedProcessor } from './disk-buffered-processor.ts';

/** Instrumentation scope of the records the agent emits. */
export const agentScopeName = 'ci-audit-agent';

export interface PipelineOptions extends Omit<AuditBatchProcessorOptions, 'exporter' | 'logger'> {
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

  constructor(options: PipelineOptions) {
    const { resource, exporter, logger, processors = [], diskBuffer, ...batch } = options;
    if (diskBuffer === undefined) {
      this.processor = new AuditBatchProcessor({ ...batch, exporter, logger, currentAck: () => this.#current?.ack });
    } else {
      // The sender asks the buffered processor for the ack of the record it feeds; the closure
      // runs only after both exist.
      const sender: AuditBatchProcessor = new AuditBatchProcessor({ ...batch, exporter, logger, currentAck: () => buffered.feedingAck });
      const buffered: DiskBufferedProcessor = new DiskBufferedProcessor({
        buffer: diskBuffer.buffer,
        sender,
        scope: { resource, instrumentationScope: { name: agentScopeName, version } },
        logger,
        currentAck: () => this.#current?.ack,
        readBatch: batch.maxBatchRecords ?? 512,
      });
      diskBuffer.buffer.onDrop = (dropped) => buffered.reportDrop(dropped);
      buffered.reportDamage(diskBuffer.damage);
      this.processor = buffered;
    }
    const attach: LogRecordProcessor = {
      onEmit: (logRecord: ReadWriteLogRecord) => {
        const record = this.#current;
        if (record === undefined) return;
        const target = logRecord.attributes;
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
    this.#provider = new LoggerProvider({ resource, processors: [attach, ...processors, this.processor] });
    this.#otelLogger = this.#provider.getLogger(agentScopeName, version);
    this.sink = { write: (record) => this.#write(record) };
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
