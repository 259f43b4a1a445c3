// The component and index templates behind every ci-audit data stream: pure data and a pure
// builder. Installing them is aggregator/index/setup.ts.
//
// Layout (docs/storage.md has the reasons):
// - component `ci-audit-logs@settings` and `ci-audit-logs@mappings` hold what every dataset shares;
//   `ecsFieldMappings` below is THE one place for ECS field mappings (parsers add theirs here);
// - one index template per known dataset (`ci-audit-logs.<dataset>`, pattern
//   `logs-ci_audit.<dataset>-*`, priority 210), so that each dataset can carry its own retention
//   (data stream lifecycle or ILM policy) and its own extra mappings (dead letters, integrity events);
// - a catch-all `ci-audit-logs` (pattern `logs-ci_audit.*-*`, priority 200) for datasets nobody
//   configured, so that a record never lands in a plain index with dynamic mappings;
// - every template carries `version` and `_meta { managed_by, version, digest }`: setup installs a
//   template when the cluster's is older, or the same version with other content (retention
//   changed), and never downgrades one a newer ci-audit installed.
//
// Mapping choices:
// - only field types of the Elasticsearch server itself (no mapper-extras, no x-pack mappers), so the
//   templates work on the minimal integ-test distribution and every larger one: no match_only_text,
//   wildcard, constant_keyword;
// - @timestamp and event.created are date_nanos, so agent timestamps keep their nanoseconds;
// - event.original is stored only (not indexed, no doc values): it is the raw line, kept for
//   verification, searched through `message`;
// - OpenTelemetry attributes without an ECS home live under ci_audit.attributes,
//   ci_audit.resource.attributes and ci_audit.scope.attributes, objects with `subobjects: false`
//   whose every value is a keyword: attribute names with dots never clash ("a" and "a.b"), and a
//   value that is a number in one record and a string in the next is no mapping conflict;
// - beyond total_fields.limit new fields stay in _source unmapped instead of failing the document.
import { createHash } from 'node:crypto';
import type { IndicesPutIndexTemplateRequest } from '@elastic/elasticsearch/lib/api/types';
import { integrityDataset } from '../../core/wire.ts';

/** Bump when a template's content changes: aggregators install theirs when it is newer than the cluster's. */
export const templateVersion = 3;

/** The catch-all index template. */
export const templateName = 'ci-audit-logs';

/** Matches every data stream of `dataStreamName()` (core/wire.ts). */
export const templatePattern = 'logs-ci_audit.*-*';

export const settingsComponentName = 'ci-audit-logs@settings';
export const mappingsComponentName = 'ci-audit-logs@mappings';

/** Datasets that always get an index template of their own. */
export const builtInDatasets = ['auth', 'ci', 'generic', 'integrity', 'deadletter'] as const;

/** Dataset of the dead-letter data stream (records Elasticsearch refused, with the error). */
export const deadLetterDataset = 'deadletter';

// Every keyword has ignore_above: a longer value (a crafted host name, say) stays in _source
// unindexed instead of failing the document with Lucene's 32 KiB term limit.
const keyword = { type: 'keyword', ignore_above: 1024 } as const;
const attributeObject = { type: 'object', subobjects: false } as const;
/** Kept for reading back, never searched: cannot conflict with anything, cannot fail the document. */
const storedOnly = { type: 'keyword', index: false, doc_values: false } as const;

/**
 * ECS (and ci-audit) field mappings shared by every dataset. The one place to add a field mapping:
 * parsers of new record kinds add theirs here.
 */
export const ecsFieldMappings: Record<string, unknown> = {
  '@timestamp': { type: 'date_nanos' },
  message: { type: 'text' },
  event: {
    properties: {
      original: { type: 'keyword', index: false, doc_values: false },
      dataset: keyword,
      id: keyword,
      ingested: { type: 'date' },
      created: { type: 'date_nanos' },
      severity: { type: 'long' },
      kind: keyword,
      category: keyword,
      type: keyword,
      action: keyword,
      outcome: keyword,
      timezone: keyword,
      reason: keyword,
    },
  },
  log: {
    properties: {
      level: keyword,
      offset: { type: 'long' },
      file: { properties: { path: keyword } },
    },
  },
  host: {
    properties: {
      name: keyword,
      hostname: keyword,
      id: keyword,
      architecture: keyword,
      os: { properties: { type: keyword, name: keyword, version: keyword, full: keyword } },
    },
  },
  // Parsed auth and CI events (agent/processors, docs/parsing.md).
  process: { properties: { name: keyword, pid: { type: 'long' }, command_line: keyword, working_directory: keyword, exit_code: { type: 'long' } } },
  group: { properties: { name: keyword, id: keyword } },
  related: { properties: { user: keyword, ip: { type: 'ip' }, hash: keyword, hosts: keyword } },
  labels: { type: 'object', dynamic: true },
  system: {
    properties: {
      auth: {
        properties: {
          ssh: { properties: { event: keyword, method: keyword, signature: keyword, dropped_ip: { type: 'ip' } } },
          sudo: { properties: { tty: keyword, pwd: keyword, command: keyword, user: keyword, error: keyword } },
          pam: { properties: { service: keyword } },
          session: { properties: { id: keyword } },
          useradd: { properties: { home: keyword, shell: keyword } },
        },
      },
    },
  },
  cicd: {
    properties: {
      pipeline: {
        properties: {
          name: keyword,
          result: keyword,
          run: { properties: { id: keyword, url: { properties: { full: keyword } } } },
          task: { properties: { name: keyword, run: { properties: { id: keyword, result: keyword, url: { properties: { full: keyword } } } } } },
        },
      },
      worker: { properties: { id: keyword, name: keyword } },
    },
  },
  vcs: {
    properties: {
      repository: { properties: { name: keyword, url: { properties: { full: keyword } } } },
      ref: { properties: { head: { properties: { name: keyword, revision: keyword, type: keyword } } } },
      provider: { properties: { name: keyword } },
    },
  },
  agent: { properties: { id: keyword, type: keyword, version: keyword, name: keyword } },
  source: { properties: { ip: { type: 'ip' }, port: { type: 'long' }, address: keyword } },
  user: {
    properties: {
      name: keyword,
      id: keyword,
      full_name: keyword,
      effective: { properties: { name: keyword, id: keyword } },
      target: { properties: { name: keyword, id: keyword } },
    },
  },
  trace: { properties: { id: keyword } },
  span: { properties: { id: keyword } },
  data_stream: { properties: { type: keyword, dataset: keyword, namespace: keyword } },
  ci_audit: {
    properties: {
      verified: { type: 'boolean' },
      from_agent: { type: 'boolean' },
      // The hash chain (core/integrity/document.ts): verify sorts by agent.id + seq; the canonical
      // record is stored verbatim for re-hashing and never indexed.
      chain: { properties: { seq: { type: 'long' }, hash: keyword, prev_hash: keyword, record: storedOnly } },
      gap: { properties: { first_seq: { type: 'long' }, last_seq: { type: 'long' }, reason: keyword } },
      checkpoint: {
        properties: {
          type: keyword,
          seq: { type: 'long' },
          hash: keyword,
          time: keyword,
          key: keyword,
          signature: storedOnly,
          next_key: keyword,
          next_public_key: storedOnly,
          verified: { type: 'boolean' },
        },
      },
      issues: keyword,
      event_name: keyword,
      time_unix_nano: keyword,
      trace_flags: { type: 'long' },
      dropped_attributes_count: { type: 'long' },
      parser: keyword,
      parse: { properties: { status: keyword } },
      redacted: { properties: { rules: keyword } },
      attributes: attributeObject,
      resource: { properties: { attributes: attributeObject } },
      scope: { properties: { name: keyword, version: keyword, attributes: attributeObject } },
    },
  },
};

const sharedSettings = {
  'index.codec': 'best_compression',
  'index.auto_expand_replicas': '0-1',
  'index.mapping.total_fields.limit': 2000,
  'index.mapping.total_fields.ignore_dynamic_beyond_limit': true,
};

const sharedMappings = {
  dynamic: true,
  date_detection: false,
  numeric_detection: false,
  dynamic_templates: [
    {
      otel_attributes_as_keyword: {
        path_match: ['ci_audit.attributes.*', 'ci_audit.resource.attributes.*', 'ci_audit.scope.attributes.*'],
        match_mapping_type: ['string', 'long', 'double', 'boolean'],
        mapping: keyword,
      },
    },
    { strings_as_keyword: { match_mapping_type: 'string', mapping: keyword } },
  ],
  properties: ecsFieldMappings,
};

/** Extra mappings of some datasets, as component templates of their own. */
const datasetMappings: Record<string, Record<string, unknown>> = {
  // A dead letter keeps the refused document as a JSON string that is stored only: whatever made
  // Elasticsearch refuse it cannot make it refuse the dead letter.
  [deadLetterDataset]: {
    ci_audit: {
      properties: {
        deadletter: {
          properties: {
            data_stream: keyword,
            id: keyword,
            document: storedOnly,
            error: { properties: { status: { type: 'long' }, type: keyword, reason: { type: 'text' } } },
          },
        },
      },
    },
  },
  [integrityDataset]: {
    ci_audit: {
      properties: {
        // Findings of the aggregator's verify stage (aggregator/verify/events.ts).
        integrity: {
          properties: {
            first_seq: { type: 'long' },
            last_seq: { type: 'long' },
            doc_id: keyword,
            reason: keyword,
            declared_by_seq: { type: 'long' },
            key: keyword,
            checkpoint_type: keyword,
            checkpoint_hash: keyword,
            claimed_hash: keyword,
            computed_hash: keyword,
            prev_hash: keyword,
            expected_hash: keyword,
            received_hash: keyword,
            stored_hash: keyword,
            link_seq: { type: 'long' },
            link_doc_id: keyword,
            missing_count: { type: 'long' },
            hole_first_seq: { type: 'long' },
            hole_last_seq: { type: 'long' },
            // A forked record that was not stored as a document: kept here, verbatim.
            received_record: storedOnly,
          },
        },
        retention: {
          properties: {
            index: keyword,
            data_stream: keyword,
            max_age: keyword,
            newest: { type: 'date_nanos' },
            oldest: { type: 'date_nanos' },
            docs: { type: 'long' },
            mechanism: keyword,
            // The id of the integrity checkpoint that covered the deleted range: null until the
            // verification issue brings checkpoints; mapped now so filling it needs no new template.
            checkpoint: keyword,
          },
        },
      },
    },
  },
};

/** What retention a dataset's index template carries; own enforcement needs nothing in the template. */
export interface TemplateRetention {
  /** Data stream lifecycle `data_retention`, e.g. `400d`. */
  dataRetention?: string;
  /** ILM policy name, set as `index.lifecycle.name`. */
  ilmPolicy?: string;
  /** The applied policy, kept in `_meta.retention` so that `retention show` and `apply` can read it back. */
  applied?: AppliedRetention;
}

export interface AppliedRetention {
  max_age: string;
  compliance: boolean;
  mechanism: string;
}

export interface TemplatePlanOptions {
  /** Datasets beyond the built-in ones that get a template of their own (e.g. from the retention config). */
  datasets?: readonly string[];
  /** Retention per dataset, for the lifecycle and ILM mechanisms. */
  retention?: ReadonlyMap<string, TemplateRetention>;
  /**
   * Retention of the catch-all template: every data stream of a dataset without a template of its
   * own, including ones created later (`retention.default_max_age`).
   */
  defaultRetention?: TemplateRetention;
}

export interface ComponentTemplateBody {
  version: number;
  _meta: TemplateMeta;
  template: { settings?: Record<string, unknown>; mappings?: Record<string, unknown> };
}
export type IndexTemplateBody = Omit<IndicesPutIndexTemplateRequest, 'name' | 'create'> & { _meta: TemplateMeta };

export interface TemplateMeta {
  managed_by: 'ci-audit';
  version: number;
  /** sha256 of the template without `_meta` and `version`: tells "same version, other content" apart. */
  digest: string;
  retention?: AppliedRetention;
}

export interface TemplatePlan {
  /** Installed first: index templates refer to them. */
  componentTemplates: Array<{ name: string; body: ComponentTemplateBody }>;
  indexTemplates: Array<{ name: string; body: IndexTemplateBody }>;
}

export function datasetTemplateName(dataset: string): string {
  return `${templateName}.${dataset}`;
}

function datasetComponentName(dataset: string): string {
  return `${templateName}.${dataset}@mappings`;
}

/** Every template ci-audit installs, for these datasets and retention settings. A pure function. */
export function buildTemplatePlan(options: TemplatePlanOptions = {}): TemplatePlan {
  const components: TemplatePlan['componentTemplates'] = [
    { name: settingsComponentName, body: withMeta({ template: { settings: sharedSettings } }) },
    { name: mappingsComponentName, body: withMeta({ template: { mappings: sharedMappings } }) },
  ];
  for (const [dataset, properties] of Object.entries(datasetMappings)) {
    components.push({ name: datasetComponentName(dataset), body: withMeta({ template: { mappings: { properties } } }) });
  }
  const shared = [settingsComponentName, mappingsComponentName];
  const catchAll = retentionTemplate(options.defaultRetention);
  const indexTemplates: TemplatePlan['indexTemplates'] = [
    // Above the `logs-*-*` template (priority 100) that full distributions ship.
    {
      name: templateName,
      body: withMeta(
        { index_patterns: [templatePattern], priority: 200, data_stream: {}, composed_of: shared, ...(Object.keys(catchAll).length > 0 ? { template: catchAll } : {}) },
        options.defaultRetention?.applied,
      ),
    },
  ];
  const datasets = [...new Set([...builtInDatasets, ...(options.datasets ?? [])])].sort();
  for (const dataset of datasets) {
    const retention = options.retention?.get(dataset);
    const template = retentionTemplate(retention);
    const composedOf = datasetMappings[dataset] === undefined ? shared : [...shared, datasetComponentName(dataset)];
    indexTemplates.push({
      name: datasetTemplateName(dataset),
      body: withMeta(
        {
          index_patterns: [`logs-ci_audit.${dataset}-*`],
          priority: 210,
          data_stream: {},
          composed_of: composedOf,
          ...(Object.keys(template).length > 0 ? { template } : {}),
        },
        retention?.applied,
      ),
    });
  }
  return { componentTemplates: components, indexTemplates };
}

/** The `template` part of an index template that carries `retention`: lifecycle or ILM policy. */
function retentionTemplate(retention: TemplateRetention | undefined): NonNullable<IndicesPutIndexTemplateRequest['template']> {
  const template: NonNullable<IndicesPutIndexTemplateRequest['template']> = {};
  if (retention?.dataRetention !== undefined) template.lifecycle = { data_retention: retention.dataRetention };
  if (retention?.ilmPolicy !== undefined) template.settings = { 'index.lifecycle.name': retention.ilmPolicy };
  return template;
}

/** The settings and mappings a data stream of `dataset` gets, merged as Elasticsearch composes them. For tests and docs. */
export function composedMappings(dataset: string): { settings: Record<string, unknown>; properties: Record<string, unknown> } {
  const extra = datasetMappings[dataset] ?? {};
  return { settings: sharedSettings, properties: mergeDeep(ecsFieldMappings, extra) };
}

function mergeDeep(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const b = base[key];
    out[key] = isObject(b) && isObject(value) ? mergeDeep(b, value) : value;
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withMeta<T extends object>(body: T, retention?: AppliedRetention): T & { version: number; _meta: TemplateMeta } {
  const digest = templateDigest(retention === undefined ? body : { ...body, retention });
  return { ...body, version: templateVersion, _meta: { managed_by: 'ci-audit', version: templateVersion, digest, ...(retention === undefined ? {} : { retention }) } };
}

/** sha256 of a template body without `version` and `_meta`, keys sorted. */
export function templateDigest(body: object): string {
  const { version: _v, _meta: _m, ...rest } = body as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
