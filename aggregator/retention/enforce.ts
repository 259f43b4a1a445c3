// ci-audit's own retention enforcement, for clusters without the data stream lifecycle or ILM (the
// minimal distribution of our tests, some self-managed clusters). Per data stream of a namespace:
//   1. roll over when the write index holds documents older than `rollover_max_age` (daily by
//      default), so that whole backing indices can expire;
//   2. put a write block on every backing index but the write index (nothing appends to them any
//      more; the block makes a quiet change by a writer with index privileges fail);
//   3. delete the backing indices whose NEWEST document is older than the dataset's max_age: every
//      document in them is expired. The write index is never deleted.
// Each deletion is first recorded as an integrity event in `logs-ci_audit.integrity-<namespace>`
// (what, why, which time range, how many documents), with a deterministic _id: if the event cannot
// be written, nothing is deleted; if the deletion then fails, the next run retries it and the event
// stays single. The run holds the leader lock (lock.ts) so that several aggregators do not race.
import type { Client } from '@elastic/elasticsearch';
import { CiAuditError, hasErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redactUrl } from '../../core/secrets.ts';
import { dataStreamName, integrityDataset } from '../../core/wire.ts';
import { toEsError } from '../index/es-errors.ts';
import { acquireLock } from './lock.ts';
import type { DatasetPolicy } from './policy.ts';

export interface BackingIndexState {
  index: string;
  isWrite: boolean;
  docs: number;
  /** Newest and oldest `@timestamp` in ms since the epoch; undefined when empty. */
  newest?: number;
  oldest?: number;
  createdAt: number;
  writeBlocked: boolean;
}

export interface Deletion {
  index: string;
  newest?: number;
  oldest?: number;
  docs: number;
  reason: string;
}

export interface StreamPlan {
  rollover: boolean;
  block: string[];
  delete: Deletion[];
}

/** What to do with one data stream's backing indices. A pure function. */
export function planStream(indices: readonly BackingIndexState[], maxAgeMs: number, maxAge: string, rolloverMaxAgeMs: number, now: number): StreamPlan {
  const plan: StreamPlan = { rollover: false, block: [], delete: [] };
  for (const state of indices) {
    if (state.isWrite) {
      const since = Math.min(state.createdAt, state.oldest ?? state.createdAt);
      plan.rollover = state.docs > 0 && now - since >= rolloverMaxAgeMs;
      continue;
    }
    // An empty old index is judged by its creation time.
    const newest = state.newest ?? state.createdAt;
    if (now - newest > maxAgeMs) {
      const age = `newest document ${state.newest === undefined ? '(none; created ' + new Date(state.createdAt).toISOString() + ')' : new Date(newest).toISOString()}`;
      plan.delete.push({
        index: state.index,
        docs: state.docs,
        ...(state.newest === undefined ? {} : { newest: state.newest }),
        ...(state.oldest === undefined ? {} : { oldest: state.oldest }),
        reason: `${age} is older than the retention max_age ${maxAge}`,
      });
    } else if (!state.writeBlocked) {
      plan.block.push(state.index);
    }
  }
  return plan;
}

export interface EnforceOptions {
  client: Client;
  /** For messages only (redacted there). */
  url: string;
  namespace: string;
  /** Policy of every dataset; data streams of other datasets use `fallback`. */
  policies: ReadonlyMap<string, DatasetPolicy>;
  fallback: DatasetPolicy;
  rolloverMaxAgeMs: number;
  logger: Logger;
  now?: () => Date;
  /** How long the leader lock is held at most (a crashed holder's lock expires). Default: 10 min. */
  lockTtlMs?: number;
}

export interface EnforceReport {
  /** False when another aggregator held the leader lock: nothing was done. */
  leader: boolean;
  rolledOver: string[];
  blocked: string[];
  deleted: Array<Deletion & { dataStream: string }>;
  /**
   * Data streams left alone this run because their document ranges could not be read completely
   * (CIA_ERR_RETENTION_PARTIAL): nothing of them was rolled over, blocked or deleted.
   */
  skipped: Array<{ dataStream: string; reason: string }>;
}

export async function enforceRetention(options: EnforceOptions): Promise<EnforceReport> {
  const { client, url, namespace, logger } = options;
  const now = options.now ?? (() => new Date());
  const report: EnforceReport = { leader: false, rolledOver: [], blocked: [], deleted: [], skipped: [] };
  const lock = await acquireLock(client, url, `retention-${namespace}`, options.lockTtlMs ?? 600_000, now);
  if (lock === undefined) {
    logger.info({ namespace }, 'retention: another aggregator holds the leader lock; skipping this run');
    return report;
  }
  report.leader = true;
  try {
    const streams = await listStreams(client, url, `logs-ci_audit.*-${namespace}`);
    for (const stream of streams) {
      const dataset = datasetOf(stream, namespace);
      const policy = options.policies.get(dataset) ?? { ...options.fallback, dataset };
      // An incomplete range search would make an index holding documents look empty (and be judged
      // by its creation date): such a stream is left alone this run, the others go on.
      const statesOrSkip = async (): Promise<BackingIndexState[] | undefined> => {
        try {
          return await backingStates(client, url, stream);
        } catch (err) {
          if (!hasErrorCode(err, 'CIA_ERR_RETENTION_PARTIAL')) throw err;
          report.skipped.push({ dataStream: stream, reason: err.message });
          logger.warn({ code: err.code, data_stream: stream, error: err.message }, 'retention: cannot tell the document ranges of a data stream; nothing of it is deleted this run, retrying at the next run');
          return undefined;
        }
      };
      let states = await statesOrSkip();
      if (states === undefined) continue;
      let plan = planStream(states, policy.maxAgeMs, policy.maxAge, options.rolloverMaxAgeMs, now().getTime());
      if (plan.rollover) {
        await call(() => client.indices.rollover({ alias: stream }), `rolling over ${stream}`, url);
        report.rolledOver.push(stream);
        states = await statesOrSkip();
        if (states === undefined) continue;
        plan = planStream(states, policy.maxAgeMs, policy.maxAge, options.rolloverMaxAgeMs, now().getTime());
      }
      for (const index of plan.block) {
        await call(() => client.indices.addBlock({ index, block: 'write' }), `write-blocking ${index}`, url);
        report.blocked.push(index);
      }
      for (const deletion of plan.delete) {
        await recordDeletion(client, url, namespace, stream, policy, deletion, now());
        await call(() => client.indices.delete({ index: deletion.index }), `deleting ${deletion.index}`, url);
        report.deleted.push({ ...deletion, dataStream: stream });
        logger.info({ data_stream: stream, index: deletion.index, docs: deletion.docs, reason: deletion.reason }, 'retention: deleted an expired backing index');
      }
    }
  } finally {
    await lock.release();
  }
  return report;
}

/** The integrity event of a deletion, written before it (deterministic _id: written once). */
export function deletionEvent(namespace: string, stream: string, policy: DatasetPolicy, deletion: Deletion, at: Date): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const range = deletion.oldest === undefined ? 'no documents' : `${deletion.docs} documents from ${iso(deletion.oldest)} to ${iso(deletion.newest)}`;
  return {
    '@timestamp': at.toISOString(),
    message: `retention deletes backing index ${deletion.index} of ${stream} (${range}): ${deletion.reason}`,
    event: { kind: 'event', category: ['configuration'], type: ['deletion'], action: 'retention-delete-index', reason: deletion.reason, dataset: `ci_audit.${integrityDataset}` },
    data_stream: { type: 'logs', dataset: `ci_audit.${integrityDataset}`, namespace },
    ci_audit: {
      retention: {
        index: deletion.index,
        data_stream: stream,
        max_age: policy.maxAge,
        docs: deletion.docs,
        mechanism: 'own',
        // The covering checkpoint: none exists yet (verification issue); null says "not recorded", not "none".
        checkpoint: null,
        ...(deletion.oldest === undefined ? {} : { oldest: iso(deletion.oldest), newest: iso(deletion.newest) }),
      },
    },
  };
}

async function recordDeletion(client: Client, url: string, namespace: string, stream: string, policy: DatasetPolicy, deletion: Deletion, at: Date): Promise<void> {
  const index = dataStreamName(integrityDataset, namespace);
  try {
    await client.create({ index, id: `retention-delete:${deletion.index}`, document: deletionEvent(namespace, stream, policy, deletion, at), refresh: 'true' });
  } catch (err) {
    if ((err as { meta?: { statusCode?: number } }).meta?.statusCode === 409) return; // recorded by an earlier run whose delete failed
    const error = toEsError(err, `recording the deletion of ${deletion.index} in ${index}`, url, 'CIA_ERR_RETENTION_ENFORCE');
    throw new CiAuditError('CIA_ERR_RETENTION_ENFORCE', `${error.message}; ${deletion.index} was NOT deleted`, { details: { index: deletion.index } });
  }
}

async function call<T>(fn: () => Promise<T>, what: string, url: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toEsError(err, what, url, 'CIA_ERR_RETENTION_ENFORCE');
  }
}

/** Data streams matching `pattern` (resolve index API: present on every distribution, unlike _data_stream). */
export async function listStreams(client: Client, url: string, pattern: string): Promise<string[]> {
  const resolved = await call(() => client.indices.resolveIndex({ name: pattern, expand_wildcards: 'all' }), `listing ${pattern}`, url);
  return resolved.data_streams.map((s) => s.name).sort();
}

export function datasetOf(stream: string, namespace: string): string {
  return stream.slice('logs-ci_audit.'.length, stream.length - namespace.length - 1);
}

/**
 * Every backing index of `stream` with its document range, creation time and write block. The range
 * search must cover every shard: Elasticsearch answers 200 with partial results when a shard fails
 * (`allow_partial_search_results` defaults to true), and a backing index missing from them would look
 * empty. So partial results are refused (a shard failure then fails the search), and a response that
 * still reports a failed or skipped shard, or a timeout, throws CIA_ERR_RETENTION_PARTIAL.
 */
export async function backingStates(client: Client, url: string, stream: string): Promise<BackingIndexState[]> {
  const resolved = await call(() => client.indices.resolveIndex({ name: stream, expand_wildcards: 'all' }), `resolving ${stream}`, url);
  const backing = ([] as string[]).concat(resolved.data_streams[0]?.backing_indices ?? []);
  if (backing.length === 0) return [];
  const settings = await call(() => client.indices.getSettings({ index: backing, flat_settings: true, expand_wildcards: 'all' }), `reading settings of ${stream}`, url);
  const search = await call(
    () =>
      client.search({
        index: stream,
        size: 0,
        allow_partial_search_results: false,
        aggs: { by_index: { terms: { field: '_index', size: 10_000 }, aggs: { newest: { max: { field: '@timestamp' } }, oldest: { min: { field: '@timestamp' } } } } },
      }),
    `reading the document ranges of ${stream}`,
    url,
  );
  const incomplete = incompleteSearch(search);
  if (incomplete !== undefined) {
    throw new CiAuditError('CIA_ERR_RETENTION_PARTIAL', `reading the document ranges of ${stream} at ${redactUrl(url)} did not cover every shard (${incomplete}); none of its backing indices is deleted this run`, {
      details: { data_stream: stream },
    });
  }
  const buckets = (search.aggregations?.by_index as { buckets?: Array<{ key: string; doc_count: number; newest: { value: number | null }; oldest: { value: number | null } }> } | undefined)?.buckets ?? [];
  const byIndex = new Map(buckets.map((b) => [b.key, b]));
  return backing.map((index, i) => {
    const flat = (settings[index]?.settings ?? {}) as Record<string, unknown>;
    const bucket = byIndex.get(index);
    return {
      index,
      isWrite: i === backing.length - 1,
      docs: bucket?.doc_count ?? 0,
      ...(bucket?.newest.value == null ? {} : { newest: bucket.newest.value }),
      ...(bucket?.oldest.value == null ? {} : { oldest: bucket.oldest.value }),
      createdAt: Number(flat['index.creation_date'] ?? 0),
      writeBlocked: flat['index.blocks.write'] === 'true' || flat['index.blocks.write'] === true,
    };
  });
}

/** Why a search response does not cover every shard (failed, skipped, timed out), or undefined. A pure function. */
export function incompleteSearch(response: { timed_out?: boolean; _shards?: { total?: number; successful?: number; skipped?: number; failed?: number; failures?: Array<{ index?: string | null; reason?: { type?: string } }> } }): string | undefined {
  const shards = response._shards;
  const why: string[] = [];
  if (response.timed_out === true) why.push('timed out');
  if (shards === undefined) why.push('no shard counts in the response');
  else {
    const failed = shards.failed ?? 0;
    const skipped = shards.skipped ?? 0;
    if (failed > 0) {
      const first = shards.failures?.[0];
      why.push(`${failed} of ${shards.total ?? '?'} shards failed${first === undefined ? '' : `, e.g. ${first.index ?? '?'}: ${first.reason?.type ?? 'error'}`}`);
    }
    if (skipped > 0) why.push(`${skipped} of ${shards.total ?? '?'} shards skipped`);
    if (failed === 0 && skipped === 0 && shards.total !== undefined && shards.successful !== undefined && shards.successful < shards.total) why.push(`${shards.successful} of ${shards.total} shards answered`);
  }
  return why.length === 0 ? undefined : why.join('; ');
}
