// The index template behind every ci-audit data stream, and its idempotent installation.
//
// Mapping choices (aggregator/README.md has the reasons):
// - only field types of the Elasticsearch server itself (no mapper-extras, no x-pack mappers), so the
//   template works on the minimal integ-test distribution and every larger one: no match_only_text,
//   wildcard, constant_keyword;
// - @timestamp and event.created are date_nanos, so agent timestamps keep their nanoseconds;
// - event.original is stored only (not indexed, no doc values): it is the raw line, kept for
//   verification, searched through `message`;
// - OpenTelemetry attributes without an ECS home live under ci_audit.attributes,
//   ci_audit.resource.attributes and ci_audit.scope.attributes, objects with `subobjects: false`
//   whose every value is a keyword: attribute names with dots never clash ("a" and "a.b"), and a
//   value that is a number in one record and a string in the next is no mapping conflict;
// - beyond total_fields.limit new fields stay in _source unmapped instead of failing the document.
import type { Client } from '@elastic/elasticsearch';
import type { IndicesPutIndexTemplateRequest } from '@elastic/elasticsearch/lib/api/types';
import { toEsError, statusOf } from './es-errors.ts';

/** Bump when the template changes: aggregators install it when theirs is newer than the cluster's. */
export const templateVersion = 1;

export const templateName = 'ci-audit-logs';

/** Matches every data stream of `dataStreamName()` (core/wire.ts). */
export const templatePattern = 'logs-ci_audit.*-*';

// Every keyword has ignore_above: a longer value (a crafted host name, say) stays in _source
// unindexed instead of failing the document with Lucene's 32 KiB term limit.
const keyword = { type: 'keyword', ignore_above: 1024 } as const;
const attributeObject = { type: 'object', subobjects: false } as const;

export const indexTemplate: Omit<IndicesPutIndexTemplateRequest, 'name' | 'create'> = {
  index_patterns: [templatePattern],
  // Above the `logs-*-*` template (priority 100) that full distributions ship.
  priority: 200,
  data_stream: {},
  version: templateVersion,
  _meta: { managed_by: 'ci-audit', version: templateVersion },
  template: {
    settings: {
      'index.codec': 'best_compression',
      'index.auto_expand_replicas': '0-1',
      'index.mapping.total_fields.limit': 2000,
      'index.mapping.total_fields.ignore_dynamic_beyond_limit': true,
    },
    mappings: {
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
      properties: {
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
          },
        },
        log: {
          properties: {
            level: keyword,
            offset: { type: 'long' },
            file: { properties: { path: keyword } },
          },
        },
        host: { properties: { name: keyword, hostname: keyword } },
        agent: { properties: { id: keyword, type: keyword, version: keyword, name: keyword } },
        source: { properties: { ip: { type: 'ip' }, port: { type: 'long' } } },
        user: { properties: { name: keyword, id: keyword } },
        trace: { properties: { id: keyword } },
        span: { properties: { id: keyword } },
        data_stream: { properties: { type: keyword, dataset: keyword, namespace: keyword } },
        ci_audit: {
          properties: {
            verified: { type: 'boolean' },
            from_agent: { type: 'boolean' },
            issues: keyword,
            event_name: keyword,
            time_unix_nano: keyword,
            trace_flags: { type: 'long' },
            dropped_attributes_count: { type: 'long' },
            attributes: attributeObject,
            resource: { properties: { attributes: attributeObject } },
            scope: { properties: { name: keyword, version: keyword, attributes: attributeObject } },
          },
        },
      },
    },
  },
};

export type EnsureAction = 'created' | 'updated' | 'unchanged';

export interface EnsureResult {
  name: string;
  action: EnsureAction;
  /** `_meta.version` installed in the cluster afterwards (may be newer than ours: then left alone). */
  version: number;
}

/**
 * Creates or upgrades the template; a no-op when the cluster holds this version or a newer one
 * (a newer aggregator installed it: never downgrade). Throws CiAuditError CIA_ERR_ES_UNAVAILABLE,
 * CIA_ERR_ES_AUTH or CIA_ERR_ES_SETUP. `url` is only for messages (redacted there).
 */
export async function ensureTemplates(client: Client, url: string): Promise<EnsureResult[]> {
  return [await ensureTemplate(client, url, templateName, indexTemplate, templateVersion)];
}

async function ensureTemplate(
  client: Client,
  url: string,
  name: string,
  body: Omit<IndicesPutIndexTemplateRequest, 'name' | 'create'>,
  version: number,
): Promise<EnsureResult> {
  for (let attempt = 0; ; attempt++) {
    const installed = await installedVersion(client, url, name);
    if (installed !== undefined && installed.version >= version) {
      return { name, action: 'unchanged', version: installed.version };
    }
    try {
      // `create` when absent: two aggregators starting together must not both "create".
      await client.indices.putIndexTemplate({ name, create: installed === undefined, ...body });
      return { name, action: installed === undefined ? 'created' : 'updated', version };
    } catch (err) {
      // Lost the race to another aggregator: read again and compare versions.
      if (installed === undefined && statusOf(err) === 400 && attempt === 0 && /already exists/.test(String((err as Error).message))) continue;
      throw toEsError(err, `installing index template ${name}`, url, 'CIA_ERR_ES_SETUP');
    }
  }
}

async function installedVersion(client: Client, url: string, name: string): Promise<{ version: number } | undefined> {
  try {
    const response = await client.indices.getIndexTemplate({ name });
    const template = response.index_templates.find((t) => t.name === name)?.index_template;
    if (template === undefined) return undefined;
    const meta = template._meta as { version?: unknown } | undefined;
    return { version: typeof meta?.version === 'number' ? meta.version : 0 };
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw toEsError(err, `reading index template ${name}`, url, 'CIA_ERR_ES_SETUP');
  }
}
