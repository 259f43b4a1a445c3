// What the agent puts on the wire and the aggregator reads back: one place for every attribute
// name, so that the two sides cannot drift apart. Names follow OpenTelemetry semantic conventions
// where they have one (host.name, service.*, log.file.*); ci-audit's own live under `ci_audit.`.

/** Resource attributes: who sent the records. */
export const resourceAttr = {
  hostName: 'host.name',
  serviceName: 'service.name',
  serviceVersion: 'service.version',
  /** The agent's id. The aggregator will trust the credential over this (shipping issue). */
  agentId: 'ci_audit.agent.id',
} as const;

/** Log record attributes. */
export const recordAttr = {
  /** Dataset the record belongs to: picks the data stream `logs-ci_audit.<dataset>-<namespace>`. */
  dataset: 'ci_audit.dataset',
  /** Deterministic id of the record at its source; re-sent records carry the same id. */
  recordId: 'ci_audit.record.id',
  /** Absolute path of the file the line was read from. */
  logFilePath: 'log.file.path',
  /** Byte offset of the line's first byte in that file. */
  logOffset: 'log.offset',
  /** Present and true when the line was not valid UTF-8 and invalid bytes were replaced by U+FFFD. */
  invalidUtf8: 'ci_audit.record.invalid_utf8',
} as const;

/** The value of `service.name` the agent reports. */
export const agentServiceName = 'ci-audit-agent';

/** Datasets are lower-case words so that they form valid index names. */
export const datasetPattern = /^[a-z0-9_]{1,64}$/;

/** Dataset used for records that do not name one (e.g. from a plain OpenTelemetry SDK). */
export const defaultDataset = 'generic';

/** Elastic's data stream naming scheme: `logs-<dataset>-<namespace>` with our dataset prefix. */
export function dataStreamName(dataset: string, namespace: string): string {
  return `logs-ci_audit.${dataset}-${namespace}`;
}
