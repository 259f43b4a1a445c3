// Real OTLP request bodies for tests: records emitted through the OpenTelemetry logs SDK, captured by
// its in-memory exporter, serialized by @opentelemetry/otlp-transformer (what OTLP exporters send).
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import type { LogRecord } from '@opentelemetry/api';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { agentServiceName, recordAttr, resourceAttr } from '../../../core/wire.ts';

export interface EmitOptions {
  resource?: Record<string, string | number | boolean>;
  scope?: { name: string; version?: string };
  records: Array<LogRecord & { spanContext?: { traceId: string; spanId: string; traceFlags: number } }>;
}

/** Emits `records` through a LoggerProvider and returns what the exporter received. */
export async function emitRecords(options: EmitOptions): Promise<ReadableLogRecord[]> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes(options.resource ?? {}),
    processors: [new SimpleLogRecordProcessor({ exporter })],
  });
  const scope = options.scope ?? { name: 'test-scope', version: '1.2.3' };
  const logger = provider.getLogger(scope.name, scope.version);
  for (const { spanContext, ...record } of options.records) {
    const context = spanContext === undefined ? undefined : trace.setSpanContext(ROOT_CONTEXT, spanContext);
    logger.emit(context === undefined ? record : { ...record, context });
  }
  await provider.forceFlush();
  const finished = [...exporter.getFinishedLogRecords()];
  await provider.shutdown();
  return finished;
}

export function protobufBody(records: ReadableLogRecord[]): Buffer {
  return Buffer.from(ProtobufLogsSerializer.serializeRequest(records)!);
}

export function jsonBody(records: ReadableLogRecord[]): Buffer {
  return Buffer.from(JsonLogsSerializer.serializeRequest(records)!);
}

export function gzip(body: Uint8Array): Buffer {
  return gzipSync(body);
}

/** Resource attributes as the ci-audit agent sets them. */
export function agentResource(agentId: string, host = 'runner-01'): Record<string, string> {
  return {
    [resourceAttr.hostName]: host,
    [resourceAttr.serviceName]: agentServiceName,
    [resourceAttr.serviceVersion]: '0.1.0',
    [resourceAttr.agentId]: agentId,
  };
}

/** Record attributes as the ci-audit agent sets them. */
export function agentAttributes(dataset: string, recordId: string, path: string, offset: number): Record<string, string | number> {
  return {
    [recordAttr.dataset]: dataset,
    [recordAttr.recordId]: recordId,
    [recordAttr.logFilePath]: path,
    [recordAttr.logOffset]: offset,
  };
}
