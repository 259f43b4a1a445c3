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
});

export const agentConfigSchema = z.strictObject({
  agent: z
    .strictObject({
      /** The agent's id, unique among all agents. Default: the host name. */
      id: z.string().regex(idPattern).default(() => hostname()),
      /** Folder for checkpoints and buffers; relative to the config file's folder. */
      state_dir: z.string().min(1).default('/var/lib/ci-audit'),
    })
    .prefault({}),
  /** The inputs of the agent. */
  sources: z.array(z.discriminatedUnion('type', [fileSourceSchema])).min(1),
  output: z.strictObject({
    /** Base URL of the aggregator's OTLP/HTTP receiver; `/v1/logs` is appended. */
    url: z.url({ protocol: /^https?$/ }),
    /** Bearer token of this agent, if the aggregator asks for one. */
    token: z.string().min(1).optional(),
    /** Request timeout in milliseconds. */
    timeout_ms: z.int().positive().default(10_000),
    batch: z
      .strictObject({
        /** Most records in one request. */
        max_records: z.int().positive().max(10_000).default(512),
        /** Longest a record waits for its batch to fill, in milliseconds. */
        max_delay_ms: z.int().positive().default(1000),
      })
      .prefault({}),
  }),
  log: logSchema,
});

export const aggregatorConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      /** Address to listen on. Default: loopback only. */
      host: z.string().min(1).default('127.0.0.1'),
      /** TCP port of the OTLP/HTTP receiver (4318 is OTLP/HTTP's registered port; 0 picks a free one). */
      port: z.int().min(0).max(65_535).default(4318),
    })
    .prefault({}),
  limits: z
    .strictObject({
      /** Largest request body accepted, as sent (compressed), in bytes. */
      max_body_bytes: z.int().positive().default(4 * 1024 * 1024),
      /** Largest request body after gzip decompression, in bytes (guards against gzip bombs). */
      max_decompressed_bytes: z.int().positive().default(32 * 1024 * 1024),
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
    })
    .prefault({}),
  log: logSchema,
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;
export type AggregatorConfig = z.infer<typeof aggregatorConfigSchema>;
export type FileSourceConfig = z.infer<typeof fileSourceSchema>;
