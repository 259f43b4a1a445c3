// Configuration schemas with their defaults: the one place where options and defaults live.
// Unknown keys are rejected (strictObject), so a typo fails at start-up instead of being ignored.
// Each option's comment is its reference documentation (docs/configuration.md follows it).
// A default is checked like a value written in the file (valibot's `optional` runs it through the
// schema): a section's default `{}` thereby gets the defaults of its options.
import { hostname } from 'node:os';
import * as v from 'valibot';
import { compressionCodecs, defaultCompressionCodec, defaultCompressionLevel, maxCompressionLevel } from '../agent/sinks/compression.ts';
import { datasetPattern } from '../core/wire.ts';
import { ConfigSchema, strictObject } from './validation.ts';

/** A non-empty string. */
function text() {
  return v.pipe(v.string(), v.minLength(1));
}

/** A list of at least one `item`. */
function nonEmptyList<S extends v.GenericSchema>(item: S) {
  return v.pipe(v.array(item), v.minLength(1, 'a list of at least one entry'));
}

/** A whole number from `min` to `max`; only safe integers, which a YAML number beyond 2^53 is not exactly. */
function integer(min: number, max?: number) {
  return max === undefined
    ? v.pipe(v.number(), v.safeInteger('a whole number'), v.minValue(min))
    : v.pipe(v.number(), v.safeInteger('a whole number'), v.minValue(min), v.maxValue(max));
}

/** A finite number (YAML's `.inf` and `.nan` are refused). */
function finite() {
  return v.pipe(v.number(), v.finite());
}

/**
 * An `http://` or `https://` URL; surrounding blanks are dropped, as are tabs and line breaks inside
 * (as a browser does). A user name or password in it must be percent-encoded (`%` as `%25`), since
 * it is decoded to authenticate.
 */
function httpUrl() {
  return v.pipe(
    v.string(),
    v.trim(),
    v.check((url) => /^https?:\/\//i.test(url) && URL.canParse(url), 'an http:// or https:// URL'),
    v.check((url) => !URL.canParse(url) || decodableUserInfo(new URL(url)), 'a URL whose user name and password are percent-encoded (write % as %25)'),
    v.transform((url) => url.replace(/[\t\n\r]/g, '')),
  );
}

/** True when the URL's user name and password decode (decodeURIComponent throws on a stray `%`). */
export function decodableUserInfo(url: URL): boolean {
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    return true;
  } catch {
    return false;
  }
}

/**
 * A URL given outside the configuration file (ES_URL, `--url`) held to the rule of the file's URL
 * options: the cleaned URL, or what was expected (never the value, which may hold a password).
 */
export function checkHttpUrl(url: string): { ok: true; url: string } | { ok: false; expected: string } {
  const result = v.safeParse(httpUrl(), url);
  return result.success ? { ok: true, url: result.output } : { ok: false, expected: result.issues[0].message };
}

/** The levels of ci-audit's own log, from the fewest lines to the most (and none). */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

const logSchema = v.optional(
  strictObject({
    /**
     * Minimum level of ci-audit's own log. No default here: the loader fills in LOG_LEVEL from the
     * environment, else `info`, when the file sets none.
     */
    level: v.optional(v.picklist(logLevels)),
    /** `json` or `pretty`; default: pretty on a terminal, JSON otherwise. */
    format: v.optional(v.picklist(['json', 'pretty'])),
  }),
  {},
);

/** Durations such as `400d`, `12h`, `30m`, `45s` (the units of Elasticsearch's `data_retention`). */
const durationPattern = /^[1-9][0-9]{0,6}(d|h|m|s)$/;
const durationHint = 'a number and a unit d, h, m or s, e.g. 400d';

function duration() {
  return v.pipe(v.string(), v.regex(durationPattern, durationHint));
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const idHint = 'letters, digits, ".", "_" or "-", starting with a letter or digit';
const datasetHint = 'lower-case letters, digits and "_"';

const fileSourceSchema = strictObject({
  /** `file`: follow files matched by glob patterns. */
  type: v.literal('file'),
  /** Name of this source, unique in the agent; used in logs and checkpoints. */
  id: v.pipe(v.string(), v.regex(idPattern, idHint)),
  /** Glob patterns of the files to follow (absolute, or relative to the config file's folder). */
  include: nonEmptyList(text()),
  /** Glob patterns of files to leave alone, e.g. compressed rotations. */
  exclude: v.optional(v.array(text()), ['**/*.gz', '**/*.xz', '**/*.zst', '**/*.bz2']),
  /** Dataset of the records: picks the data stream `logs-ci_audit.<dataset>-<namespace>`. */
  dataset: v.pipe(v.string(), v.regex(datasetPattern, datasetHint)),
  /** Where to start reading a newly found file: `beginning` (audit default: nothing is missed) or `end`. */
  start_at: v.optional(v.picklist(['beginning', 'end']), 'beginning'),
  /** Leading bytes hashed into a file's fingerprint, which tells a new file from an old one at a reused inode. */
  fingerprint_bytes: v.optional(integer(16, 64 * 1024), 1024),
  /** Longest line kept, in bytes; longer lines are split or truncated (see long_lines) and flagged. */
  max_line_bytes: v.optional(integer(64, 64 * 1024 * 1024), 1024 * 1024),
  /** Over-long lines: `split` into flagged fragments (nothing lost) or `truncate` to max_line_bytes (flagged with the full length). */
  long_lines: v.optional(v.picklist(['split', 'truncate']), 'split'),
  /** A last line without newline is sent (flagged partial) after this many ms without new bytes. */
  partial_line_timeout_ms: v.optional(integer(1), 5000),
  /** Most files followed at once; more wait, with a warning in the log, until one is let go. */
  max_open_files: v.optional(integer(1), 1024),
  /**
   * A followed file read to its end, every line acknowledged and unchanged for this many ms is
   * closed (its checkpoint kept) so files waiting for max_open_files get a turn; it is opened again
   * when it changes.
   */
  close_inactive_ms: v.optional(integer(10), 300_000),
  /** How often followed files are checked and the globs searched again (besides file events), in ms. */
  poll_interval_ms: v.optional(integer(10), 1000),
  /** Multiline records (stack traces, continuation lines); absent: one record per line. */
  multiline: v.optional(
    strictObject({
      /** A line matching this regular expression starts a record; the lines after it that do not are appended. */
      start_pattern: v.pipe(text(), v.check((p) => validRegExp(p), 'a valid JavaScript regular expression')),
      /** Start a record at lines that do NOT match start_pattern instead (e.g. `^\s` for indented continuation lines). */
      negate: v.optional(v.boolean(), false),
      /** Most lines in one record; a longer one is ended early, flagged split, and continues in the next record. */
      max_lines: v.optional(integer(1), 500),
      /** Most bytes in one record; a larger one is ended early, flagged split, and continues in the next record. */
      max_bytes: v.optional(integer(1, 64 * 1024 * 1024), 1024 * 1024),
      /** A record is sent after this many ms without a further line (checked at least every poll_interval_ms). */
      timeout_ms: v.optional(integer(1), 1000),
    }),
  ),
});

const journaldSourceSchema = strictObject({
  /** `journald`: follow the systemd journal through `journalctl --follow --output=json`. */
  type: v.literal('journald'),
  /** Name of this source, unique in the agent; used in logs and the cursor file. */
  id: v.pipe(v.string(), v.regex(idPattern, idHint)),
  /** Dataset of the records: picks the data stream `logs-ci_audit.<dataset>-<namespace>`. */
  dataset: v.pipe(v.string(), v.regex(datasetPattern, datasetHint)),
  /** Where to start without a saved cursor: `beginning` (the oldest entry in the journal) or `end` (new entries only). */
  start_at: v.optional(v.picklist(['beginning', 'end']), 'beginning'),
  /** Keep only entries of these systemd units (`_SYSTEMD_UNIT`, e.g. `ssh.service`); with `identifiers`, an entry matching either is kept. Empty with `identifiers` empty: every entry. */
  units: v.optional(v.array(text()), []),
  /** Keep only entries with these syslog identifiers (`SYSLOG_IDENTIFIER`: sshd, sudo, su, systemd-logind, useradd, ...). */
  identifiers: v.optional(v.array(text()), []),
  /** Journal folder to read (`journalctl --directory`) instead of the system journal; relative to the config file's folder. */
  directory: v.optional(text()),
  /** The journalctl program. */
  journalctl_path: v.optional(text(), 'journalctl'),
});

/** The agent's record processors, in the order they run; `redact` must be last (nothing may be added after redaction). */
export const processorNames = ['parse', 'job_context', 'user_context', 'static_labels', 'redact'] as const;

const processorsSchema = v.optional(
  strictObject({
    /** Order of the processors between the sources and the exporter; `redact` last. Leaving one out turns it off (except `redact`). */
    order: v.optional(
      v.pipe(
        v.array(v.picklist(processorNames)),
        v.check((order) => new Set(order).size === order.length, 'each processor at most once'),
        v.check((order) => order.at(-1) === 'redact', 'must end with "redact": secrets are removed after everything else ran'),
      ),
      () => [...processorNames],
    ),
    /** Zone of syslog timestamps that carry none (`Feb  3 04:05:06`): `local`, `UTC`, `+02:00` or an IANA name such as `Europe/Berlin`. */
    timezone: v.optional(
      v.pipe(text(), v.check((zone) => validZone(zone), 'an IANA time zone (Europe/Berlin), UTC, local or an offset such as +02:00')),
      'local',
    ),
    /** Static labels added to every record as `labels.<key>`. */
    labels: v.optional(v.record(v.pipe(v.string(), v.regex(/^[a-z0-9_]{1,64}$/, datasetHint)), v.string()), {}),
    /** Account database used by `user_context` to name uids. */
    passwd_file: v.optional(text(), '/etc/passwd'),
    redaction: v.optional(
      strictObject({
        /** Extra rules after the built-in ones: `{ name, pattern, group }`; `group` is the capture group holding the secret (0: the whole match). */
        rules: v.optional(
          v.array(
            strictObject({
              name: v.pipe(v.string(), v.regex(/^[a-z0-9_]{1,64}$/, datasetHint)),
              pattern: v.pipe(text(), v.check((p) => validRegExp(p), 'a valid JavaScript regular expression')),
              group: v.optional(integer(0), 0),
            }),
          ),
          [],
        ),
      }),
      {},
    ),
  }),
  {},
);

function validZone(zone: string): boolean {
  if (zone === 'local' || zone === 'UTC' || /^[+-]\d{2}:?\d{2}$/.test(zone)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function validRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern, 'g');
    return true;
  } catch {
    return false;
  }
}

const jobHooksSchema = strictObject({
  /** Folder the hooks write their files into; relative to the config file's folder. */
  spool_dir: v.optional(text(), '/var/lib/ci-audit/job-hooks'),
  /** Uids whose hook files are trusted (the runner's user, or the user the hook runs as); files of other owners are refused. */
  trusted_uids: nonEmptyList(integer(0)),
  /** The jobs' own log files: each line of a file matching `path` (a glob) carries the context of the job on `runner` (default: the only runner the hooks reported). */
  job_logs: v.optional(v.array(strictObject({ path: text(), runner: v.optional(text()) })), []),
  /** How often the spool folder is read, in milliseconds. */
  poll_interval_ms: v.optional(integer(1), 500),
  /** A started hook may replace a job still running on its runner only after this many seconds (the runner died without its completed hook). */
  max_job_seconds: v.optional(integer(1), 6 * 3600),
});

const agentSchema = strictObject({
  agent: v.optional(
    v.pipe(
      strictObject({
        /** The agent's id, unique among all agents. Default: the host name. */
        id: v.optional(v.pipe(v.string(), v.regex(idPattern))),
        /** Folder for checkpoints and buffers; relative to the config file's folder. */
        state_dir: v.optional(text(), '/var/lib/ci-audit'),
        /** The CI system this runner serves, recorded on the Resource as `ci_audit.runner.type`. */
        runner_type: v.optional(v.picklist(['github_actions', 'gitlab', 'jenkins', 'buildkite', 'none']), 'none'),
      }),
      // The host name is taken as it is, not held to the pattern a written id must match.
      v.transform(({ id, ...rest }) => ({ id: id ?? hostname(), ...rest })),
    ),
    {},
  ),
  /** Job context from the runners' job hooks (`ci-audit hook job-started|job-completed`; docs/runners.md). Absent: off. */
  job_hooks: v.optional(jobHooksSchema),
  /** The inputs of the agent. */
  sources: nonEmptyList(v.variant('type', [fileSourceSchema, journaldSourceSchema])),
  processors: processorsSchema,
  output: v.pipe(
    strictObject({
      /** Base URL of the aggregator's OTLP/HTTP receiver; `/v1/logs` is appended. */
      url: httpUrl(),
      /** Bearer token of this agent, if the aggregator asks for one. Default: the token `ci-audit agent enroll` stored in `<state_dir>/credentials.json`. */
      token: v.optional(text()),
      /** TLS towards an `https` aggregator (docs/security.md). Absent: the system's CAs, no pin, no client certificate. */
      tls: v.optional(
        v.pipe(
          strictObject({
            /** PEM file of the CA(s) that signed the aggregator's certificate, instead of the system's CAs. */
            ca_file: v.optional(text()),
            /** base64 SHA-256 of the aggregator certificate's public key (SubjectPublicKeyInfo), checked after the CA. */
            pin: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9+/]{43}=$/, 'base64 of a SHA-256 digest (44 characters ending in "=")'))),
            /** PEM client certificate for mTLS (its CN is the agent id); needs key_file. */
            cert_file: v.optional(text()),
            /** PEM private key of cert_file. */
            key_file: v.optional(text()),
          }),
          v.check((tls) => (tls.cert_file === undefined) === (tls.key_file === undefined), 'cert_file and key_file go together'),
        ),
      ),
      /** Request timeout in milliseconds. */
      timeout_ms: v.optional(integer(1), 10_000),
      /** Most batches sent at once; the aggregator and Elasticsearch work on several while the agent encodes the next. */
      max_in_flight: v.optional(integer(1, 64), 4),
      /** Compression of request bodies: `gzip` (every OTLP receiver takes it), `zstd` (fewer bytes, fewer instructions to compress; the aggregator and the OpenTelemetry Collector take it) or `none`. */
      compression: v.optional(v.picklist(compressionCodecs), defaultCompressionCodec),
      /** Level of `compression`: gzip 1 (least CPU) to 9 (fewest bytes), zstd 1 to 19; ignored with `none`. */
      compression_level: v.optional(integer(1, maxCompressionLevel.zstd), defaultCompressionLevel),
      batch: v.optional(
        strictObject({
          /** Most records in one request. */
          max_records: v.optional(integer(1, 10_000), 512),
          /** Longest a record waits for its batch to fill while another batch is being sent, in milliseconds (with none being sent, it leaves at once). */
          max_delay_ms: v.optional(integer(1), 1000),
        }),
        {},
      ),
      /** Batches the aggregator rejected as malformed, set aside in `<state_dir>/rejected/` (docs/operations.md). */
      rejected: v.optional(
        strictObject({
          /** Bytes of set-aside batches beyond which the oldest is deleted (its records were already declared as a chain gap). */
          max_bytes: v.optional(integer(1), 100 * 1024 * 1024),
        }),
        {},
      ),
    }),
    v.forward(
      v.check(
        (output) => output.compression !== 'gzip' || output.compression_level <= maxCompressionLevel.gzip,
        `gzip takes levels 1 to ${maxCompressionLevel.gzip} (zstd 1 to ${maxCompressionLevel.zstd})`,
      ),
      ['compression_level'],
    ),
    // With an http:// URL nothing of `tls` would apply: no CA check, no pin, the token and the
    // records in clear text. Refused, not ignored.
    v.forward(
      v.check((output) => output.tls === undefined || /^https:/i.test(output.url), 'set only with an https:// output.url: with http:// the connection has no TLS, so no CA, pin or client certificate would be checked'),
      ['tls'],
    ),
  ),
  /** The agent's own HTTP endpoint: `/healthz`, `/metrics` (Prometheus) and `/status` (docs/install.md). Absent: off. */
  http: v.optional(
    strictObject({
      /** `host:port` to listen on, e.g. `127.0.0.1:8318` (port 0 picks a free one). No authentication: keep it on loopback or a trusted network. */
      listen: v.pipe(v.string(), v.regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'host:port, e.g. 127.0.0.1:8318')),
    }),
  ),
  /** Where records wait between processing and sending (agent/README.md, "Disk buffer"). */
  buffer: v.optional(
    v.pipe(
      strictObject({
        /** `disk`: segment files under `<state_dir>/buffer`, acks to sources once durable there; `memory`: acks once the aggregator acknowledged. */
        type: v.optional(v.picklist(['memory', 'disk']), 'disk'),
        /** Bytes of segment files beyond which `overflow` applies. */
        max_bytes: v.optional(integer(1), 256 * 1024 * 1024),
        /** A segment file is closed and the next started at this size. */
        segment_bytes: v.optional(integer(4096), 8 * 1024 * 1024),
        /** When appended records are fsynced before their sources may move on. */
        fsync: v.optional(v.picklist(['always', 'interval', 'never']), 'always'),
        /** Period of the fsync under `fsync: interval`, in milliseconds. */
        fsync_interval_ms: v.optional(integer(1), 1000),
        /** Full buffer: `block` (sources stop reading) or `drop_oldest` (the oldest unsent segment is dropped and reported as a gap). */
        overflow: v.optional(v.picklist(['block', 'drop_oldest']), 'block'),
      }),
      v.check((b) => b.max_bytes >= 2 * b.segment_bytes, 'max_bytes must be at least twice segment_bytes'),
    ),
    {},
  ),
  /** The hash chain and signed checkpoints (docs/integrity.md). */
  integrity: v.optional(
    strictObject({
      /** A signed checkpoint after this many chained records. */
      checkpoint_every_records: v.optional(integer(1), 1000),
      /** A signed checkpoint at least this often while records arrive, in milliseconds. */
      checkpoint_interval_ms: v.optional(integer(1), 10_000),
      /** Ed25519 private key (PKCS#8 PEM, mode 0600) that signs the checkpoints; relative to the config file's folder. Default: `<state_dir>/signing-key.pem`. */
      signing_key: v.optional(text()),
      /** Sequence numbers reserved durably in `<state_dir>/chain.json` at a time, ahead of use. */
      reserve_block: v.optional(integer(1, 1_000_000), 4096),
    }),
    {},
  ),
  log: logSchema,
});

const aggregatorSchema = strictObject({
  listen: v.optional(
    strictObject({
      /** Address to listen on. Default: loopback only. */
      host: v.optional(text(), '127.0.0.1'),
      /** TCP port of the OTLP/HTTP receiver (4318 is OTLP/HTTP's registered port; 0 picks a free one). */
      port: v.optional(integer(0, 65_535), 4318),
      /** TLS 1.2+ for the receiver (docs/security.md). Required when host is not loopback, unless allow_insecure. */
      tls: v.optional(
        strictObject({
          /** PEM certificate chain of the receiver. */
          cert_file: text(),
          /** PEM private key of cert_file. */
          key_file: text(),
          /** PEM CA(s) whose client certificates are accepted (mTLS; the agent id is the certificate's CN). Absent: no client certificates. */
          client_ca_file: v.optional(text()),
        }),
      ),
      /** Listen beyond loopback without TLS anyway (tokens then travel in clear text; a warning is logged). */
      allow_insecure: v.optional(v.boolean(), false),
    }),
    {},
  ),
  auth: v.optional(
    strictObject({
      /** Who may send: `none`, `token` (Bearer), `mtls` (client certificate) or `token_or_mtls`. Default: `none` on loopback without TLS, else `token`. */
      mode: v.optional(v.picklist(['none', 'token', 'mtls', 'token_or_mtls'])),
      /** JSON file of the enrolled agents and enrollment tokens (hashes only); relative to the config file's folder. */
      registry_file: v.optional(text(), '/var/lib/ci-audit/aggregator/agents.json'),
    }),
    {},
  ),
  limits: v.optional(
    strictObject({
      /** Largest request body accepted, as sent (compressed), in bytes. */
      max_body_bytes: v.optional(integer(1), 4 * 1024 * 1024),
      /** Largest request body after gzip or zstd decompression, in bytes (guards against decompression bombs). */
      max_decompressed_bytes: v.optional(integer(1), 32 * 1024 * 1024),
      /** Time to receive a whole request (headers and body), in milliseconds; slower requests get 408 (slowloris). */
      request_timeout_ms: v.optional(integer(1), 30_000),
      /** Requests being received or waiting for Elasticsearch at once; beyond it 429 with Retry-After. */
      max_in_flight_requests: v.optional(integer(1), 64),
      /** Decoded records waiting for Elasticsearch at once; beyond it 429 with Retry-After. Also the most one request may hold: 413 beyond, found while decoding. */
      max_in_flight_records: v.optional(integer(1), 100_000),
      /** Decoded body bytes held by requests in flight; beyond it 429 with Retry-After. */
      max_in_flight_bytes: v.optional(integer(1), 256 * 1024 * 1024),
      /** Attributes of one record (resource, scope, record and nested lists together); more: 400. */
      max_attributes_per_record: v.optional(integer(1), 1000),
      /** Bytes of one string or bytes value (the body included); larger: 400. */
      max_attribute_value_bytes: v.optional(integer(1), 1024 * 1024),
      /** Per sender (authenticated agent id, or remote address when auth is off); 0 turns a limit off. Beyond it 429 with Retry-After. */
      rate: v.optional(
        strictObject({
          requests_per_second: v.optional(v.pipe(finite(), v.minValue(0)), 200),
          records_per_second: v.optional(v.pipe(finite(), v.minValue(0)), 100_000),
          /** Bucket size, in seconds of rate: how long a sender may burst above it. */
          burst_seconds: v.optional(v.pipe(finite(), v.gtValue(0)), 2),
        }),
        {},
      ),
    }),
    {},
  ),
  elasticsearch: v.optional(
    strictObject({
      /** Elasticsearch URL. The environment variable ES_URL, when set, takes precedence. */
      url: v.optional(httpUrl(), 'http://127.0.0.1:9200'),
      /** Basic-auth user; credentials may also be given in the URL. */
      username: v.optional(text()),
      password: v.optional(text()),
      /** API key (base64 `id:key`), preferred over a password. ES_API_KEY takes precedence. */
      api_key: v.optional(text()),
      /** Namespace part of the data stream names `logs-ci_audit.<dataset>-<namespace>`. */
      namespace: v.optional(v.pipe(v.string(), v.regex(/^[a-z0-9_]{1,100}$/)), 'default'),
      /** Per-request timeout in milliseconds. */
      request_timeout_ms: v.optional(integer(1), 30_000),
      /** `auto`: install the templates at start (needs manage_index_templates); `skip`: `ci-audit setup` ran, only check that Elasticsearch answers (least privilege). */
      setup: v.optional(v.picklist(['auto', 'skip']), 'auto'),
      bulk: v.optional(
        strictObject({
          /** Most documents in one bulk request. */
          max_items: v.optional(integer(1, 100_000), 5000),
          /** Largest bulk request body in bytes (Elasticsearch takes up to 100 MB). */
          max_bytes: v.optional(integer(1, 100 * 1024 * 1024), 8 * 1024 * 1024),
          /** Most bulk requests in flight at once. */
          concurrency: v.optional(integer(1, 64), 2),
          /** Longest a record waits for records of other requests to share its bulk request, in milliseconds (0: none). */
          max_delay_ms: v.optional(integer(0, 60_000), 20),
          /** Attempts for items Elasticsearch may accept later (429, 5xx) before the write fails. */
          max_attempts: v.optional(integer(1, 20), 3),
          /** Wait before the second attempt in milliseconds, doubled for each further one. */
          retry_delay_ms: v.optional(integer(1), 200),
        }),
        {},
      ),
    }),
    {},
  ),
  retention: v.optional(
    strictObject({
      /** How retention is enforced: `auto` (data stream lifecycle, else ILM, else ci-audit's own), or one of `lifecycle`, `ilm`, `own`. */
      mechanism: v.optional(v.picklist(['auto', 'lifecycle', 'ilm', 'own']), 'auto'),
      /** Retention of datasets not listed in `datasets`, e.g. `90d`. */
      default_max_age: v.optional(duration(), '90d'),
      /** Retention per dataset: `{ max_age: 400d, compliance: true }`. Compliance-bound ones can only be shortened with `retention apply --force`. */
      datasets: v.optional(
        v.record(v.pipe(v.string(), v.regex(datasetPattern)), strictObject({ max_age: duration(), compliance: v.optional(v.boolean(), false) })),
        () => ({
          auth: { max_age: '400d', compliance: true },
          ci: { max_age: '90d', compliance: false },
          integrity: { max_age: '3650d', compliance: true },
          deadletter: { max_age: '400d', compliance: false },
        }),
      ),
      /** Run ci-audit's own enforcement in the aggregator (when it is the mechanism), every `interval`. */
      enforce: v.optional(v.boolean(), true),
      /** How often the aggregator enforces retention (own mechanism), e.g. `1d`, `1h`. */
      interval: v.optional(duration(), '1h'),
      /** Own mechanism: roll a data stream over when its write index is older than this, e.g. `1d`. */
      rollover_max_age: v.optional(duration(), '1d'),
      /** Credentials of the scheduled enforcement (role ci_audit_retention), instead of `elasticsearch`'s; same URL. */
      elasticsearch: v.optional(
        strictObject({
          username: v.optional(text()),
          password: v.optional(text()),
          api_key: v.optional(text()),
        }),
      ),
    }),
    {},
  ),
  spool: v.optional(
    strictObject({
      /** Folder of the durable spool used while Elasticsearch is unavailable; unset: no spool, the receiver answers 503 instead. */
      dir: v.optional(text()),
      /** Largest spool size in bytes; beyond it the receiver answers 503. */
      max_bytes: v.optional(integer(1), 1024 * 1024 * 1024),
    }),
    {},
  ),
  /** Checks of the agents' hash chains and signed checkpoints on ingest (docs/integrity.md). */
  integrity: v.optional(
    strictObject({
      /** Append-only file (JSON lines, fsynced before the request is acknowledged) of every verified checkpoint: an anchor outside Elasticsearch for `ci-audit verify`. Relative to the config file's folder. Unset: no anchor file. */
      anchor_file: v.optional(text()),
      /** How long a hole in an agent's chain may stay open (records arriving out of order) before it is reported as a `chain_gap` integrity event, in milliseconds. */
      gap_grace_ms: v.optional(integer(1), 30_000),
    }),
    {},
  ),
  log: logSchema,
});

export const agentConfigSchema = new ConfigSchema(agentSchema);
export const aggregatorConfigSchema = new ConfigSchema(aggregatorSchema);

export type AgentConfig = v.InferOutput<typeof agentSchema>;
export type AggregatorConfig = v.InferOutput<typeof aggregatorSchema>;
export type FileSourceConfig = v.InferOutput<typeof fileSourceSchema>;
export type JournaldSourceConfig = v.InferOutput<typeof journaldSourceSchema>;
export type ProcessorsConfig = v.InferOutput<typeof processorsSchema>;
