// Reads documents in a fixed order through a point in time and search_after, one page at a time,
// the next page requested while the current one is checked. Memory: two pages at most.
import type { Client } from '@elastic/elasticsearch';
import type { QueryDslQueryContainer, SortCombinations, SortResults } from '@elastic/elasticsearch/lib/api/types';
import { statusOf, toEsError } from '../../aggregator/index/es-errors.ts';
import { CiAuditError } from '../../core/errors.ts';
import type { Source } from './remap.ts';

export interface Hit {
  _id?: string | null;
  _index: string;
  _source?: Source;
}

export interface ReadPlan {
  pit: string;
  query: QueryDslQueryContainer;
  sort: SortCombinations[];
  pageSize: number;
  /** Only these fields of _source (default: all). */
  sourceIncludes?: string[];
}

const keepAlive = '5m';

/** Opens a point in time over `index`; undefined when no index matches (nothing to verify). */
export async function openPit(client: Client, url: string, index: string): Promise<string | undefined> {
  try {
    return (await client.openPointInTime({ index, keep_alive: keepAlive, ignore_unavailable: true, allow_partial_search_results: false })).id;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw toEsError(err, 'opening a point in time', url, 'CIA_ERR_SEARCH_QUERY');
  }
}

export async function closePit(client: Client, pit: string): Promise<void> {
  await client.closePointInTime({ id: pit }).catch(() => undefined);
}

/** Every matching hit in sort order (ties broken by _shard_doc). */
export async function* readHits(client: Client, url: string, plan: ReadPlan): AsyncGenerator<Hit> {
  let pit = plan.pit;
  const fetch = async (after: SortResults | undefined): Promise<{ hits: Hit[]; after: SortResults | undefined }> => {
    let response;
    try {
      response = await client.search<Source>({
        pit: { id: pit, keep_alive: keepAlive },
        query: plan.query,
        size: plan.pageSize,
        sort: [...plan.sort, { _shard_doc: 'asc' }],
        track_total_hits: false,
        // A verification with a shard missing would report its records as deleted: fail instead.
        allow_partial_search_results: false,
        ...(plan.sourceIncludes === undefined ? {} : { _source: { includes: plan.sourceIncludes } }),
        ...(after === undefined ? {} : { search_after: after }),
      });
    } catch (err) {
      throw toEsError(err, 'reading the chained records', url, 'CIA_ERR_SEARCH_QUERY');
    }
    if (response._shards.failed > 0) {
      throw new CiAuditError('CIA_ERR_SEARCH_QUERY', `reading the chained records at ${url} failed on ${response._shards.failed} of ${response._shards.total} shards; a partial read would report records as missing`);
    }
    if (response.pit_id !== undefined) pit = response.pit_id;
    const hits = response.hits.hits;
    return { hits, after: hits.length < plan.pageSize ? undefined : hits[hits.length - 1]?.sort };
  };
  let page = await fetch(undefined);
  for (;;) {
    const next = page.after === undefined ? undefined : fetch(page.after);
    // A rejected prefetch is awaited below; until then it must not count as unhandled.
    next?.catch(() => undefined);
    for (const hit of page.hits) yield hit;
    if (next === undefined) return;
    page = await next;
  }
}
