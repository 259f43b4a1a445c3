// `ci-audit verify` end to end, without the command line: reads the chained records and the
// checkpoint documents of the chosen data streams in (agent.id, seq) order through one point in
// time, merges the anchor file's statements into the same order and feeds all of it to the
// ChainChecker. The caller gets findings and notices through its sink as they are found.
import type { Client } from '@elastic/elasticsearch';
import type { QueryDslQueryContainer, SortCombinations } from '@elastic/elasticsearch/lib/api/types';
import { toEsError } from '../../aggregator/index/es-errors.ts';
import { chainField, checkpointField } from '../../core/integrity/document.ts';
import { attestationFromDocument, type Attestation } from './checkpoints.ts';
import { ChainChecker } from './chain-check.ts';
import type { VerifySink } from './findings.ts';
import type { PublicKeys } from './keys.ts';
import { closePit, openPit, readHits, type Hit } from './read.ts';

export interface VerifyOptions {
  /** Namespace of the data streams (default: every namespace). */
  namespace?: string;
  /** Only these agents (default: all). */
  agents?: readonly string[];
  /** @timestamp range (ISO 8601): the chains are checked over the sequence numbers of the records in it. */
  from?: string;
  to?: string;
  keys: PublicKeys;
  /** Anchored statements per agent, in sequence order (anchor.ts). */
  anchor?: Map<string, Attestation[]>;
  pageSize?: number;
  /** Called every `progressEvery` records and at the end. */
  onProgress?: (read: number, estimate: number) => void;
  progressEvery?: number;
}

export interface VerifySummary {
  records: number;
  agents: number;
  checkpoints: number;
  findings: number;
  notices: number;
  seconds: number;
  records_per_second: number;
}

/** UTF-8 byte order, which is how Elasticsearch sorts keyword values. */
function compareAgents(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

type Bounds = Map<string, { min: number; max: number }>;

/** Per agent, the sequence numbers of its chained records in the time range. */
async function seqBounds(client: Client, url: string, pit: string, filter: QueryDslQueryContainer[]): Promise<Bounds> {
  const bounds: Bounds = new Map();
  let after: Record<string, string | number | null> | undefined;
  for (;;) {
    let response;
    try {
      response = await client.search({
        pit: { id: pit, keep_alive: '5m' },
        size: 0,
        query: { bool: { filter } },
        aggs: {
          agents: {
            composite: { size: 1000, sources: [{ agent: { terms: { field: chainField.agentId } } }], ...(after === undefined ? {} : { after }) },
            aggs: { min: { min: { field: chainField.seq } }, max: { max: { field: chainField.seq } } },
          },
        },
      });
    } catch (err) {
      throw toEsError(err, 'finding the chains in the time range', url, 'CIA_ERR_SEARCH_QUERY');
    }
    const agg = (response.aggregations?.agents ?? {}) as { buckets?: { key: { agent: string }; min: { value: number | null }; max: { value: number | null } }[]; after_key?: Record<string, string> };
    for (const b of agg.buckets ?? []) {
      if (b.min.value !== null && b.max.value !== null) bounds.set(b.key.agent, { min: b.min.value, max: b.max.value });
    }
    if (agg.after_key === undefined || (agg.buckets ?? []).length === 0) return bounds;
    after = agg.after_key;
  }
}

function boundsFilter(bounds: Bounds, seqField: string): QueryDslQueryContainer {
  return {
    bool: {
      should: [...bounds].map(([agent, b]) => ({ bool: { filter: [{ term: { [chainField.agentId]: agent } }, { range: { [seqField]: { gte: b.min, lte: b.max } } }] } })),
      minimum_should_match: 1,
    },
  };
}

type Item = { kind: 0; agent: string; seq: number; hit: Hit } | { kind: 1 | 2; agent: string; seq: number; att: Attestation };

/** One sorted stream as items, with one item of look-ahead. */
class Cursor {
  readonly #source: AsyncIterator<Item> | Iterator<Item>;
  head: Item | undefined;
  constructor(source: AsyncIterator<Item> | Iterator<Item>) {
    this.#source = source;
  }
  async next(): Promise<void> {
    const r = await this.#source.next();
    this.head = r.done === true ? undefined : r.value;
  }
}

function before(a: Item, b: Item): boolean {
  const byAgent = compareAgents(a.agent, b.agent);
  if (byAgent !== 0) return byAgent < 0;
  if (a.seq !== b.seq) return a.seq < b.seq;
  return a.kind < b.kind;
}

export async function verifyChains(client: Client, url: string, options: VerifyOptions, sink: VerifySink): Promise<VerifySummary> {
  const started = process.hrtime.bigint();
  const index = `logs-ci_audit.*-${options.namespace ?? '*'}`;
  const pageSize = options.pageSize ?? 2000;
  const ranged = options.from !== undefined || options.to !== undefined;
  const checker = new ChainChecker(sink, { keys: options.keys, fromStart: options.from === undefined, toEnd: options.to === undefined });
  const agentFilter: QueryDslQueryContainer[] = options.agents === undefined || options.agents.length === 0 ? [] : [{ terms: { [chainField.agentId]: [...options.agents] } }];
  const wanted = (agent: string): boolean => options.agents === undefined || options.agents.length === 0 || options.agents.includes(agent);

  const pit = await openPit(client, url, index);
  try {
    let recordFilter: QueryDslQueryContainer[] = [{ exists: { field: chainField.seq } }, { exists: { field: chainField.agentId } }, ...agentFilter];
    let checkpointFilter: QueryDslQueryContainer[] = [{ exists: { field: checkpointField.type } }, ...agentFilter];
    let anchor = options.anchor;
    if (ranged && pit !== undefined) {
      const range = { range: { '@timestamp': { ...(options.from === undefined ? {} : { gte: options.from }), ...(options.to === undefined ? {} : { lte: options.to }) } } };
      const bounds = await seqBounds(client, url, pit, [...recordFilter, range]);
      if (bounds.size === 0) return summary(checker, started);
      recordFilter = [...recordFilter, boundsFilter(bounds, chainField.seq)];
      checkpointFilter = [...checkpointFilter, boundsFilter(bounds, checkpointField.seq)];
      if (anchor !== undefined) {
        const inRange = new Map<string, Attestation[]>();
        for (const [agent, b] of bounds) {
          const list = anchor.get(agent)?.filter((a) => a.statement.seq >= b.min && a.statement.seq <= b.max);
          if (list !== undefined && list.length > 0) inRange.set(agent, list);
        }
        anchor = inRange;
      }
    }

    let estimate = 0;
    if (pit !== undefined) {
      try {
        const counted = await client.search({ pit: { id: pit, keep_alive: '5m' }, size: 0, track_total_hits: true, query: { bool: { filter: recordFilter } } });
        const total = counted.hits.total;
        estimate = typeof total === 'number' ? total : (total?.value ?? 0);
      } catch (err) {
        throw toEsError(err, 'counting the chained records', url, 'CIA_ERR_SEARCH_QUERY');
      }
    }

    const records = async function* (): AsyncGenerator<Item> {
      if (pit === undefined) return;
      const sort: SortCombinations[] = [{ [chainField.agentId]: 'asc' }, { [chainField.seq]: 'asc' }];
      for await (const hit of readHits(client, url, { pit, query: { bool: { filter: recordFilter } }, sort, pageSize })) {
        const source = hit._source ?? {};
        const agent = (source.agent as { id?: unknown } | undefined)?.id;
        const seq = ((source.ci_audit as { chain?: { seq?: unknown } } | undefined)?.chain?.seq);
        yield { kind: 0, agent: typeof agent === 'string' ? agent : '', seq: typeof seq === 'number' ? seq : 0, hit };
      }
    };
    const checkpoints = async function* (): AsyncGenerator<Item> {
      if (pit === undefined) return;
      const sort: SortCombinations[] = [{ [chainField.agentId]: 'asc' }, { [checkpointField.seq]: 'asc' }, { [checkpointField.time]: 'asc' }];
      for await (const hit of readHits(client, url, { pit, query: { bool: { filter: checkpointFilter } }, sort, pageSize })) {
        const att = attestationFromDocument(hit);
        if ('malformed' in att) {
          checker.malformedCheckpoint(att.agent, att.where, att.malformed);
          continue;
        }
        yield { kind: 1, agent: att.statement.agent, seq: att.statement.seq, att };
      }
    };
    const anchored = function* (): Generator<Item> {
      if (anchor === undefined) return;
      const agents = [...anchor.keys()].filter(wanted).sort(compareAgents);
      for (const agent of agents) for (const att of anchor.get(agent) ?? []) yield { kind: 2, agent, seq: att.statement.seq, att };
    };

    const cursors = [new Cursor(records()), new Cursor(checkpoints()), new Cursor(anchored())];
    for (const c of cursors) await c.next();
    const every = options.progressEvery ?? 5000;
    let read = 0;
    for (;;) {
      let pick: Cursor | undefined;
      for (const c of cursors) if (c.head !== undefined && (pick?.head === undefined || before(c.head, pick.head))) pick = c;
      if (pick?.head === undefined) break;
      const item = pick.head;
      if (item.kind === 0) {
        checker.record(item.hit);
        if (++read % every === 0) options.onProgress?.(read, estimate);
      } else {
        checker.attestation(item.att);
      }
      await pick.next();
    }
    checker.end();
    options.onProgress?.(read, estimate);
    return summary(checker, started);
  } finally {
    if (pit !== undefined) await closePit(client, pit);
  }
}

function summary(checker: ChainChecker, started: bigint): VerifySummary {
  const stats = checker.stats;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ...stats, seconds: Math.round(seconds * 1000) / 1000, records_per_second: seconds > 0 ? Math.round(stats.records / seconds) : 0 };
}
