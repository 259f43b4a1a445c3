// The agent's public surface, exported by name (no barrels).
export { runAgent, startAgent, type AgentHandle, type StartAgentOptions } from './run.ts';
export type { AckFn, RecordSink, Source, SourceRecord, SourceRecordAttributes, WriteResult } from './sources/source.ts';
export { FileSource, type FileSourceOptions } from './sources/file/file-source.ts';
export { Pipeline, type PipelineOptions } from './pipeline/pipeline.ts';
export { AuditBatchProcessor, type AuditBatchProcessorOptions } from './pipeline/audit-batch-processor.ts';
export { OtlpHttpLogExporter, type OtlpHttpExporterOptions } from './sinks/otlp-http-exporter.ts';
export { agentResource, type AgentResourceOptions } from './resource.ts';
