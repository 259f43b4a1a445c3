// Runs a search against Elasticsearch page by page (search_after, inside a point in time when the
// cluster offers one, so pages are consistent and ties broken by `_shard_doc`), and `--follow`:
// polls for documents newer than the last seen until stopped.
import type { Client } from '@elastic/elasticsearch';
import type { QueryDslQueryContainer, SortResults } from '@elastic/elasticsearch/lib/api/types';
import { toEsError, statusOf } from '../../aggregator/index/es-errors.ts';
import { CiAuditError } from '../../core/errors.ts';
import type { Hit } from './format.ts';
import { sortFor } from './request.ts';

export interface SearchPlan {
  index: string;
  query: QueryDslQueryContainer;
  /** Most documents in all; undefined: all of them. */
  size: number | undefined;
  pageSize: number;
  order: 'asc' | 'desc';
}

/** Pages of hits in order; at most `plan.size` hits. Returns how many were delivered. */
export async function searchPages(client: Client, url: string, plan: SearchPlan, onPage: (hits: Hit[]) => void | Promise<void>): Promise<number> {
  let pit: string | undefined;
  try {
    pit = (await client.openPointInTime({ index: plan.index, keep_alive: '1m', ignore_unavailable: true })).id;
  } catch (err) {
    // No index matches yet (404) is an empty result, not a failure; other errors are real.
    if (statusOf(err) === 404) return 0;
    if (statusOf(err) !== 400 && statusOf(err) !== 405) throw toEsError(err, 'opening a point in time', url, 'CIA_ERR_SEARCH_QUERY');
    // Without point in time support: plain search_after on @timestamp.
  }
  let delivered = 0;
  let after: SortResults | undefined;
  try {
    for (;;) {
      const want = plan.size === undefined ? plan.pageSize : Math.min(plan.pageSize, plan.size - delivered);
      if (want <= 0) break;
      let response;
      try {
        response = await client.search<Record<string, unknown>>({
          ...(pit === undefined ? { index: plan.index, ignore_unavailable: true, allow_no_indices: true } : { pit: { id: pit, keep_alive: '1m' } }),
          query: plan.query,
          size: want,
          sort: sortFor(plan.order, pit !== undefined),
          track_total_hits: false,
          // An audit answer with a shard missing would be wrong without saying so: fail instead.
          allow_partial_search_results: false,
          ...(after === undefined ? {} : { search_after: after }),
        });
      } catch (err) {
        if (statusOf(err) === 404) return delivered;
        throw toEsError(withRootCause(err), 'search', url, 'CIA_ERR_SEARCH_QUERY');
      }
      if (response._shards.failed > 0) {
        const reason = response._shards.failures?.[0]?.reason.reason ?? 'unknown';
        throw new CiAuditError('CIA_ERR_SEARCH_QUERY', `search at ${url} failed on ${response._shards.failed} of ${response._shards.total} shards (${reason}); no partial answer is printed from here on`);
      }
      if (response.pit_id !== undefined) pit = response.pit_id;
      const hits = response.hits.hits;
      if (hits.length === 0) break;
      await onPage(hits.map((h) => ({ _index: h._index, _id: h._id ?? '', _source: h._source ?? {} })));
      delivered += hits.length;
      after = hits[hits.length - 1]!.sort;
      if (hits.length < want || after === undefined) break;
    }
  } finally {
    if (pit !== undefined) await client.closePointInTime({ id: pit }).catch(() => undefined);
  }
  return delivered;
}

/** What --follow remembers: the newest @timestamp seen and the ids seen at exactly that instant. */
export interface FollowState {
  newest: string | undefined;
  idsAtNewest: Set<string>;
}

/** Hits not seen before, oldest first, and the state after them. A pure function. */
export function advanceFollow(state: FollowState, hits: readonly Hit[]): { fresh: Hit[]; state: FollowState } {
  let newest = state.newest;
  let ids = new Set(state.idsAtNewest);
  const fresh: Hit[] = [];
  for (const h of hits) {
    const raw = h._source['@timestamp'];
    const ts = typeof raw === 'string' ? raw : '';
    if (newest !== undefined && ts < newest) continue;
    if (ts === newest && ids.has(h._id)) continue;
    fresh.push(h);
    if (newest === undefined || ts > newest) {
      newest = ts;
      ids = new Set();
    }
    ids.add(h._id);
  }
  return { fresh, state: { newest, idsAtNewest: ids } };
}

export interface FollowOptions {
  intervalMs: number;
  signal: AbortSignal;
  /** The query without the time bound; the poll adds `@timestamp >= newest seen`. */
  baseQuery: QueryDslQueryContainer;
  /** Stop after this many polls (tests, scripts); undefined: until the signal. */
  maxPolls?: number;
}

/**
 * Polls for documents at or after the newest seen (the same instant again, since a document of that
 * instant may arrive later; ids seen there are skipped). Timestamps are nanosecond strings of one
 * format, so they compare as text.
 */
export async function follow(client: Client, url: string, index: string, start: FollowState, options: FollowOptions, onPage: (hits: Hit[]) => void | Promise<void>): Promise<void> {
  let state = start;
  for (let poll = 0; options.maxPolls === undefined || poll < options.maxPolls; poll++) {
    if (options.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.intervalMs);
      options.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    if (options.signal.aborted) return;
    const query: QueryDslQueryContainer =
      state.newest === undefined ? options.baseQuery : { bool: { filter: [options.baseQuery, { range: { '@timestamp': { gte: state.newest } } }] } };
    const pages: Hit[] = [];
    await searchPages(client, url, { index, query, size: undefined, pageSize: 1000, order: 'asc' }, (hits) => { pages.push(...hits); });
    const next = advanceFollow(state, pages);
    state = next.state;
    if (next.fresh.length > 0) await onPage(next.fresh);
  }
}

/**
 * `all shards failed` says nothing a user can act on; the first shard's own reason (a query_string
 * syntax error, a field of the wrong type) does. Put it where toEsError reads the reason.
 */
function withRootCause(err: unknown): unknown {
  const body = (err as { meta?: { body?: { error?: { type?: string; reason?: string; root_cause?: Array<{ type?: string; reason?: string }>; failed_shards?: Array<{ reason?: { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } } }> } } } } | null)?.meta?.body;
  const error = body?.error;
  if (error === undefined || typeof error !== 'object') return err;
  const shard = error.failed_shards?.[0]?.reason;
  const cause = shard?.caused_by ?? shard ?? error.root_cause?.[0];
  if (cause?.reason === undefined) return err;
  error.reason = `${error.reason ?? ''}; ${cause.type ?? 'error'}: ${cause.reason}`;
  return err;
}
