// `ci-audit setup`, `retention show` and `retention apply`: detect what the cluster offers, pick the
// retention mechanism, and install templates (and ILM policies / data stream lifecycles) that carry
// the configured retention. The applied policy of each dataset is kept in its index template's
// `_meta.retention`, so that `show` reads back what is in force and `apply` can refuse to shorten a
// compliance-bound dataset without --force.
import type { Client } from '@elastic/elasticsearch';
import type { AggregatorConfig } from '../../config/schema.ts';
import { reasonOf, redactCredentials, statusOf, toEsError } from '../index/es-errors.ts';
import { ensureTemplates } from '../index/setup.ts';
import type { EnsureResult } from '../index/setup.ts';
import { buildTemplatePlan, builtInDatasets, templateName } from '../index/templates.ts';
import type { AppliedRetention, TemplateMeta } from '../index/templates.ts';
import { datasetOf, listStreams } from './enforce.ts';
import { checkApply, chooseMechanism, defaultIlmPolicyName, defaultTemplateRetention, ilmPolicyName, ilmPolicyRequest, ilmStreamRequest, lifecycleRequest, resolvePolicies, templateRetention } from './policy.ts';
import type { ApplyCheck, Availability, Capabilities, DatasetPolicy, EsRequest, Mechanism } from './policy.ts';

/**
 * Whether the data stream lifecycle service and ILM answer (the minimal test distribution has neither).
 * Only a definite answer counts as absent: 400 (Elasticsearch's "no handler found" for an API it
 * lacks), 404, 405, and 410 (`api_not_available_exception`, serverless). 403 counts as present:
 * Elasticsearch looks the REST handler up before it authorizes, so a missing feature answers 400 to
 * anyone, and 403 means it is there but this credential (e.g. the retention role, without `monitor`)
 * may not read it. Anything else (5xx, 429, 401, a timeout, no connection) is `unknown`: reading it as
 * absent would make the retention runs enforce on their own on a cluster that already does;
 * chooseMechanism() refuses to choose from it.
 */
export async function detectCapabilities(client: Client): Promise<Capabilities> {
  const reasons: string[] = [];
  let unreachable = false;
  const answers = async (path: string): Promise<Availability> => {
    try {
      const res = await client.transport.request({ method: 'GET', path }, { meta: true });
      if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) return true;
      reasons.push(`GET ${path}: HTTP ${res.statusCode ?? '?'}`);
      return 'unknown';
    } catch (err) {
      const status = statusOf(err);
      if (status === 403) return true;
      if (status !== undefined && featureAbsentStatuses.has(status)) return false;
      if (status === undefined || status === 0) unreachable = true;
      reasons.push(`GET ${path}: ${status === undefined || status === 0 ? '' : `HTTP ${status} `}${redactCredentials(reasonOf(err))}`);
      return 'unknown';
    }
  };
  const caps: Capabilities = { lifecycle: await answers('/_data_stream/_lifecycle/stats'), ilm: await answers('/_ilm/status') };
  return reasons.length === 0 ? caps : { ...caps, unknownBecause: reasons.join('; '), ...(unreachable ? { unreachable } : {}) };
}

/** Statuses that say "this cluster has no such API". */
const featureAbsentStatuses = new Set([400, 404, 405, 410]);

/** `_meta.retention` of each dataset's index template, as installed. */
export async function readApplied(client: Client, url: string): Promise<Map<string, AppliedRetention>> {
  const out = new Map<string, AppliedRetention>();
  let templates;
  try {
    templates = await client.indices.getIndexTemplate({ name: `${templateName}.*` });
  } catch (err) {
    if ((err as { meta?: { statusCode?: number } }).meta?.statusCode === 404) return out;
    throw toEsError(err, 'reading the index templates', url, 'CIA_ERR_ES_SETUP');
  }
  for (const t of templates.index_templates) {
    const retention = (t.index_template._meta as Partial<TemplateMeta> | undefined)?.retention;
    if (retention !== undefined) out.set(t.name.slice(templateName.length + 1), retention);
  }
  return out;
}

export interface ApplyOptions {
  client: Client;
  url: string;
  config: AggregatorConfig;
  force: boolean;
  /** Default: detectCapabilities(). */
  capabilities?: Capabilities;
}

export interface ApplyReport {
  mechanism: Mechanism;
  checks: ApplyCheck[];
  templates: EnsureResult[];
  /** Lifecycle / ILM requests sent. */
  requests: EsRequest[];
}

/** The datasets that get a template (and a policy): built-in ones and configured ones. */
function knownDatasets(config: AggregatorConfig): string[] {
  return [...new Set([...builtInDatasets, ...Object.keys(config.retention.datasets)])];
}

/** Installs templates with the configured retention; idempotent. `ci-audit setup` and `retention apply` both run it. */
export async function applyRetention(options: ApplyOptions): Promise<ApplyReport> {
  const { client, url, config } = options;
  const caps = options.capabilities ?? (await detectCapabilities(client));
  const mechanism = chooseMechanism(config.retention.mechanism, caps);
  const datasets = knownDatasets(config);
  const policies = resolvePolicies(config.retention, datasets);
  const retention = templateRetention(policies, mechanism);
  const desired = new Map([...retention].map(([dataset, r]) => [dataset, r.applied!]));
  const checks = checkApply(await readApplied(client, url), desired, options.force);
  const requests: EsRequest[] = [];
  const { default_max_age: defaultMaxAge, rollover_max_age: rolloverMaxAge } = config.retention;
  if (mechanism === 'ilm') {
    for (const policy of policies.values()) requests.push(ilmPolicyRequest(policy.dataset, policy.maxAge, rolloverMaxAge));
    // Every other dataset (agents may send any): the catch-all template refers to this policy.
    requests.push(ilmPolicyRequest(undefined, defaultMaxAge, rolloverMaxAge));
  }
  for (const request of requests) await send(client, url, request);
  const plan = buildTemplatePlan({ datasets, retention, defaultRetention: defaultTemplateRetention(defaultMaxAge, mechanism) });
  const templates = await ensureTemplates(client, url, plan);
  if (mechanism !== 'own') {
    // Existing data streams keep the lifecycle (or backing indices the ILM policy) they were created
    // with; set it on each. New ones take it from their template (the catch-all for other datasets).
    const namespace = config.elasticsearch.namespace;
    for (const stream of await listStreams(client, url, `logs-ci_audit.*-${namespace}`)) {
      const policy = policies.get(datasetOf(stream, namespace));
      const request =
        mechanism === 'lifecycle'
          ? lifecycleRequest(stream, policy?.maxAge ?? defaultMaxAge)
          : ilmStreamRequest(stream, policy === undefined ? defaultIlmPolicyName : ilmPolicyName(policy.dataset));
      await send(client, url, request);
      requests.push(request);
    }
  }
  return { mechanism, checks, templates, requests };
}

async function send(client: Client, url: string, request: EsRequest): Promise<void> {
  try {
    await client.transport.request({ method: request.method, path: request.path, ...(request.body === undefined ? {} : { body: request.body }) });
  } catch (err) {
    throw toEsError(err, `${request.method} ${request.path}`, url, 'CIA_ERR_ES_SETUP');
  }
}

export interface StreamRetention {
  dataStream: string;
  dataset: string;
  maxAge: string;
  compliance: boolean;
  mechanism: string;
  /** `applied`: from the installed template; `config`: not applied yet (run `retention apply`). */
  source: 'applied' | 'config';
  backingIndices: number;
}

/** The effective retention of every data stream of the namespace, and of each known dataset without one yet. */
export async function showRetention(client: Client, url: string, config: AggregatorConfig): Promise<{ mechanism: Mechanism; capabilities: Capabilities; streams: StreamRetention[] }> {
  const capabilities = await detectCapabilities(client);
  const mechanism = chooseMechanism(config.retention.mechanism, capabilities);
  const applied = await readApplied(client, url);
  const namespace = config.elasticsearch.namespace;
  const policies: Map<string, DatasetPolicy> = resolvePolicies(config.retention, knownDatasets(config));
  const streams = await listStreams(client, url, `logs-ci_audit.*-${namespace}`);
  const resolved = streams.length === 0 ? { data_streams: [] } : await client.indices.resolveIndex({ name: streams, expand_wildcards: 'all' });
  const backingCount = new Map(resolved.data_streams.map((s) => [s.name, ([] as string[]).concat(s.backing_indices).length]));
  const rows: StreamRetention[] = [];
  const names = new Set([...streams, ...[...policies.keys()].map((d) => `logs-ci_audit.${d}-${namespace}`)]);
  for (const stream of [...names].sort()) {
    const dataset = datasetOf(stream, namespace);
    const a = applied.get(dataset);
    const p = policies.get(dataset);
    rows.push({
      dataStream: stream,
      dataset,
      maxAge: a?.max_age ?? p?.maxAge ?? config.retention.default_max_age,
      compliance: a?.compliance ?? p?.compliance ?? false,
      mechanism: a?.mechanism ?? mechanism,
      source: a === undefined ? 'config' : 'applied',
      backingIndices: backingCount.get(stream) ?? 0,
    });
  }
  return { mechanism, capabilities, streams: rows };
}

