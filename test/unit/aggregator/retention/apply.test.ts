// `retention apply` against a fake Elasticsearch with ILM or the data stream lifecycle (the test
// cluster has neither): every ci_audit data stream, also of a dataset nobody configured and one
// created later, must get retention.default_max_age (docs/storage.md#retention: "others 90d").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregatorConfigSchema } from '../../../../config/schema.ts';
import { applyRetention } from '../../../../aggregator/retention/apply.ts';
import { fakeElasticsearch } from './fake-es.ts';
import type { Route, SeenRequest } from './fake-es.ts';

const notFound = { status: 404, body: { error: { type: 'resource_not_found_exception', reason: 'not found' }, status: 404 } };
const acknowledged = { body: { acknowledged: true } };

/** A cluster without ci-audit templates, holding one data stream of a dataset no config names (nginx). */
const routes: Route[] = [
  { method: 'GET', path: /^\/_index_template\//, answer: () => notFound },
  { method: 'GET', path: /^\/_component_template\//, answer: () => notFound },
  { method: 'PUT', path: /^\/_index_template\//, answer: () => acknowledged },
  { method: 'PUT', path: /^\/_component_template\//, answer: () => acknowledged },
  { method: 'PUT', path: /^\/_ilm\/policy\//, answer: () => acknowledged },
  { method: 'PUT', path: /^\/_data_stream\/[^/]+\/_lifecycle$/, answer: () => acknowledged },
  { method: 'PUT', path: /^\/logs-ci_audit\.[^/]+\/_settings$/, answer: () => acknowledged },
  {
    method: 'GET',
    path: /^\/_resolve\/index\//,
    answer: () => ({ body: { indices: [], aliases: [], data_streams: [{ name: 'logs-ci_audit.nginx-default', backing_indices: ['.ds-logs-ci_audit.nginx-default-2026.06.01-000001'], timestamp_field: '@timestamp' }] } }),
  },
];

const config = aggregatorConfigSchema.parse({ elasticsearch: { url: 'http://es:9200', namespace: 'default' }, retention: { mechanism: 'auto' } });

function put(seen: SeenRequest[], path: string): Record<string, unknown> | undefined {
  return seen.find((r) => r.method === 'PUT' && r.path === path)?.body as Record<string, unknown> | undefined;
}

void test('ILM: a default policy (others: default_max_age) referenced by the catch-all template, and set on existing streams of other datasets', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(t, routes);
  const report = await applyRetention({ client, url, config, force: false, capabilities: { lifecycle: false, ilm: true } });
  assert.equal(report.mechanism, 'ilm');
  assert.equal(config.retention.default_max_age, '90d');
  const policy = put(seen, '/_ilm/policy/ci-audit@default') as { policy: { phases: Record<string, unknown> } } | undefined;
  assert.ok(policy, `no default ILM policy; sent: ${seen.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  assert.deepEqual(policy.policy.phases.delete, { min_age: '90d', actions: { delete: {} } });
  // The catch-all template matches logs-ci_audit.<any dataset>-<ns>: new streams of new datasets get the policy.
  const catchAll = put(seen, '/_index_template/ci-audit-logs') as { index_patterns: string[]; template?: { settings?: Record<string, unknown> } };
  assert.deepEqual(catchAll.index_patterns, ['logs-ci_audit.*-*']);
  assert.deepEqual(catchAll.template?.settings, { 'index.lifecycle.name': 'ci-audit@default' });
  // Configured and built-in datasets keep their own policy.
  const auth = put(seen, '/_index_template/ci-audit-logs.auth') as { template?: { settings?: Record<string, unknown> } };
  assert.deepEqual(auth.template?.settings, { 'index.lifecycle.name': 'ci-audit-auth' });
  // The existing nginx stream's backing indices are put under the default policy.
  assert.deepEqual(put(seen, '/logs-ci_audit.nginx-default/_settings'), { index: { lifecycle: { name: 'ci-audit@default' } } });
  // Policies go in before the templates that refer to them.
  const order = seen.filter((r) => r.method === 'PUT').map((r) => r.path);
  assert.ok(order.indexOf('/_ilm/policy/ci-audit@default') < order.indexOf('/_index_template/ci-audit-logs'));
});

void test('data stream lifecycle: the catch-all template carries data_retention default_max_age, so streams created later expire too', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(t, routes);
  const report = await applyRetention({ client, url, config, force: false, capabilities: { lifecycle: true, ilm: true } });
  assert.equal(report.mechanism, 'lifecycle');
  const catchAll = put(seen, '/_index_template/ci-audit-logs') as { template?: { lifecycle?: unknown }; _meta?: { retention?: unknown } };
  assert.deepEqual(catchAll.template?.lifecycle, { data_retention: '90d' });
  assert.deepEqual(catchAll._meta?.retention, { max_age: '90d', compliance: false, mechanism: 'lifecycle' });
  assert.deepEqual(put(seen, '/_data_stream/logs-ci_audit.nginx-default/_lifecycle'), { data_retention: '90d' });
  assert.ok(!seen.some((r) => r.path.startsWith('/_ilm/')), 'no ILM policy under the lifecycle');
});

void test('own enforcement: no lifecycle or ILM in any template, nothing sent for existing streams', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(t, routes);
  const report = await applyRetention({ client, url, config, force: false, capabilities: { lifecycle: false, ilm: false } });
  assert.equal(report.mechanism, 'own');
  assert.deepEqual(report.requests, []);
  const templates = seen.filter((r) => r.method === 'PUT' && r.path.startsWith('/_index_template/')).map((r) => r.body as { template?: unknown });
  assert.ok(templates.length > 0);
  for (const t of templates) assert.equal(t.template, undefined);
});
