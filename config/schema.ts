// Configuration schemas with their defaults: the one place where options and defaults live.
// Unknown keys are rejected (strictObject), so a typo fails at start-up instead of being ignored.
// Each option's comment is its reference documentation (docs/configuration.md follows it).
import { hostname } from 'node:os';
import { z } from 'zod';
import { datasetPattern } from '../core/wire.ts';

const logSchema = z
  .strictObject({
    /** Minimum level of ci-audit's own log. */
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `json` or `pretty`; default: pretty on a terminal, JSON otherwise. */
    format: z.enum(['json', 'pretty']).optional(),
  })
  .prefault({});

/** Durations such as `400d`, `12h`, `30m`, `45s` (the units of Elasticsearch's `data_retention`). */
const durationPattern = /^[1-9][0-9]{0,6}(d|h|m|s)$/;
const durationHint = 'a number and a unit d, h, m or s, e.g. 400d';

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const fileSourceSchema = z.strictObject({
  /** `file`: follow files matched by glob patterns. */
  type: z.literal('file'),
  /** Name of this source, unique in the agent; used in logs and checkpoints. */
  id: z.string().regex(idPattern, 'letters, digits, ".", "_" or "-", starting with a letter or digit'),
  /** Glob patterns of the files to follow (absolute, or relative to the config file's folder). */
  include: z.array(z.string().min(1)).min(1),
  /** Glob patterns of files to leave alone, e.g. compressed rotations. */
  exclude: z.array(z.string().min(1)).default(['**/*.gz', '**/*.xz', '**/*.zst', '**/*.bz2']),
  /** Dataset of the records: picks the data stream `logs-ci_audit.<dataset>-<namespace>`. */
  dataset: z.string().regex(datasetPattern, 'lower-case letters, digits and "_"'),
  /** Where to start reading a newly found file: `beginning` (audit default: nothing is missed) or `end`. */
  start_at: z.enum(['beginning', 'end']).default('beginning'),
  /** Leading bytes hashed into a file's fingerprint, which tells a new file from an old one at a reused inode. */
  fingerprint_bytes: z.int().min(16).max(64 * 1024).default(1024),
  /** Longest line kept, in bytes; longer lines are split or truncated (see long_lines) and flagged. */
  max_line_bytes: z.int().min(64).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Over-long lines: `split` into flagged fragments (nothing lost) or `truncate` to max_line_bytes (flagged with the full length). */
  long_lines: z.enum(['split', 'truncate']).default('split'),
  /** A last line without newline is sent (flagged partial) after this many ms without new bytes. */
  partial_line_timeout_ms: z.int().positive().default(5000),
  /** Most files followed at once; more wait, with a warning in the log, until one is let go. */
  max_open_files: z.int().positive().default(1024),
  /**
   * A followed file read to its end, every line acknowledged and unchanged for this many ms is
   * closed (its checkpoint kept) so files waiting for max_open_files get a turn; it is opened again
   * when it changes.
   */
  close_inactive_ms: z.int().min(10).default(300_000),
  /** How often followed files are checked and the globs searched again (besides file events), in ms. */
  poll_interval_ms: z.int().min(10).default(1000),
  /** Multiline records (stack traces, continuation lines); absent: one record per line. */
  multiline: z
    .strictObject({
      /** A line matching this regular expression starts a record; the lines after it that do not are appended. */
      start_pattern: z.string().min(1).refine((p) => validRegExp(p), 'a valid JavaScript regular expression'),
      /** Start a record at lines that do NOT match start_pattern instead (e.g. `^\s` for indented continuation lines). */
      negate: z.boolean().default(false),
      /** Most lines in one record; a longer one is ended early, flagged split, and continues in the next record. */
      max_lines: z.int().positive().default(500),
      /** Most bytes in one record; a larger one is ended early, flagged split, and continues in the next record. */
      max_bytes: z.int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
      /** A record is sent after this many ms without a further line (checked at least every poll_interval_ms). */
      timeout_ms: z.int().positive().default(1000),
    })
    .optional(),
});

const journaldSourceSchema = z.strictObject({
  /** `journald`: follow the systemd journal through `journalctl --follow --output=json`. */
  type: z.literal('journald'),
  /** Name of this source, unique in the agent; used in logs and the cursor file. */
  id: z.string().regex(idPattern, 'letters, digits, ".", "_" or "-", starting with a letter or digit'),
  /** Dataset of the records: picks the data stream `logs-ci_audit.<dataset>-<namespace>`. */
  dataset: z.string().regex(datasetPattern, 'lower-case letters, digits and "_"'),
  /** Where to start without a saved cursor: `beginning` (the oldest entry in the journal) or `end` (new entries only). */
  start_at: z.enum(['beginning', 'end']).default('beginning'),
  /** Keep only entries of these systemd units (`_SYSTEMD_UNIT`, e.g. `ssh.service`); with `identifiers`, an entry matching either is kept. Empty with `identifiers` empty: every entry. */
  units: z.array(z.string().min(1)).default([]),
  /** Keep only entries with these syslog identifiers (`SYSLOG_IDENTIFIER`: sshd, sudo, su, systemd-logind, useradd, ...). */
  identifiers: z.array(z.string().min(1)).default([]),
  /** Journal folder to read (`journalctl --directory`) instead of the system journal; relative to the config file's folder. */
  directory: z.string().min(1).optional(),
  /** The journalctl program. */
  journalctl_path: z.string().min(1).default('journalctl'),
});

/** The agent's record processors, in the order they run; `redact` must be last (nothing may be added after redaction). */
export const processorNames = ['parse', 'job_context', 'user_context', 'static_labels', 'redact'] as const;

const processorsSchema = z
  .strictObject({
    /** Order of the processors between the sources and the exporter; `redact` last. Leaving one out turns it off (except `redact`). */
    order: z
      .array(z.enum(processorNames))
      .default([...processorNames])
      .refine((order) => new Set(order).size === order.length, 'each processor at most once')
      .refine((order) => order.at(-1) === 'redact', 'must end with "redact": secrets are removed after everything else ran'),
    /** Zone of syslog timestamps that carry none (`Feb  3 04:05:06`): `local`, `UTC`, `+02:00` or an IANA name such as `Europe/Berlin`. */
    timezone: z
      .string()
      .min(1)
      .default('local')
      .refine((zone) => validZone(zone), 'an IANA time zone (Europe/Berlin), UTC, local or an offset such as +02:00'),
    /** Static labels added to every record as `labels.<key>`. */
    labels: z.record(z.string().regex(/^[a-z0-9_]{1,64}$/, 'lower-case letters, digits and "_"'), z.string()).default({}),
    /** Account database used by `user_context` to name uids. */
    passwd_file: z.string().min(1).default('/etc/passwd'),
    redaction: z
      .strictObject({
        /** Extra rules after the built-in ones: `{ name, pattern, group }`; `group` is the capture group holding the secret (0: the whole match). */
        rules: z
          .array(
            z.strictObject({
              name: z.string().regex(/^[a-z0-9_]{1,64}$/, 'lower-case letters, digits and "_"'),
              pattern: z.string().min(1).refine((p) => validRegExp(p), 'a valid JavaScript regular expression'),
              group: z.int().min(0).default(0),
            }),
          )
          .default([]),
      })
      .prefault({}),
  })
  .prefault({});

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

const jobHooksSchema = z.strictObject({
  /** Folder the hooks write their files into; relative to the config file's folder. */
  spool_dir: z.string().min(1).default('/var/lib/ci-audit/job-hooks'),
  /** Uids whose hook files are trusted (the runner's user, or the user the hook runs as); files of other owners are refused. */
  trusted_uids: z.array(z.int().min(0)).min(1),
  /** The jobs' own log files: each line of a file matching `path` (a glob) carries the context of the job on `runner` (default: the only runner the hooks reported). */
  job_logs: z.array(z.strictObject({ path: z.string().min(1), runner: z.string().min(1).optional() })).default([]),
  /** How often the spool folder is read, in milliseconds. */
  poll_interval_ms: z.int().positive().default(500),
  /** A started hook may replace a job still running on its runner only after this many seconds (the runner died without its completed hook). */
  max_job_seconds: z.int().positive().default(6 * 3600),
});

export const agentConfigSchema = z.strictObject({
  agent: z
    .strictObject({
      /** The agent's id, unique among all agents. Default: the host name. */
      id: z.string().regex(idPattern).default(() => hostname()),
      /** Folder for checkpoints and buffers; relative to the config file's folder. */
      state_dir: z.string().min(1).default('/var/lib/ci-audit'),
      /** The CI system this runner serves, recorded on the Resource as `ci_audit.runner.type`. */
      runner_type: z.enum(['github_actions', 'gitlab', 'jenkins', 'buildkite', 'none']).default('none'),
    })
    .prefault({}),
  /** Job context from the runners' job hooks (`ci-audit hook job-started|job-completed`; docs/runners.md). Absent: off. */
  job_hooks: jobHooksSchema.optional(),
  /** The inputs of the agent. */
  sources: z.array(z.discriminatedUnion('type', [fileSourceSchema, journaldSourceSchema])).min(1),
  processors: processorsSchema,
  output: z.strictObject({
    /** Base URL of the aggregator's OTLP/HTTP receiver; `/v1/logs` is appended. */
    url: z.url({ protocol: /^https?$/ }),
    /** Bearer token of this agent, if the aggregator asks for one. Default: the token `ci-audit agent enroll` stored in `<state_dir>/credentials.json`. */
    token: z.string().min(1).optional(),
    /** TLS towards an `https` aggregator (docs/security.md). Absent: the system's CAs, no pin, no client certificate. */
    tls: z
      .strictObject({
        /** PEM file of the CA(s) that signed the aggregator's certificate, instead of the system's CAs. */
        ca_file: z.string().min(1).optional(),
        /** base64 SHA-256 of the aggregator certificate's public key (SubjectPublicKeyInfo), checked after the CA. */
        pin: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'base64 of a SHA-256 digest (44 characters ending in "=")').optional(),
        /** PEM client certificate for mTLS (its CN is the agent id); needs key_file. */
        cert_file: z.string().min(1).optional(),
        /** PEM private key of cert_file. */
        key_file: z.string().min(1).optional(),
      })
      .refine((tls) => (tls.cert_file === undefined) === (tls.key_file === undefined), 'cert_file and key_file go together')
      .optional(),
    /** Request timeout in milliseconds. */
    timeout_ms: z.int().positive().default(10_000),
    /** Most batches sent at once; the aggregator and Elasticsearch work on several while the agent encodes the next. */
    max_in_flight: z.int().positive().max(64).default(4),
    /** gzip level of request bodies: 1 (least CPU) to 9 (fewest bytes). */
    compression_level: z.int().min(1).max(9).default(1),
    batch: z
      .strictObject({
        /** Most records in one request. */
        max_records: z.int().positive().max(10_000).default(512),
        /** Longest a record waits for its batch to fill, in milliseconds. */
        max_delay_ms: z.int().positive().default(1000),
      })
      .prefault({}),
    /** Batches the aggregator rejected as malformed, set aside in `<state_dir>/rejected/` (docs/operations.md). */
    rejected: z
      .strictObject({
        /** Bytes of set-aside batches beyond which the oldest is deleted (its records were already declared as a chain gap). */
        max_bytes: z.int().positive().default(100 * 1024 * 1024),
      })
      .prefault({}),
  }),
  /** The agent's own HTTP endpoint: `/healthz`, `/metrics` (Prometheus) and `/status` (docs/install.md). Absent: off. */
  http: z
    .strictObject({
      /** `host:port` to listen on, e.g. `127.0.0.1:8318` (port 0 picks a free one). No authentication: keep it on loopback or a trusted network. */
      listen: z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'host:port, e.g. 127.0.0.1:8318'),
    })
    .optional(),
  /** Where records wait between processing and sending (agent/README.md, "Disk buffer"). */
  buffer: z
    .strictObject({
      /** `disk`: segment files under `<state_dir>/buffer`, acks to sources once durable there; `memory`: acks once the aggregator acknowledged. */
      type: z.enum(['memory', 'disk']).default('disk'),
      /** Bytes of segment files beyond which `overflow` applies. */
      max_bytes: z.int().positive().default(256 * 1024 * 1024),
      /** A segment file is closed and the next started at this size. */
      segment_bytes: z.int().min(4096).default(8 * 1024 * 1024),
      /** When appended records are fsynced before their sources may move on. */
      fsync: z.enum(['always', 'interval', 'never']).default('always'),
      /** Period of the fsync under `fsync: interval`, in milliseconds. */
      fsync_interval_ms: z.int().positive().default(1000),
      /** Full buffer: `block` (sources stop reading) or `drop_oldest` (the oldest unsent segment is dropped and reported as a gap). */
      overflow: z.enum(['block', 'drop_oldest']).default('block'),
    })
    .refine((b) => b.max_bytes >= 2 * b.segment_bytes, 'max_bytes must be at least twice segment_bytes')
    .prefault({}),
  /** The hash chain and signed checkpoints (docs/integrity.md). */
  integrity: z
    .strictObject({
      /** A signed checkpoint after this many chained records. */
      checkpoint_every_records: z.int().positive().default(1000),
      /** A signed checkpoint at least this often while records arrive, in milliseconds. */
      checkpoint_interval_ms: z.int().positive().default(10_000),
      /** Ed25519 private key (PKCS#8 PEM, mode 0600) that signs the checkpoints; relative to the config file's folder. Default: `<state_dir>/signing-key.pem`. */
      signing_key: z.string().min(1).optional(),
      /** Sequence numbers reserved durably in `<state_dir>/chain.json` at a time, ahead of use. */
      reserve_block: z.int().positive().max(1_000_000).default(4096),
    })
    .prefault({}),
  log: logSchema,
});

export const aggregatorConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      /** Address to listen on. Default: loopback only. */
      host: z.string().min(1).default('127.0.0.1'),
      /** TCP port of the OTLP/HTTP receiver (4318 is OTLP/HTTP's registered port; 0 picks a free one). */
      port: z.int().min(0).max(65_535).default(4318),
      /** TLS 1.2+ for the receiver (docs/security.md). Required when host is not loopback, unless allow_insecure. */
      tls: z
        .strictObject({
          /** PEM certificate chain of the receiver. */
          cert_file: z.string().min(1),
          /** PEM private key of cert_file. */
          key_file: z.string().min(1),
          /** PEM CA(s) whose client certificates are accepted (mTLS; the agent id is the certificate's CN). Absent: no client certificates. */
          client_ca_file: z.string().min(1).optional(),
        })
        .optional(),
      /** Listen beyond loopback without TLS anyway (tokens then travel in clear text; a warning is logged). */
      allow_insecure: z.boolean().default(false),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Who may send: `none`, `token` (Bearer), `mtls` (client certificate) or `token_or_mtls`. Default: `none` on loopback without TLS, else `token`. */
      mode: z.enum(['none', 'token', 'mtls', 'token_or_mtls']).optional(),
      /** JSON file of the enrolled agents and enrollment tokens (hashes only); relative to the config file's folder. */
      registry_file: z.string().min(1).default('/var/lib/ci-audit/aggregator/agents.json'),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest request body accepted, as sent (compressed), in bytes. */
      max_body_bytes: z.int().positive().default(4 * 1024 * 1024),
      /** Largest request body after gzip decompression, in bytes (guards against gzip bombs). */
      max_decompressed_bytes: z.int().positive().default(32 * 1024 * 1024),
      /** Time to receive a whole request (headers and body), in milliseconds; slower requests get 408 (slowloris). */
      request_timeout_ms: z.int().positive().default(30_000),
      /** Requests being received or waiting for Elasticsearch at once; beyond it 429 with Retry-After. */
      max_in_flight_requests: z.int().positive().default(64),
      /** Decoded records waiting for Elasticsearch at once; beyond it 429 with Retry-After. */
      max_in_flight_records: z.int().positive().default(100_000),
      /** Decoded body bytes held by requests in flight; beyond it 429 with Retry-After. */
      max_in_flight_bytes: z.int().positive().default(256 * 1024 * 1024),
      /** Attributes of one record (resource, scope, record and nested lists together); more: 400. */
      max_attributes_per_record: z.int().positive().default(1000),
      /** Bytes of one string or bytes value (the body included); larger: 400. */
      max_attribute_value_bytes: z.int().positive().default(1024 * 1024),
      /** Per sender (authenticated agent id, or remote address when auth is off); 0 turns a limit off. Beyond it 429 with Retry-After. */
      rate: z
        .strictObject({
          requests_per_second: z.number().nonnegative().default(200),
          records_per_second: z.number().nonnegative().default(100_000),
          /** Bucket size, in seconds of rate: how long a sender may burst above it. */
          burst_seconds: z.number().positive().default(2),
        })
        .prefault({}),
    })
    .prefault({}),
  elasticsearch: z
    .strictObject({
      /** Elasticsearch URL. The environment variable ES_URL, when set, takes precedence. */
      url: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:9200'),
      /** Basic-auth user; credentials may also be given in the URL. */
      username: z.string().min(1).optional(),
      password: z.string().min(1).optional(),
      /** API key (base64 `id:key`), preferred over a password. ES_API_KEY takes precedence. */
      api_key: z.string().min(1).optional(),
      /** Namespace part of the data stream names `logs-ci_audit.<dataset>-<namespace>`. */
      namespace: z.string().regex(/^[a-z0-9_]{1,100}$/).default('default'),
      /** Per-request timeout in milliseconds. */
      request_timeout_ms: z.int().positive().default(30_000),
      /** `auto`: install the templates at start (needs manage_index_templates); `skip`: `ci-audit setup` ran, only check that Elasticsearch answers (least privilege). */
      setup: z.enum(['auto', 'skip']).default('auto'),
      bulk: z
        .strictObject({
          /** Most documents in one bulk request. */
          max_items: z.int().positive().max(100_000).default(5000),
          /** Largest bulk request body in bytes (Elasticsearch takes up to 100 MB). */
          max_bytes: z.int().positive().max(100 * 1024 * 1024).default(8 * 1024 * 1024),
          /** Most bulk requests in flight at once. */
          concurrency: z.int().positive().max(64).default(2),
          /** Longest a record waits for records of other requests to share its bulk request, in milliseconds (0: none). */
          max_delay_ms: z.int().min(0).max(60_000).default(20),
          /** Attempts for items Elasticsearch may accept later (429, 5xx) before the write fails. */
          max_attempts: z.int().positive().max(20).default(3),
          /** Wait before the second attempt in milliseconds, doubled for each further one. */
          retry_delay_ms: z.int().positive().default(200),
        })
        .prefault({}),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** How retention is enforced: `auto` (data stream lifecycle, else ILM, else ci-audit's own), or one of `lifecycle`, `ilm`, `own`. */
      mechanism: z.enum(['auto', 'lifecycle', 'ilm', 'own']).default('auto'),
      /** Retention of datasets not listed in `datasets`, e.g. `90d`. */
      default_max_age: z.string().regex(durationPattern, durationHint).default('90d'),
      /** Retention per dataset: `{ max_age: 400d, compliance: true }`. Compliance-bound ones can only be shortened with `retention apply --force`. */
      datasets: z
        .record(
          z.string().regex(datasetPattern),
          z.strictObject({ max_age: z.string().regex(durationPattern, durationHint), compliance: z.boolean().default(false) }),
        )
        .default({
          auth: { max_age: '400d', compliance: true },
          ci: { max_age: '90d', compliance: false },
          integrity: { max_age: '3650d', compliance: true },
          deadletter: { max_age: '400d', compliance: false },
        }),
      /** Run ci-audit's own enforcement in the aggregator (when it is the mechanism), every `interval`. */
      enforce: z.boolean().default(true),
      /** How often the aggregator enforces retention (own mechanism), e.g. `1d`, `1h`. */
      interval: z.string().regex(durationPattern, durationHint).default('1h'),
      /** Own mechanism: roll a data stream over when its write index is older than this, e.g. `1d`. */
      rollover_max_age: z.string().regex(durationPattern, durationHint).default('1d'),
      /** Credentials of the scheduled enforcement (role ci_audit_retention), instead of `elasticsearch`'s; same URL. */
      elasticsearch: z
        .strictObject({
          username: z.string().min(1).optional(),
          password: z.string().min(1).optional(),
          api_key: z.string().min(1).optional(),
        })
        .optional(),
    })
    .prefault({}),
  spool: z
    .strictObject({
      /** Folder of the durable spool used while Elasticsearch is unavailable; unset: no spool, the receiver answers 503 instead. */
      dir: z.string().min(1).optional(),
      /** Largest spool size in bytes; beyond it the receiver answers 503. */
      max_bytes: z.int().positive().default(1024 * 1024 * 1024),
    })
    .prefault({}),
  /** Checks of the agents' hash chains and signed checkpoints on ingest (docs/integrity.md). */
  integrity: z
    .strictObject({
      /** Append-only file (JSON lines, fsynced before the request is acknowledged) of every verified checkpoint: an anchor outside Elasticsearch for `ci-audit verify`. Relative to the config file's folder. Unset: no anchor file. */
      anchor_file: z.string().min(1).optional(),
      /** How long a hole in an agent's chain may stay open (records arriving out of order) before it is reported as a `chain_gap` integrity event, in milliseconds. */
      gap_grace_ms: z.int().positive().default(30_000),
    })
    .prefault({}),
  log: logSchema,
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AggregatorConfig = z.infer<typeof aggregatorConfigSchema>;
export type FileSourceConfig = z.infer<typeof fileSourceSchema>;
export type JournaldSourceConfig = z.infer<typeof journaldSourceSchema>;
export type ProcessorsConfig = z.infer<typeof processorsSchema>;
