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
  /** Set when the line was longer than the source's max_line_bytes and cut: the line's full length in bytes. */
  truncatedFrom: 'ci_audit.record.truncated_from',
  /** Present and true on a fragment of an over-long line that continues in the next record. */
  split: 'ci_audit.record.split',
  /** Present and true on a line emitted without its newline after the partial-line timeout. */
  partial: 'ci_audit.record.partial',
  /** Present and true on the rest of a line whose head was emitted before (split or partial). */
  continued: 'ci_audit.record.continued',
  /** Present and true when NUL bytes were removed from the line. */
  nulBytes: 'ci_audit.record.nul_bytes',
  /**
   * Present and true on a record that reports records missing at the source (e.g. the journal was
   * vacuumed past the saved cursor while the agent was down): an integrity event, not a log line.
   */
  gap: 'ci_audit.record.gap',
  /** Set on a multiline record: how many lines it joins. */
  lineCount: 'ci_audit.record.lines',
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

/**
 * Version of the OpenTelemetry semantic conventions the attribute names follow (the CI/CD and VCS
 * names below), matching the pinned `@opentelemetry/semantic-conventions` package; its schema URL
 * is recorded on the Resource so a reader knows which version the names mean.
 */
export const semconvVersion = '1.45.0';
export const semconvSchemaUrl = `https://opentelemetry.io/schemas/${semconvVersion}`;

/** More Resource attributes, set by the agent's resource detectors (agent/resource.ts). */
export const resourceDetectAttr = {
  hostId: 'host.id',
  hostArch: 'host.arch',
  osDescription: 'os.description',
  osType: 'os.type',
  osName: 'os.name',
  osVersion: 'os.version',
  /** The CI system this runner serves: github_actions, gitlab, jenkins, buildkite, none. */
  runnerType: 'ci_audit.runner.type',
  /** The schema URL of the semantic conventions (also carried as the OTLP schema_url). */
  schemaUrl: 'ci_audit.semconv.schema_url',
  /** Prefix of static labels from config: `labels.<key>` (ECS `labels`). */
  labelPrefix: 'labels.',
} as const;

/**
 * Fields of a journald entry as the journald source puts them on a record's attributes: the
 * journal's own field names under `journald.`, unchanged, so that nothing is lost in renaming.
 * `__REALTIME_TIMESTAMP` is microseconds since the epoch as a decimal string.
 */
export const journaldAttr = {
  message: 'journald.MESSAGE',
  identifier: 'journald.SYSLOG_IDENTIFIER',
  pid: 'journald._PID',
  hostname: 'journald._HOSTNAME',
  realtimeTimestamp: 'journald.__REALTIME_TIMESTAMP',
  uid: 'journald._UID',
  comm: 'journald._COMM',
  unit: 'journald._SYSTEMD_UNIT',
  /** The entry's cursor: where the journald source resumes; the record id is a hash of it. */
  cursor: 'journald.__CURSOR',
} as const;

/**
 * ECS fields the agent's parsers and enrichers set, used directly as OTel attribute keys; the
 * aggregator places each at its ECS path in the document (aggregator/map/ecs-fields.ts).
 */
export const ecsAttr = {
  message: 'message',
  eventKind: 'event.kind',
  eventCategory: 'event.category',
  eventType: 'event.type',
  eventAction: 'event.action',
  eventOutcome: 'event.outcome',
  eventTimezone: 'event.timezone',
  eventReason: 'event.reason',
  userName: 'user.name',
  userId: 'user.id',
  /** A display name (Jenkins' `Started by user <full name>`), where `user.name` is the login. */
  userFullName: 'user.full_name',
  userEffectiveName: 'user.effective.name',
  userEffectiveId: 'user.effective.id',
  userTargetName: 'user.target.name',
  userTargetId: 'user.target.id',
  groupName: 'group.name',
  groupId: 'group.id',
  sourceIp: 'source.ip',
  sourcePort: 'source.port',
  sourceAddress: 'source.address',
  processName: 'process.name',
  processPid: 'process.pid',
  processCommandLine: 'process.command_line',
  processWorkingDirectory: 'process.working_directory',
  processExitCode: 'process.exit_code',
  hostHostname: 'host.hostname',
  relatedUser: 'related.user',
  relatedIp: 'related.ip',
  relatedHash: 'related.hash',
  relatedHosts: 'related.hosts',
  /** Filebeat system/auth names, kept for conformance with its module. */
  sshEvent: 'system.auth.ssh.event',
  sshMethod: 'system.auth.ssh.method',
  sshSignature: 'system.auth.ssh.signature',
  sshDroppedIp: 'system.auth.ssh.dropped_ip',
  sudoTty: 'system.auth.sudo.tty',
  sudoPwd: 'system.auth.sudo.pwd',
  sudoCommand: 'system.auth.sudo.command',
  sudoUser: 'system.auth.sudo.user',
  sudoError: 'system.auth.sudo.error',
  sessionId: 'system.auth.session.id',
  userHome: 'system.auth.useradd.home',
  userShell: 'system.auth.useradd.shell',
} as const;

/** OpenTelemetry CI/CD and VCS semantic conventions (version `semconvVersion`). */
export const cicdAttr = {
  pipelineName: 'cicd.pipeline.name',
  pipelineRunId: 'cicd.pipeline.run.id',
  pipelineRunUrl: 'cicd.pipeline.run.url.full',
  pipelineResult: 'cicd.pipeline.result',
  taskName: 'cicd.pipeline.task.name',
  taskRunId: 'cicd.pipeline.task.run.id',
  taskRunResult: 'cicd.pipeline.task.run.result',
  taskRunUrl: 'cicd.pipeline.task.run.url.full',
  workerId: 'cicd.worker.id',
  workerName: 'cicd.worker.name',
  repositoryUrl: 'vcs.repository.url.full',
  repositoryName: 'vcs.repository.name',
  refHeadName: 'vcs.ref.head.name',
  refHeadRevision: 'vcs.ref.head.revision',
  refHeadType: 'vcs.ref.head.type',
  providerName: 'vcs.provider.name',
} as const;

/** How the agent's parsers dealt with a record. */
export const parseAttr = {
  /** Which parser understood the record (`sshd`, `sudo`, `github_actions`, ...). */
  parser: 'ci_audit.parser',
  /** `parsed` or `unparsed`: an unparsed record is kept whole (body = `event.original`). */
  status: 'ci_audit.parse.status',
  /** Names of the redaction rules that fired on the record. */
  redactedBy: 'ci_audit.redacted.rules',
} as const;

/**
 * Prefix of the hash chain's own attributes (integrity issue, docs/integrity.md). They say where a
 * record stands in its agent's chain and are not part of the canonical record they vouch for.
 */
export const chainAttrPrefix = 'ci_audit.chain.';

/** The chain attributes every chained record carries on the wire and in its document. */
export const chainAttr = {
  /** Position in the agent's chain, from 1 (int). */
  seq: 'ci_audit.chain.seq',
  /** hash_seq = SHA-256(hash_{seq-1} || canonical record), lower-case hex. */
  hash: 'ci_audit.chain.hash',
  /** The hash this record links to (hash_{seq-1}, or the resumed head after an unclean stop), hex. */
  prevHash: 'ci_audit.chain.prev_hash',
} as const;

/**
 * A chained record that declares sequence numbers the aggregator will never see, and why. Part of
 * the canonical record (attested). Reasons: `unclean_stop` (numbers handed out before a crash and
 * never acknowledged; the lines are read again under new numbers; the declaring record links to
 * the hash of `first_seq - 1`), `buffer_dropped` (the disk buffer dropped them, overflow
 * drop_oldest: a real loss), `buffer_damaged` (unreadable in the disk buffer: a real loss),
 * `rejected` (the aggregator refused the batch as malformed; the agent set it aside in
 * `<state_dir>/rejected/`, from where an operator may send it again).
 */
export const chainGapAttr = {
  firstSeq: 'ci_audit.gap.first_seq',
  lastSeq: 'ci_audit.gap.last_seq',
  reason: 'ci_audit.gap.reason',
} as const;

export type ChainGapReason = 'unclean_stop' | 'buffer_dropped' | 'buffer_damaged' | 'rejected';

/**
 * A signed checkpoint travels as an unchained record of the `integrity` dataset with these
 * attributes (core/integrity/checkpoint.ts has the signed statement).
 */
export const checkpointAttr = {
  /** `checkpoint` or `key_rotation`. */
  type: 'ci_audit.checkpoint.type',
  seq: 'ci_audit.checkpoint.seq',
  hash: 'ci_audit.checkpoint.hash',
  /** Nanoseconds since the epoch, decimal string. */
  time: 'ci_audit.checkpoint.time',
  key: 'ci_audit.checkpoint.key',
  /** Ed25519 signature, base64. */
  signature: 'ci_audit.checkpoint.signature',
  nextKey: 'ci_audit.checkpoint.next_key',
  nextPublicKey: 'ci_audit.checkpoint.next_public_key',
} as const;

/** Dataset of checkpoints and of the aggregator's integrity events. */
export const integrityDataset = 'integrity';
