// Own enforcement against a fake Elasticsearch answering the range search like a cluster whose shard
// failed: 200 with partial results (allow_partial_search_results defaults to true), or with a
// timeout. An index missing from such an answer would look empty and be deleted by its creation date.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { enforceRetention, incompleteSearch } from '../../../../aggregator/retention/enforce.ts';
import { fakeElasticsearch } from './fake-es.ts';
import type { Route } from './fake-es.ts';

const day = 86_400_000;
const now = Date.parse('2026-06-01T00:00:00Z');
const silent = pino({ level: 'silent' });

/** Two data streams, each an old backing index (created 500 days ago) and a write index. */
const streams: Record<string, string[]> = {
  'logs-ci_audit.auth-default': ['.ds-auth-old', '.ds-auth-write'],
  'logs-ci_audit.ci-default': ['.ds-ci-old', '.ds-ci-write'],
};

function routes(searchOf: (stream: string) => unknown): Route[] {
  return [
    { method: 'PUT', path: /^\/ci-audit-locks\/_doc\//, answer: () => ({ status: 201, body: { _seq_no: 0, _primary_term: 1, result: 'created' } }) },
    { method: 'DELETE', path: /^\/ci-audit-locks\/_doc\//, answer: () => ({ body: { result: 'deleted' } }) },
    {
      method: 'GET',
      path: /^\/_resolve\/index\/(.+)$/,
      answer: (_req, m) => {
        const names = m[1]!.includes('*') ? Object.keys(streams) : [m[1]!];
        return { body: { indices: [], aliases: [], data_streams: names.map((name) => ({ name, backing_indices: streams[name], timestamp_field: '@timestamp' })) } };
      },
    },
    {
      method: 'GET',
      path: /^\/([^/_][^/]*)\/_settings$/,
      answer: (_req, m) =>
        ({
          body: Object.fromEntries(
            m[1]!.split(',').map((index) => [index, { settings: { 'index.creation_date': String(index.endsWith('-old') ? now - 500 * day : now - 3_600_000), ...(index.endsWith('-old') ? { 'index.blocks.write': 'true' } : {}) } }]),
          ),
        }),
    },
    { method: 'POST', path: /^\/(logs-ci_audit\.[^/]+)\/_search$/, answer: (_req, m) => ({ body: searchOf(m[1]!) }) },
    { method: 'PUT', path: /^\/logs-ci_audit\.integrity-default\/_create\//, answer: () => ({ status: 201, body: { result: 'created' } }) },
    { method: 'DELETE', path: /^\/(\.ds-[^/]+)$/, answer: () => ({ body: { acknowledged: true } }) },
  ];
}

const bucket = (key: string, newest: number) => ({ key, doc_count: 3, newest: { value: newest }, oldest: { value: newest - 3_600_000 } });
const complete = { total: 2, successful: 2, skipped: 0, failed: 0 };

function options(client: Parameters<typeof enforceRetention>[0]['client'], url: string) {
  return {
    client,
    url,
    namespace: 'default',
    policies: new Map([['auth', { dataset: 'auth', maxAge: '400d', maxAgeMs: 400 * day, compliance: true }]]),
    fallback: { dataset: '', maxAge: '90d', maxAgeMs: 90 * day, compliance: false },
    rolloverMaxAgeMs: day,
    logger: silent,
    now: () => new Date(now),
  };
}

void test('a range search with a failed shard deletes nothing of that data stream; the other streams are enforced', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(
    t,
    routes((stream) =>
      stream.startsWith('logs-ci_audit.auth')
        ? {
            // The shard of .ds-auth-old failed: it holds documents up to 10 days old, but is missing from the buckets.
            took: 3,
            timed_out: false,
            _shards: { total: 2, successful: 1, skipped: 0, failed: 1, failures: [{ shard: 0, index: '.ds-auth-old', reason: { type: 'node_disconnected_exception', reason: 'x' } }] },
            hits: { total: { value: 3, relation: 'eq' }, hits: [] },
            aggregations: { by_index: { buckets: [bucket('.ds-auth-write', now - 1000)] } },
          }
        : {
            took: 3,
            timed_out: false,
            _shards: complete,
            hits: { total: { value: 6, relation: 'eq' }, hits: [] },
            aggregations: { by_index: { buckets: [bucket('.ds-ci-old', now - 200 * day), bucket('.ds-ci-write', now - 1000)] } },
          },
    ),
  );
  const report = await enforceRetention(options(client, url));
  assert.deepEqual(report.deleted.map((d) => d.index), ['.ds-ci-old'], 'the complete stream is enforced, the partial one left alone');
  assert.deepEqual(report.skipped.map((s) => s.dataStream), ['logs-ci_audit.auth-default']);
  assert.match(report.skipped[0]!.reason, /did not cover every shard \(1 of 2 shards failed, e\.g\. \.ds-auth-old: node_disconnected_exception\)/);
  assert.ok(!seen.some((r) => r.method === 'DELETE' && r.path === '/.ds-auth-old'), 'the index whose shard failed was deleted');
  assert.ok(!seen.some((r) => r.path.includes('retention-delete:.ds-auth-old')), 'a deletion event was written for it');
  // Partial results are refused up front, too.
  const searches = seen.filter((r) => r.path.endsWith('/_search'));
  assert.equal(searches.length, 2);
  for (const s of searches) assert.equal(s.query.get('allow_partial_search_results'), 'false');
});

void test('a timed-out range search deletes nothing', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(
    t,
    routes(() => ({ took: 30_000, timed_out: true, _shards: complete, hits: { hits: [] }, aggregations: { by_index: { buckets: [] } } })),
  );
  const report = await enforceRetention(options(client, url));
  assert.deepEqual(report.deleted, []);
  assert.deepEqual(report.skipped.map((s) => s.dataStream), ['logs-ci_audit.auth-default', 'logs-ci_audit.ci-default']);
  assert.ok(!seen.some((r) => r.method === 'DELETE' && r.path.startsWith('/.ds-')));
});

void test('incompleteSearch: failed, skipped or missing shards and timeouts are incomplete; a full answer is not', () => {
  assert.equal(incompleteSearch({ timed_out: false, _shards: complete }), undefined);
  assert.match(incompleteSearch({ timed_out: false, _shards: { total: 3, successful: 3, skipped: 1, failed: 0 } })!, /1 of 3 shards skipped/);
  assert.match(incompleteSearch({ timed_out: false, _shards: { total: 3, successful: 2, skipped: 0, failed: 1 } })!, /1 of 3 shards failed/);
  assert.match(incompleteSearch({ timed_out: false, _shards: { total: 3, successful: 2, skipped: 0, failed: 0 } })!, /2 of 3 shards answered/);
  assert.match(incompleteSearch({ timed_out: true, _shards: complete })!, /timed out/);
  assert.match(incompleteSearch({})!, /no shard counts/);
});
