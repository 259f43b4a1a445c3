// Wires the OpenTelemetry logs SDK between the sources and the exporter: a LoggerProvider with the
// agent's Resource and our AuditBatchProcessor. Sources write into `sink`; each record becomes one
// `logger.emit`, its ack riding along in the emit's Context (see ack.ts).
import type { Logger as OtelLogger } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../core/logger.ts';
import { version } from '../../core/version.ts';
import type { RecordSink, SourceRecord } from '../sources/source.ts';
import { contextWithAck } from './ack.ts';
import { AuditBatchProcessor, type AuditBatchProcessorOptions } from './audit-batch-processor.ts';

/** Instrumentation scope of the records the agent emits. */
export const agentScopeName = 'ci-audit-agent';

export interface PipelineOptions extends Omit<AuditBatchProcessorOptions, 'exporter' | 'logger'> {
  resource: Resource;
  exporter: LogRecordExporter;
  logger: Logger;
}

export class Pipeline {
  readonly processor: AuditBatchProcessor;
  readonly sink: RecordSink;
  #provider: LoggerProvider;
  #otelLogger: OtelLogger;
  #closed = false;
  #shutdown: Promise<void> | undefined;

  constructor(options: PipelineOptions) {
    const { resource, exporter, logger, ...batch } = options;
    this.processor = new AuditBatchProcessor({ ...batch, exporter, logger });
    this.#provider = new LoggerProvider({ resource, processors: [this.processor] });
    this.#otelLogger = this.#provider.getLogger(agentScopeName, version);
    this.sink = { write: (record) => this.#write(record) };
  }

  #write(record: SourceRecord): Promise<void> {
    if (this.#closed) {
      // Stopping: the record is not taken, so it is never acknowledged and its source reads it
      // again after the restart. Nothing is lost.
      return Promise.resolve();
    }
    this.#otelLogger.emit({
      body: record.body,
      attributes: record.attributes,
      ...(record.severityNumber === undefined ? {} : { severityNumber: record.severityNumber }),
      // No parser yet knows when the event happened: the time is when the agent read it.
      timestamp: record.observedAt,
      observedTimestamp: record.observedAt,
      context: contextWithAck(record.ack),
    });
    return this.processor.waitForRoom();
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
