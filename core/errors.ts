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
  // agent -> aggregator shipping
  CIA_ERR_SHIP_REJECTED: 'The aggregator rejected a batch as malformed (4xx other than 408/429); it is not retried.',
  CIA_ERR_SHIP_UNAVAILABLE: 'The aggregator could not be reached or asked to retry later (network error, 408, 429, 5xx).',
  // aggregator receiver
  CIA_ERR_RECEIVER_CONTENT_TYPE: 'The request has a content type other than application/x-protobuf or application/json.',
  CIA_ERR_RECEIVER_ENCODING: 'The request has a content encoding other than gzip or identity, or its gzip data is corrupt.',
  CIA_ERR_RECEIVER_TOO_LARGE: 'The request body, compressed or decompressed, exceeds the configured limit.',
  CIA_ERR_RECEIVER_DECODE: 'The request body is not a valid OTLP ExportLogsServiceRequest.',
  CIA_ERR_RECEIVER_LISTEN: 'The receiver could not listen on the configured address (port in use, address not available, permission).',
  // Elasticsearch
  CIA_ERR_ES_UNAVAILABLE: 'Elasticsearch could not be reached or is not ready.',
  CIA_ERR_ES_AUTH: 'Elasticsearch refused the credentials or their privileges.',
  CIA_ERR_ES_SETUP: 'An index template or data stream could not be created.',
  CIA_ERR_ES_INDEX: 'Elasticsearch rejected documents of a bulk request.',
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
