// Every error a caller may have to react to carries a stable code from this table.
// Callers branch on `code`, never on message text; docs/errors.md documents each code and a test
// keeps the two in step (see test/unit/errors.test.ts).

export const errorCodes = {
  // configuration
  CIA_ERR_CONFIG_NOT_FOUND: 'The configuration file does not exist or cannot be read.',
  CIA_ERR_CONFIG_PARSE: 'The configuration file is not valid YAML.',
  CIA_ERR_CONFIG_INVALID: 'The configuration does not match the schema (unknown key, wrong type, bad value).',
  // command line
  CIA_ERR_CLI_USAGE: 'A command-line option is missing, unknown or has a bad value.',
  // agent sources
  CIA_ERR_SOURCE_READ: 'A source could not read its input (permissions, vanished file, I/O error).',
  CIA_ERR_SOURCE_CHECKPOINT: 'A source checkpoint file cannot be read or written, is corrupt, or has an unknown version.',
  CIA_ERR_SOURCE_TRUNCATED: 'A followed file was truncated or replaced (or is shorter than its checkpoint); it is read again from the start.',
  CIA_ERR_SOURCE_JOURNAL: 'journalctl could not be started or exited unexpectedly; the journald source restarts it with backoff.',
  CIA_ERR_SOURCE_GAP: 'Records may be missing at the source (the journal was vacuumed past the saved cursor, or a checkpointed file was pruned or deleted while the agent was down); reported as a gap record.',
  CIA_ERR_SOURCE_OPEN_FILES: 'A file source reached max_open_files; further files wait until a followed file is let go.',
  CIA_ERR_SOURCE_NOT_REGULAR: 'A path matching a file source\'s include is not a regular file (FIFO, socket, device); it is skipped, never opened.',
  // CI job hooks
  CIA_ERR_HOOK_CONTEXT: 'The job hook found no CI job in its environment (none of GITHUB_RUN_ID, CI_JOB_ID, BUILDKITE_JOB_ID, BUILD_TAG).',
  CIA_ERR_HOOK_WRITE: 'The job hook could not write its file into the agent\'s job hook folder (missing folder, permissions).',
  CIA_ERR_HOOK_REJECTED: 'The agent refused a job hook file: untrusted owner, malformed, or a job not matching its runner\'s running job.',
  // agent -> aggregator shipping
  CIA_ERR_SHIP_REJECTED: 'The aggregator rejected a batch as malformed (4xx other than 401, 403, 408, 429); it is not retried but set aside under <state_dir>/rejected and declared as a chain gap (reason rejected).',
  CIA_ERR_REJECTED_IO: 'The agent cannot write, read or remove a set-aside batch under <state_dir>/rejected (permissions, disk full); the rejected batch is held, unacknowledged, and the write retried.',
  CIA_ERR_REJECTED_EVICTED: 'The set-aside batches reached output.rejected.max_bytes and the oldest was deleted; its records were already declared as a chain gap when it was set aside.',
  CIA_ERR_SHIP_UNAVAILABLE: 'The aggregator could not be reached or asked to retry later (network error, 408, 429, 5xx).',
  CIA_ERR_BUFFER_IO: 'The agent cannot open, write, fsync or remove its disk buffer under <state_dir>/buffer (permissions, disk full).',
  CIA_ERR_BUFFER_CORRUPT: 'A disk buffer segment holds a torn or damaged entry (crash during a write, disk damage); the rest of it is skipped and reported as a gap record.',
  CIA_ERR_BUFFER_DROPPED: 'The disk buffer was full under overflow drop_oldest and its oldest unsent segment was removed; reported as a gap record with the count and id range.',
  CIA_ERR_AGENT_HTTP_LISTEN: 'The agent\'s HTTP endpoint (http.listen: /healthz, /metrics, /status) could not listen (port in use, address not available).',
  CIA_ERR_AGENT_STATUS: 'ci-audit status could not reach the running agent\'s http.listen endpoint; it reports from the state folder instead.',
  // aggregator receiver
  CIA_ERR_RECEIVER_CONTENT_TYPE: 'The request has a content type other than application/x-protobuf or application/json.',
  CIA_ERR_RECEIVER_ENCODING: 'The request has a content encoding other than gzip, zstd or identity, its gzip or zstd data is corrupt, or its zstd body holds more than 16 frames.',
  CIA_ERR_RECEIVER_TOO_LARGE: 'The request body, compressed or decompressed, exceeds the configured limit, or it holds more log records than limits.max_in_flight_records (OTLP/JSON: more than 1,000,000 objects and arrays).',
  CIA_ERR_RECEIVER_DECODE: 'The request body is not a valid OTLP ExportLogsServiceRequest (OTLP/JSON: also not UTF-8, or a number beyond its field\'s range).',
  CIA_ERR_RECEIVER_OVERLOADED: 'The aggregator has as much work in flight as its limits allow (limits.max_in_flight_*); the request gets 429 with Retry-After.',
  CIA_ERR_RECEIVER_RATE_LIMITED: 'The sender exceeds its rate (limits.rate.*); the request gets 429 with Retry-After.',
  CIA_ERR_RECEIVER_RECORD_LIMIT: 'A record has more attributes, or a larger value, than limits.max_attributes_per_record / max_attribute_value_bytes allow.',
  CIA_ERR_RECEIVER_LISTEN: 'The receiver could not listen on the configured address (port in use, address not available, permission).',
  // agent authentication and transport security
  CIA_ERR_AUTH_MISSING: 'A request to the aggregator carried no credential (no Authorization: Bearer token, no client certificate) while auth is required.',
  CIA_ERR_AUTH_INVALID: 'The credential (token or client certificate) is not known to the aggregator, or the enrollment token is unknown, used up or expired.',
  CIA_ERR_AUTH_REVOKED: 'The agent\'s credential was revoked by an administrator; enroll again with a new enrollment token.',
  CIA_ERR_AUTH_FORBIDDEN: 'An authenticated agent sent records claiming another agent\'s id; the whole request is refused.',
  CIA_ERR_AUTH_ENROLL: 'Enrollment failed: the aggregator refused it (e.g. a public_key that is not an Ed25519 public key), the agent id is taken, or the credential could not be stored.',
  CIA_ERR_AUTH_CREDENTIALS: 'The agent\'s stored credential file is unreadable, malformed or readable by other users.',
  CIA_ERR_AUTH_REGISTRY: 'The aggregator\'s agent registry file cannot be read or written, or is corrupt.',
  CIA_ERR_TLS_CONFIG: 'TLS is misconfigured: a certificate, key or CA file is unreadable or invalid, a pin is malformed, or the receiver would listen beyond loopback without TLS.',
  // integrity: chain, checkpoints, verify
  CIA_ERR_INTEGRITY_CANONICAL: 'A record has no canonical form (a non-finite number), or a stored canonical record is malformed or not canonical.',
  CIA_ERR_INTEGRITY_KEY: 'The agent\'s signing key is missing, unreadable, readable by other users, or not an Ed25519 key; or a public key is malformed.',
  CIA_ERR_INTEGRITY_STATE: 'The agent\'s chain state file (<state_dir>/chain.json) cannot be read or written, or is corrupt.',
  CIA_ERR_INTEGRITY_ANCHOR: 'The checkpoint anchor file cannot be written or read, or holds a malformed line.',
  CIA_ERR_VERIFY_FINDINGS: 'verify found missing, altered, inserted or reordered records, or a bad signature or anchor; each is listed.',
  // Elasticsearch
  CIA_ERR_ES_UNAVAILABLE: 'Elasticsearch could not be reached or is not ready.',
  CIA_ERR_ES_AUTH: 'Elasticsearch refused the credentials or their privileges.',
  CIA_ERR_ES_SETUP: 'An index template or data stream could not be created.',
  CIA_ERR_ES_INDEX: 'Elasticsearch rejected documents of a bulk request.',
  // retention and the aggregator spool
  CIA_ERR_RETENTION_UNSUPPORTED: 'The configured retention mechanism (lifecycle or ilm) is not offered by the cluster; use auto or own.',
  CIA_ERR_RETENTION_SHORTEN: 'Applying the retention config would shorten a compliance-bound dataset; rerun `retention apply --force` if intended.',
  CIA_ERR_RETENTION_UNDETERMINED: 'Elasticsearch answered, but not whether it offers the data stream lifecycle or ILM (5xx, 429; no answer at all is CIA_ERR_ES_UNAVAILABLE); the retention run was skipped (retried at the next interval) or `retention apply` changed nothing.',
  CIA_ERR_RETENTION_PARTIAL: 'The search for the document ranges of a data stream did not cover every shard (a shard failed or was skipped, or it timed out); none of its backing indices was deleted this run, the next run tries again.',
  CIA_ERR_RETENTION_LOCK: 'Another aggregator holds the retention leader lock; this run skipped enforcement.',
  CIA_ERR_RETENTION_ENFORCE: 'Own retention enforcement failed for a backing index (integrity event not written, rollover, block or delete refused); nothing was deleted unrecorded.',
  CIA_ERR_SPOOL_FULL: 'The durable spool reached spool.max_bytes while Elasticsearch is unavailable; the receiver answers 503.',
  CIA_ERR_SPOOL_IO: 'The durable spool could not be written, synced or read (disk full, permissions, a corrupt segment).',
  // search and Kibana
  CIA_ERR_SEARCH_QUERY: 'Elasticsearch refused a search (a query_string syntax error, an unknown field type); the message gives its reason.',
  CIA_ERR_KIBANA_UNAVAILABLE: 'Kibana could not be reached at the --kibana URL (refused, DNS, timeout).',
  CIA_ERR_KIBANA_AUTH: 'Kibana refused the credentials (401/403) for the saved objects import.',
  CIA_ERR_KIBANA_IMPORT: 'Kibana refused the saved objects import or some of its objects (other than conflicts with existing ones, which are left unchanged).',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface CiAuditErrorOptions {
  cause?: unknown;
  /** Machine-readable context (file, line, option, url). Never put secrets here. */
  details?: Record<string, unknown>;
}

export class CiAuditError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: CiAuditErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CiAuditError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** True when `err` carries a ci-audit code (and `code`, if given). Duck-typed, so it holds across package copies. */
export function hasErrorCode(err: unknown, code?: ErrorCode): err is CiAuditError {
  if (typeof err !== 'object' || err === null) return false;
  const actual = (err as { code?: unknown }).code;
  if (typeof actual !== 'string' || !(actual in errorCodes)) return false;
  return code === undefined || actual === code;
}
