// Wires the OpenTelemetry logs SDK between the sources and the exporter: a LoggerProvider with the
// agent's Resource and our AuditBatchProcessor. Sources write into `sink`; each record becomes one
// `logger.emit`, its ack riding along in the emit's Context (see ack.ts).
import type { Logger as OtelLogger } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter, type LogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { version } from '../../core/version.ts';
import type { RecordSink, SourceRecord, WriteResult } from '../sources/source.ts';
import { contextWithAck } from './ack.ts';
import { AuditBatchProcessor, type AuditBatchProcessorOptions } from './audit-batch-processor.ts';

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
}

export class Pipeline {
  readonly processor: AuditBatchProcessor;
  readonly sink: RecordSink;
  #provider: LoggerProvider;
  #otelLogger: OtelLogger;
  #closed = false;
  #shutdown: Promise<void> | undefined;

  constructor(options: PipelineOptions) {
    const { resource, exporter, logger, processors = [], ...batch } = options;
    this.processor = new AuditBatchProcessor({ ...batch, exporter, logger });
    // The SDK calls processors in order, synchronously, on the same record: parsers and enrichers
    // mutate it, redaction runs last of ours, then the batch processor takes it.
    this.#provider = new LoggerProvider({ resource, processors: [...processors, this.processor] });
    this.#otelLogger = this.#provider.getLogger(agentScopeName, version);
    this.sink = { write: (record) => this.#write(record) };
  }

  #write(record: SourceRecord): WriteResult {
    if (this.#closed) {
      // Stopping: the record is not taken, so it is never acknowledged and its source reads it
      // again after the restart. Nothing is lost.
      return true;
    }
    this.#otelLogger.emit({
      body: record.body,
      attributes: record.attributes,
      ...(record.severityNumber === undefined ? {} : { severityNumber: record.severityNumber }),
      // The event's time if the source knows it, else when the agent read it; the parse processor
      // replaces it with the time it parses from the line.
      timestamp: record.timestamp ?? record.observedAt,
      observedTimestamp: record.observedAt,
      context: contextWithAck(record.ack),
    });
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
