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
  /** The seqs of `range` held for the agent. Throws CIA_ERR_ES_UNAVAILABLE when it cannot tell. */
  present(agentId: string, range: SeqRange): Promise<Set<number> | typeof unreadable>;
}

/** Lookups within this many ms share one refresh. */
const minRefreshIntervalMs = 1000;
/** Most seqs asked for in one search. */
const pageSize = 10_000;

export class ElasticsearchChainStore implements ChainStore {
  readonly #client: Client;
  readonly #url: string;
  readonly #pattern: string;
  #refreshing: Promise<void> | undefined;
  #refreshedAt = 0;

  constructor(options: { client: Client; url: string; namespace: string }) {
    this.#client = options.client;
    this.#url = options.url;
    this.#pattern = `logs-ci_audit.*-${options.namespace}`;
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

  async present(agentId: string, range: SeqRange): Promise<Set<number> | typeof unreadable> {
    const found = new Set<number>();
    try {
      await this.#refresh();
      for (let first = range.first; first <= range.last; first += pageSize) {
        const last = Math.min(range.last, first + pageSize - 1);
        const result = await this.#client.search({
          index: this.#pattern,
          ignore_unavailable: true,
          allow_no_indices: true,
          size: last - first + 1,
          _source: false,
          docvalue_fields: [chainField.seq],
          query: { bool: { filter: [{ term: { [chainField.agentId]: agentId } }, { range: { [chainField.seq]: { gte: first, lte: last } } }] } },
        });
        for (const hit of result.hits.hits) {
          const seq = (hit.fields?.[chainField.seq] as number[] | undefined)?.[0];
          if (typeof seq === 'number') found.add(seq);
        }
      }
    } catch (err) {
      if (statusOf(err) === 403) return unreadable;
      throw toEsError(err, `looking up seqs ${range.first}-${range.last} of agent ${agentId}`, this.#url, 'CIA_ERR_ES_UNAVAILABLE');
    }
    return found;
  }
}
