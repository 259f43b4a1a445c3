// Pure decisions of `ci-audit search` and its shortcuts: time ranges from the options, the index
// pattern, the query. No I/O here, so every rule is tested on real inputs (test/unit/search).
import type { QueryDslQueryContainer, SortCombinations } from '@elastic/elasticsearch/lib/api/types';
import { CiAuditError } from '../../core/errors.ts';
import { conditionsToFilters, type Condition } from './queries.ts';

const unitMs: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `15m`, `24h`, `7d`, `2w` in milliseconds; a CIA_ERR_CLI_USAGE error naming the option otherwise. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (m === null || Number(m[1]) <= 0) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `${option} ${JSON.stringify(text)} is not a duration: give a positive number and a unit s, m, h, d or w, e.g. 24h or 7d`, {
      details: { option, value: text },
    });
  }
  return Number(m[1]) * unitMs[m[2]!]!;
}

/** An RFC 3339 date/time (or a date), or a duration back from now (`2h`). */
export function parseInstant(text: string, option: string, now: Date): Date {
  if (/^\d+\s*[smhdw]$/.test(text.trim())) return new Date(now.getTime() - parseDuration(text, option));
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim())) {
    const d = new Date(text.trim());
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new CiAuditError('CIA_ERR_CLI_USAGE', `${option} ${JSON.stringify(text)} is neither a date/time (2026-03-05T10:00:00Z, 2026-03-05) nor a duration back from now (24h)`, {
    details: { option, value: text },
  });
}

export interface RangeOptions {
  since?: string;
  from?: string;
  to?: string;
}

export interface TimeRange {
  gte?: string;
  lte?: string;
}

/** `--since` or `--from`/`--to` as an @timestamp range; `--since` and `--from` exclude each other. */
export function timeRange(options: RangeOptions, now: Date): TimeRange {
  if (options.since !== undefined && options.from !== undefined) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', 'give either --since or --from, not both');
  }
  const range: TimeRange = {};
  if (options.since !== undefined) range.gte = new Date(now.getTime() - parseDuration(options.since, '--since')).toISOString();
  if (options.from !== undefined) range.gte = parseInstant(options.from, '--from', now).toISOString();
  if (options.to !== undefined) range.lte = parseInstant(options.to, '--to', now).toISOString();
  if (range.gte !== undefined && range.lte !== undefined && range.gte > range.lte) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `the time range is empty: from ${range.gte} is after to ${range.lte}`);
  }
  return range;
}

const namePart = /^[a-z0-9_]{1,100}$/;

/** `logs-ci_audit.<dataset>-<namespace>` with `*` for what is not given. */
export function indexPattern(dataset: string | undefined, namespace: string | undefined): string {
  for (const [option, value] of [['--dataset', dataset], ['--namespace', namespace]] as const) {
    if (value !== undefined && !namePart.test(value)) {
      throw new CiAuditError('CIA_ERR_CLI_USAGE', `${option} ${JSON.stringify(value)} is not a dataset/namespace name (lower-case letters, digits, _)`);
    }
  }
  return `logs-ci_audit.${dataset ?? '*'}-${namespace ?? '*'}`;
}

export interface QueryOptions {
  /** Lucene query_string syntax on `message` and the ECS fields (`user.name:alice AND source.ip:10.0.0.0/8`). */
  text?: string;
  conditions?: readonly Condition[];
  /** More filters (wildcards of the shortcuts). */
  filters?: readonly QueryDslQueryContainer[];
  range: TimeRange;
}

export function buildQuery(options: QueryOptions): QueryDslQueryContainer {
  const filter: QueryDslQueryContainer[] = [...conditionsToFilters(options.conditions ?? []), ...(options.filters ?? [])];
  if (options.range.gte !== undefined || options.range.lte !== undefined) filter.push({ range: { '@timestamp': { ...options.range } } });
  const must: QueryDslQueryContainer[] = [];
  const text = options.text?.trim();
  if (text !== undefined && text !== '' && text !== '*') {
    // `message` by default, so a bare word searches the line; field:value reaches any mapped field.
    must.push({ query_string: { query: text, default_field: 'message', default_operator: 'AND' } });
  }
  return { bool: { filter, must } };
}

/**
 * Newest first for a one-off search, oldest first while following; `_shard_doc` (with a PIT) breaks
 * ties stably. The sort values are milliseconds (`numeric_type: date`): they survive a JSON round
 * trip as JS numbers (nanoseconds would not), and indices mapping @timestamp as date and as
 * date_nanos sort together instead of one's values being read in the other's unit.
 */
export function sortFor(order: 'asc' | 'desc', withPit: boolean): SortCombinations[] {
  const ts: SortCombinations = { '@timestamp': { order, numeric_type: 'date' } };
  return withPit ? [ts, { _shard_doc: { order } }] : [ts];
}

/** A repository given as `org/app` or a URL: matches vcs.repository.url.full ending in it. */
export function repositoryFilter(repo: string): QueryDslQueryContainer {
  const path = repo.replace(/^https?:\/\/[^/]+\//, '').replace(/\.git$/, '').replace(/^\/+|\/+$/g, '');
  if (path === '' || /[*?\s]/.test(path)) throw new CiAuditError('CIA_ERR_CLI_USAGE', `--repo ${JSON.stringify(repo)} is not a repository: give org/app or its URL`);
  return { wildcard: { 'vcs.repository.url.full': { value: `*/${path}`, case_insensitive: true } } };
}
