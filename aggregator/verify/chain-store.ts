// What the verify stage asks Elasticsearch about a chain: where an agent's chain stood when this
// aggregator first sees the agent (so a restart reports no false gap or fork), and which seqs of a
// hole another aggregator instance has indexed (so a hole is only reported when it is one). Both
// need `read` on logs-ci_audit.*, and `maintenance` to refresh before looking (records indexed in
// the last second are not searchable yet) (deploy/elasticsearch/role-ci-audit-writer.json, docs/storage.md).
import type { Client } from '@elastic/elasticsearch';
import { chainField } from '../../core/integrity/document.ts';
import { chainDocumentId } from '../../core/integrity/document.ts';
import { statusOf, toEsError } from '../index/es-errors.ts';
import type { ChainBase, SeqRange } from './continuity.ts';

/** The key may not read the data streams (403): the stage works without what it would have learnt. */
export const unreadable = Symbol('unreadable');

export interface ChainStore {
  /** The highest-seq chained record held for the agent; undefined when none. Throws CIA_ERR_ES_UNAVAILABLE when it cannot tell. */
  head(agentId: string): Promise<ChainBase | undefined | typeof unreadable>;
  /**
   * The seqs of `range` held for the agent, as runs of consecutive seqs: ascending, disjoint, within
   * `range`. Its work follows the documents held, never the width of `range` (a record may claim any
   * seq up to 2^53 - 1, and a hole reaches up to it). Throws CIA_ERR_ES_UNAVAILABLE when it cannot tell.
   */
  present(agentId: string, range: SeqRange): Promise<SeqRange[] | typeof unreadable>;
}

/** Lookups within this many ms share one refresh. */
const minRefreshIntervalMs = 1000;
/** Hits in one page of present(): at most index.max_result_window (10,000 by default). */
const defaultPageSize = 10_000;

export class ElasticsearchChainStore implements ChainStore {
  readonly #client: Client;
  readonly #url: string;
  readonly #pattern: string;
  readonly #pageSize: number;
  #refreshing: Promise<void> | undefined;
  #refreshedAt = 0;

  /** `pageSize`: hits per search of present(); default 10,000 (smaller in tests, to page). */
  constructor(options: { client: Client; url: string; namespace: string; pageSize?: number | undefined }) {
    this.#client = options.client;
    this.#url = options.url;
    this.#pattern = `logs-ci_audit.*-${options.namespace}`;
    this.#pageSize = options.pageSize ?? defaultPageSize;
  }

  async head(agentId: string): Promise<ChainBase | undefined | typeof unreadable> {
    try {
      await this.#refresh();
      const result = await this.#client.search<{ ci_audit?: { chain?: { seq?: number; hash?: string } } }>({
        index: this.#pattern,
        ignore_unavailable: true,
        allow_no_indices: true,
        size: 1,
        query: { bool: { filter: [{ term: { [chainField.agentId]: agentId } }, { exists: { field: chainField.seq } }] } },
        sort: [{ [chainField.seq]: { order: 'desc' } }],
        _source: [chainField.seq, chainField.hash],
      });
      const chain = result.hits.hits[0]?._source?.ci_audit?.chain;
      if (chain?.seq === undefined) return undefined;
      return { seq: chain.seq, hash: chain.hash, docId: chainDocumentId(agentId, chain.seq) };
    } catch (err) {
      if (statusOf(err) === 403) return unreadable;
      throw toEsError(err, `reading the chain head of agent ${agentId}`, this.#url, 'CIA_ERR_ES_UNAVAILABLE');
    }
  }

  /**
   * Search sees what the last refresh made visible (up to a second ago): records indexed just
   * before a restart, or by another instance, would be missed. One refresh, shared by the lookups of
   * the same moment, makes them visible. Without the `maintenance` privilege it is skipped.
   * A failed refresh fails the lookup like the search would.
   */
  async #refresh(): Promise<void> {
    if (this.#refreshing === undefined || performance.now() - this.#refreshedAt >= minRefreshIntervalMs) {
      this.#refreshedAt = performance.now();
      this.#refreshing = this.#client.indices
        .refresh({ index: this.#pattern, ignore_unavailable: true, allow_no_indices: true })
        .then(() => undefined)
        .catch((err: unknown) => {
          // Without it a hole is still checked again at the end of the grace, when the refresh
          // interval has long passed; only the head after a restart may be a second old.
          if (statusOf(err) !== 403) throw err;
        });
    }
    await this.#refreshing;
  }

  /**
   * One range query over the whole of `range`, sorted by seq and paged with search_after on it: one
   * search per `pageSize` documents held (plus the last, short one), however wide the range. A hole
   * paged by fixed windows of seqs cost one search per 10,000 seqs of its width, held or not: 9 * 10^11
   * searches for a record claiming seq 2^53 - 1. Documents at a seq already seen (a re-send after a
   * rollover is a second document at the same seq) are skipped by search_after, as they should be:
   * only the seqs matter. Hits are folded into runs as they come, so memory follows the runs.
   */
  async present(agentId: string, range: SeqRange): Promise<SeqRange[] | typeof unreadable> {
    const runs: SeqRange[] = [];
    try {
      await this.#refresh();
      let after: number | undefined;
      for (;;) {
        const result = await this.#client.search({
          index: this.#pattern,
          ignore_unavailable: true,
          allow_no_indices: true,
          size: this.#pageSize,
          _source: false,
          track_total_hits: false,
          query: { bool: { filter: [{ term: { [chainField.agentId]: agentId } }, { range: { [chainField.seq]: { gte: range.first, lte: range.last } } }] } },
          sort: [{ [chainField.seq]: { order: 'asc', unmapped_type: 'long' } }],
          ...(after === undefined ? {} : { search_after: [after] }),
        });
        const hits = result.hits.hits;
        for (const hit of hits) {
          const seq = hit.sort?.[0];
          if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < range.first || seq > range.last) continue;
          const run = runs.at(-1);
          if (run !== undefined && seq <= run.last + 1) run.last = Math.max(run.last, seq);
          else runs.push({ first: seq, last: seq });
        }
        const last = hits.at(-1)?.sort?.[0];
        // A short page is the last; a sort value that does not move on (never, for a long) would loop.
        if (hits.length < this.#pageSize || typeof last !== 'number' || (after !== undefined && last <= after)) break;
        after = last;
      }
    } catch (err) {
      if (statusOf(err) === 403) return unreadable;
      throw toEsError(err, `looking up seqs ${range.first}-${range.last} of agent ${agentId}`, this.#url, 'CIA_ERR_ES_UNAVAILABLE');
    }
    return runs;
  }
}
