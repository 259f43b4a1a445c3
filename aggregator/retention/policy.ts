// Retention decisions as pure functions: durations, which mechanism a cluster gets, the policy of
// each dataset, whether `retention apply` may change what is applied, and the request bodies of the
// data stream lifecycle and ILM APIs.
import type { IlmPolicy } from '@elastic/elasticsearch/lib/api/types';
import type { AggregatorConfig } from '../../config/schema.ts';
import { CiAuditError } from '../../core/errors.ts';
import type { AppliedRetention, TemplateRetention } from '../index/templates.ts';

export type Mechanism = 'lifecycle' | 'ilm' | 'own';
export type RetentionConfig = AggregatorConfig['retention'];

const unitMs: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** `400d`, `12h`, `30m`, `45s` -> milliseconds. Throws CIA_ERR_CONFIG_INVALID naming the value. */
export function durationMs(text: string): number {
  const match = /^([1-9][0-9]*)(d|h|m|s)$/.exec(text);
  if (match === null) throw new CiAuditError('CIA_ERR_CONFIG_INVALID', `"${text}" is not a duration: write a number and a unit d, h, m or s, e.g. 400d`);
  return Number(match[1]) * unitMs[match[2]!]!;
}

/**
 * Whether the cluster offers a feature: `true` (it answered), `false` (a definite "no such API":
 * 400 no handler, 404, 405, 410 not available), or `unknown` (a transient error, 5xx, 429, a
 * timeout, no connection: cannot tell, so no mechanism may be chosen from it).
 */
export type Availability = boolean | 'unknown';

export interface Capabilities {
  /** The data stream lifecycle service runs (GET _data_stream/_lifecycle/stats answers). */
  lifecycle: Availability;
  /** ILM runs (GET _ilm/status answers). */
  ilm: Availability;
  /** Why a feature is `unknown` (the failed request and its error), for the message. */
  unknownBecause?: string;
  /** Elasticsearch did not answer at all (no connection, a timeout): unavailable, not merely undecided. */
  unreachable?: boolean;
}

/**
 * The mechanism for this cluster: `auto` prefers the data stream lifecycle (built into data streams,
 * nothing else to manage), then ILM, then ci-audit's own enforcement, which works everywhere. A
 * mechanism the user asked for that the cluster lacks is an error, not a silent fallback. A feature
 * that decides the choice but is `unknown` throws CIA_ERR_RETENTION_UNDETERMINED: reading it as absent
 * would start ci-audit's own rollovers and deletions on a cluster whose lifecycle or ILM is in charge.
 */
export function chooseMechanism(preference: RetentionConfig['mechanism'], caps: Capabilities): Mechanism {
  if (preference === 'own') return 'own';
  const undetermined = (feature: 'lifecycle' | 'ilm'): CiAuditError =>
    new CiAuditError(
      caps.unreachable === true ? 'CIA_ERR_ES_UNAVAILABLE' : 'CIA_ERR_RETENTION_UNDETERMINED',
      `could not tell whether this cluster offers ${feature === 'ilm' ? 'ILM' : 'the data stream lifecycle'}` +
        `${caps.unknownBecause === undefined ? '' : ` (${caps.unknownBecause})`}; nothing was done, try again when Elasticsearch answers`,
      { details: { feature } },
    );
  if (preference === 'auto') {
    for (const feature of ['lifecycle', 'ilm'] as const) {
      if (caps[feature] === 'unknown') throw undetermined(feature);
      if (caps[feature]) return feature;
    }
    return 'own';
  }
  if (caps[preference] === 'unknown') throw undetermined(preference);
  if (!caps[preference]) {
    throw new CiAuditError(
      'CIA_ERR_RETENTION_UNSUPPORTED',
      `retention.mechanism is ${preference}, but this cluster does not offer ${preference === 'ilm' ? 'ILM' : 'the data stream lifecycle'}; set retention.mechanism to auto or own`,
      { details: { option: 'retention.mechanism', mechanism: preference } },
    );
  }
  return preference;
}

export interface DatasetPolicy {
  dataset: string;
  maxAge: string;
  maxAgeMs: number;
  compliance: boolean;
}

/** The effective policy of each dataset: configured ones, then `default_max_age` for the others. */
export function resolvePolicies(config: RetentionConfig, datasets: readonly string[]): Map<string, DatasetPolicy> {
  const out = new Map<string, DatasetPolicy>();
  for (const dataset of [...new Set([...Object.keys(config.datasets), ...datasets])].sort()) {
    const configured = config.datasets[dataset];
    const maxAge = configured?.max_age ?? config.default_max_age;
    out.set(dataset, { dataset, maxAge, maxAgeMs: durationMs(maxAge), compliance: configured?.compliance ?? false });
  }
  return out;
}

export interface ApplyCheck {
  dataset: string;
  from?: AppliedRetention;
  to: AppliedRetention;
  change: 'new' | 'unchanged' | 'longer' | 'shorter' | 'mechanism';
}

/**
 * Compares what is applied with what the config asks for. Shortening a dataset that is (or was)
 * compliance-bound throws CIA_ERR_RETENTION_SHORTEN unless `force`: it deletes records an auditor
 * may still ask for.
 */
export function checkApply(applied: ReadonlyMap<string, AppliedRetention>, desired: ReadonlyMap<string, AppliedRetention>, force: boolean): ApplyCheck[] {
  const checks: ApplyCheck[] = [];
  const refused: string[] = [];
  for (const [dataset, to] of desired) {
    const from = applied.get(dataset);
    let change: ApplyCheck['change'];
    if (from === undefined) change = 'new';
    else if (durationMs(from.max_age) > durationMs(to.max_age)) change = 'shorter';
    else if (durationMs(from.max_age) < durationMs(to.max_age)) change = 'longer';
    else if (from.mechanism !== to.mechanism || from.compliance !== to.compliance) change = 'mechanism';
    else change = 'unchanged';
    if (change === 'shorter' && (from!.compliance || to.compliance) && !force) refused.push(`${dataset} (${from!.max_age} -> ${to.max_age})`);
    checks.push({ dataset, ...(from === undefined ? {} : { from }), to, change });
  }
  if (refused.length > 0) {
    throw new CiAuditError(
      'CIA_ERR_RETENTION_SHORTEN',
      `shortening the retention of compliance-bound datasets ${refused.join(', ')} deletes records sooner; ` +
        'run `ci-audit retention apply --force` if that is intended',
      { details: { datasets: refused } },
    );
  }
  return checks;
}

/** What each dataset's index template carries for the chosen mechanism. */
export function templateRetention(policies: ReadonlyMap<string, DatasetPolicy>, mechanism: Mechanism): Map<string, TemplateRetention> {
  const out = new Map<string, TemplateRetention>();
  for (const [dataset, policy] of policies) {
    const applied: AppliedRetention = { max_age: policy.maxAge, compliance: policy.compliance, mechanism };
    if (mechanism === 'lifecycle') out.set(dataset, { dataRetention: policy.maxAge, applied });
    else if (mechanism === 'ilm') out.set(dataset, { ilmPolicy: ilmPolicyName(dataset), applied });
    else out.set(dataset, { applied });
  }
  return out;
}

/**
 * What the catch-all template carries: the retention of every dataset without a template of its own
 * (`retention.default_max_age`), so that a data stream created later for a new dataset expires too.
 */
export function defaultTemplateRetention(defaultMaxAge: string, mechanism: Mechanism): TemplateRetention {
  const applied: AppliedRetention = { max_age: defaultMaxAge, compliance: false, mechanism };
  if (mechanism === 'lifecycle') return { dataRetention: defaultMaxAge, applied };
  if (mechanism === 'ilm') return { ilmPolicy: defaultIlmPolicyName, applied };
  return { applied };
}

export function ilmPolicyName(dataset: string): string {
  return `ci-audit-${dataset}`;
}

/**
 * The ILM policy of datasets without a template of their own (`retention.default_max_age`), referred
 * to by the catch-all template. `@` cannot occur in a dataset name, so it never clashes with one.
 */
export const defaultIlmPolicyName = 'ci-audit@default';

export interface EsRequest {
  method: 'PUT' | 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
}

/**
 * `PUT _data_stream/<name>/_lifecycle` with `data_retention`: for data streams that exist already
 * (new ones take it from the index template's `template.lifecycle`).
 */
export function lifecycleRequest(dataStream: string, maxAge: string): EsRequest {
  return { method: 'PUT', path: `/_data_stream/${encodeURIComponent(dataStream)}/_lifecycle`, body: { data_retention: maxAge } };
}

/**
 * `PUT _ilm/policy/ci-audit-<dataset>` (or `ci-audit@default` for `dataset` undefined): roll over daily (or at 50 GB per primary shard), delete an
 * index `max_age` after its rollover. ILM's delete counts from rollover, so an index is deleted at
 * most `rollover_max_age` later than its newest document would require: never earlier.
 */
export function ilmPolicyRequest(dataset: string | undefined, maxAge: string, rolloverMaxAge: string): EsRequest {
  // Typed with the client's IlmPolicy (generated from Elasticsearch's API specification).
  const policy: IlmPolicy = {
    _meta: { managed_by: 'ci-audit', ...(dataset === undefined ? { datasets: 'others' } : { dataset }) },
    phases: {
      hot: { min_age: '0ms', actions: { rollover: { max_age: rolloverMaxAge, max_primary_shard_size: '50gb' } } },
      delete: { min_age: maxAge, actions: { delete: {} } },
    },
  };
  return { method: 'PUT', path: `/_ilm/policy/${encodeURIComponent(dataset === undefined ? defaultIlmPolicyName : ilmPolicyName(dataset))}`, body: { policy } };
}

/**
 * `PUT <stream>/_settings` with `index.lifecycle.name`: puts the backing indices of a data stream
 * that exists already under an ILM policy (new backing indices take it from the index template).
 */
export function ilmStreamRequest(dataStream: string, policyName: string): EsRequest {
  return { method: 'PUT', path: `/${encodeURIComponent(dataStream)}/_settings`, body: { index: { lifecycle: { name: policyName } } } };
}
