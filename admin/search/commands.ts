// `ci-audit search` and its shortcuts `who`, `logins`, `runs`: options -> query (request.ts) ->
// pages from Elasticsearch (search.ts) -> lines on stdout (format.ts).
import type { QueryDslQueryContainer } from '@elastic/elasticsearch/lib/api/types';
import { loadAggregatorConfig } from '../../config/loader.ts';
import { createClient } from '../../aggregator/index/client.ts';
import { CiAuditError } from '../../core/errors.ts';
import { createFormatter, outputFormats, type Hit, type OutputFormat } from './format.ts';
import { findSavedQuery, savedQueries, type SavedQuery } from './queries.ts';
import { buildQuery, indexPattern, parseDuration, repositoryFilter, timeRange } from './request.ts';
import { advanceFollow, follow, searchPages } from './search.ts';

export interface SearchCommandOptions {
  config?: string;
  since?: string;
  from?: string;
  to?: string;
  dataset?: string;
  namespace?: string;
  output?: string;
  columns?: string;
  size?: string;
  all?: boolean;
  pageSize?: string;
  follow?: boolean;
  interval?: string;
  /** Polls before --follow ends on its own (tests and scripts); default: until SIGINT/SIGTERM. */
  maxPolls?: string;
}

const defaultColumns = ['@timestamp', 'event.dataset', 'host.hostname', 'user.name', 'event.action', 'message'];

/** Where the results go; stdout unless a test passes its own. */
export interface Output {
  write(line: string): void;
  isTTY: boolean;
}

const stdout: Output = { write: (line) => process.stdout.write(`${line}\n`), isTTY: process.stdout.isTTY === true };

function positiveInt(text: string | undefined, option: string, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `${option} ${JSON.stringify(text)} must be a whole number from 1 to ${max}`);
  }
  return Number(text);
}

function outputFormat(text: string | undefined, isTTY: boolean): OutputFormat {
  if (text === undefined) return isTTY ? 'table' : 'jsonl';
  if (!(outputFormats as readonly string[]).includes(text)) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `--output ${JSON.stringify(text)} is not one of ${outputFormats.join(', ')}`);
  }
  return text as OutputFormat;
}

export interface SearchSpec {
  text?: string;
  saved?: SavedQuery;
  filters?: QueryDslQueryContainer[];
}

/** Runs one search (and --follow) with the command-line options. */
export async function runSearchCommand(spec: SearchSpec, options: SearchCommandOptions, out: Output = stdout): Promise<void> {
  // Every option is checked before connecting, so a typo never waits on a network timeout.
  const now = new Date();
  const range = timeRange(options, now);
  const dataset = options.dataset ?? spec.saved?.dataset;
  const index = indexPattern(dataset, options.namespace);
  const format = outputFormat(options.output, out.isTTY);
  const size = options.all === true ? undefined : positiveInt(options.size, '--size', 100, 1_000_000);
  const pageSize = positiveInt(options.pageSize, '--page-size', 500, 10_000);
  const intervalMs = options.interval === undefined ? 2000 : parseDuration(options.interval, '--interval');
  const maxPolls = options.maxPolls === undefined ? undefined : positiveInt(options.maxPolls, '--max-polls', 1, 1_000_000);
  // No upper time bound while following: --to would end it, so it is refused.
  if (options.follow === true && options.to !== undefined) throw new CiAuditError('CIA_ERR_CLI_USAGE', '--follow watches new events: it cannot be combined with --to');
  const columns = options.columns !== undefined ? options.columns.split(',').map((c) => c.trim()).filter((c) => c !== '') : spec.saved === undefined ? defaultColumns : ['@timestamp', ...spec.saved.columns];
  const base = { ...(spec.text === undefined ? {} : { text: spec.text }), ...(spec.saved === undefined ? {} : { conditions: spec.saved.conditions }), filters: spec.filters ?? [] };
  const query = buildQuery({ ...base, range });

  const { config } = await loadAggregatorConfig(options.config);
  const { client, url } = createClient(config.elasticsearch);
  const formatter = createFormatter(format, columns);
  const emit = (hits: Hit[]): void => {
    for (const line of formatter.page(hits)) out.write(line);
  };
  try {
    if (options.follow !== true) {
      await searchPages(client, url, { index, query, size, pageSize, order: 'desc' }, emit);
      return;
    }
    // Following: the latest `size` first (oldest first, as a log reads), then what arrives.
    const initial: Hit[] = [];
    await searchPages(client, url, { index, query, size: size ?? pageSize, pageSize, order: 'desc' }, (hits) => { initial.push(...hits); });
    initial.reverse();
    const seen = advanceFollow({ newest: range.gte, idsAtNewest: new Set() }, initial);
    if (initial.length > 0) emit(initial);
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await follow(client, url, index, seen.state, { intervalMs, signal: controller.signal, baseQuery: buildQuery({ ...base, range: {} }), ...(maxPolls === undefined ? {} : { maxPolls }) }, emit);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  } finally {
    await client.close();
  }
}

function userFilter(user: string): QueryDslQueryContainer {
  // The acting user, the target (sudo, su) and every user a line names.
  return { bool: { should: ['user.name', 'user.effective.name', 'related.user'].map((f) => ({ term: { [f]: user } })), minimum_should_match: 1 } };
}

export function savedQueryOrThrow(id: string): SavedQuery {
  const q = findSavedQuery(id);
  if (q === undefined) throw new CiAuditError('CIA_ERR_CLI_USAGE', `--saved ${JSON.stringify(id)} is not a saved query; known: ${savedQueries.map((s) => s.id).join(', ')}`);
  return q;
}

/** `ci-audit search [query] [--saved id]`. */
export function searchSpec(text: string | undefined, saved: string | undefined): SearchSpec {
  return { ...(text === undefined ? {} : { text }), ...(saved === undefined ? {} : { saved: savedQueryOrThrow(saved) }) };
}

/** `ci-audit who --user alice`: everything a user did or had done to them. */
export function whoSpec(user: string): SearchSpec {
  return { filters: [userFilter(user)] };
}

/** `ci-audit logins [--failed] [--user u]`. */
export function loginsSpec(failed: boolean, user: string | undefined): SearchSpec {
  return { saved: savedQueryOrThrow(failed ? 'failed-ssh-logins' : 'successful-logins'), filters: user === undefined ? [] : [userFilter(user)] };
}

/** `ci-audit runs [--repo org/app] [--user u]`: pipeline runs and who triggered them. */
export function runsSpec(repo: string | undefined, user: string | undefined): SearchSpec {
  const filters: QueryDslQueryContainer[] = [];
  if (repo !== undefined) filters.push(repositoryFilter(repo));
  if (user !== undefined) filters.push({ term: { 'user.name': user } });
  return { saved: savedQueryOrThrow('pipeline-runs'), filters };
}
