// Retention decisions, and the data stream lifecycle and ILM request bodies checked against the
// documented APIs: the test cluster has neither service, so instead the official client (generated
// from Elasticsearch's API specification) serialises the documented call, and ours must send the
// same method, path and body. A real local HTTP server records both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Client } from '@elastic/elasticsearch';
import { aggregatorConfigSchema } from '../../../../config/schema.ts';
import { hasErrorCode } from '../../../../core/errors.ts';
import { planStream } from '../../../../aggregator/retention/enforce.ts';
import type { BackingIndexState } from '../../../../aggregator/retention/enforce.ts';
import {
  checkApply,
  chooseMechanism,
  defaultIlmPolicyName,
  defaultTemplateRetention,
  durationMs,
  ilmPolicyRequest,
  ilmStreamRequest,
  lifecycleRequest,
  resolvePolicies,
  templateRetention,
} from '../../../../aggregator/retention/policy.ts';

void test('durations: d, h, m, s; anything else is a clear error', () => {
  assert.equal(durationMs('400d'), 400 * 86_400_000);
  assert.equal(durationMs('90m'), 90 * 60_000);
  assert.equal(durationMs('45s'), 45_000);
  assert.throws(() => durationMs('1y'), (err: unknown) => hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID') && /"1y" is not a duration/.test(err.message));
  assert.throws(() => aggregatorConfigSchema.parse({ retention: { datasets: { auth: { max_age: '400 days' } } } }), /e\.g\. 400d/);
});

void test('mechanism: lifecycle, else ILM, else own; an unavailable requested one is an error', () => {
  assert.equal(chooseMechanism('auto', { lifecycle: true, ilm: true }), 'lifecycle');
  assert.equal(chooseMechanism('auto', { lifecycle: false, ilm: true }), 'ilm');
  assert.equal(chooseMechanism('auto', { lifecycle: false, ilm: false }), 'own');
  assert.equal(chooseMechanism('ilm', { lifecycle: true, ilm: true }), 'ilm');
  assert.equal(chooseMechanism('own', { lifecycle: true, ilm: true }), 'own');
  assert.throws(() => chooseMechanism('lifecycle', { lifecycle: false, ilm: true }), (err: unknown) => hasErrorCode(err, 'CIA_ERR_RETENTION_UNSUPPORTED'));
});

void test('mechanism: a feature that decides the choice but could not be told (a transient error) chooses nothing', () => {
  const undetermined = (feature: string) => (err: unknown) => hasErrorCode(err, 'CIA_ERR_RETENTION_UNDETERMINED') && err.details?.['feature'] === feature && /HTTP 503/.test(err.message);
  const because = 'GET /_ilm/status: HTTP 503 unavailable';
  assert.throws(() => chooseMechanism('auto', { lifecycle: 'unknown', ilm: false, unknownBecause: because }), undetermined('lifecycle'));
  assert.throws(() => chooseMechanism('auto', { lifecycle: false, ilm: 'unknown', unknownBecause: because }), undetermined('ilm'));
  assert.throws(() => chooseMechanism('ilm', { lifecycle: true, ilm: 'unknown', unknownBecause: because }), undetermined('ilm'));
  // Not needed for the choice: no reason to stop.
  assert.equal(chooseMechanism('auto', { lifecycle: true, ilm: 'unknown' }), 'lifecycle');
  assert.equal(chooseMechanism('own', { lifecycle: 'unknown', ilm: 'unknown' }), 'own');
});

void test('policies per dataset from the config, the default for the rest; integrity is kept longest by default', () => {
  const config = aggregatorConfigSchema.parse({}).retention;
  const policies = resolvePolicies(config, ['generic', 'auth']);
  assert.deepEqual(
    [...policies.values()].map((p) => [p.dataset, p.maxAge, p.compliance]),
    [
      ['auth', '400d', true],
      ['ci', '90d', false],
      ['deadletter', '400d', false],
      ['generic', '90d', false],
      ['integrity', '3650d', true],
    ],
  );
  const longest = Math.max(...[...policies.values()].map((p) => p.maxAgeMs));
  assert.equal(policies.get('integrity')!.maxAgeMs, longest);
});

void test('apply: new, unchanged, longer are fine; shortening a compliance dataset needs force', () => {
  const applied = new Map([
    ['auth', { max_age: '400d', compliance: true, mechanism: 'own' }],
    ['ci', { max_age: '90d', compliance: false, mechanism: 'own' }],
  ]);
  const same = checkApply(applied, applied, false);
  assert.deepEqual(same.map((c) => c.change), ['unchanged', 'unchanged']);
  const desired = new Map([
    ['auth', { max_age: '500d', compliance: true, mechanism: 'own' }],
    ['ci', { max_age: '30d', compliance: false, mechanism: 'own' }],
    ['k8s', { max_age: '30d', compliance: false, mechanism: 'own' }],
  ]);
  assert.deepEqual(checkApply(applied, desired, false).map((c) => c.change), ['longer', 'shorter', 'new']);
  const shorter = new Map([['auth', { max_age: '399d', compliance: true, mechanism: 'own' }]]);
  assert.throws(() => checkApply(applied, shorter, false), (err: unknown) => hasErrorCode(err, 'CIA_ERR_RETENTION_SHORTEN') && err.message.includes('auth (400d -> 399d)') && err.message.includes('--force'));
  assert.equal(checkApply(applied, shorter, true)[0]!.change, 'shorter');
  // Dropping the compliance flag in the same change does not get around it.
  assert.throws(() => checkApply(applied, new Map([['auth', { max_age: '10d', compliance: false, mechanism: 'own' }]]), false), /compliance-bound/);
});

void test('templates carry the lifecycle retention or the ILM policy name, and the applied policy', () => {
  const policies = resolvePolicies(aggregatorConfigSchema.parse({}).retention, []);
  assert.deepEqual(templateRetention(policies, 'lifecycle').get('auth'), { dataRetention: '400d', applied: { max_age: '400d', compliance: true, mechanism: 'lifecycle' } });
  assert.deepEqual(templateRetention(policies, 'ilm').get('ci'), { ilmPolicy: 'ci-audit-ci', applied: { max_age: '90d', compliance: false, mechanism: 'ilm' } });
  assert.deepEqual(templateRetention(policies, 'own').get('ci'), { applied: { max_age: '90d', compliance: false, mechanism: 'own' } });
});

async function recordRequests(t: { after: (fn: () => Promise<void>) => void }) {
  const seen: Array<{ method: string; path: string; body: unknown }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, body: text === '' ? undefined : JSON.parse(text) });
      res.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      res.end('{"acknowledged":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = new Client({ node: `http://127.0.0.1:${(server.address() as { port: number }).port}` });
  t.after(() => client.close());
  return { seen, client };
}

void test('the data stream lifecycle request is the documented PUT _data_stream/<name>/_lifecycle', async (t) => {
  const { seen, client } = await recordRequests(t);
  const ours = lifecycleRequest('logs-ci_audit.auth-default', '400d');
  await client.transport.request({ method: ours.method, path: ours.path, body: ours.body! });
  await client.indices.putDataLifecycle({ name: 'logs-ci_audit.auth-default', data_retention: '400d' });
  assert.deepEqual(seen[0], seen[1]);
  assert.deepEqual(seen[0], { method: 'PUT', path: '/_data_stream/logs-ci_audit.auth-default/_lifecycle', body: { data_retention: '400d' } });
});

void test('the ILM policy request is the documented PUT _ilm/policy/<name>: rollover in hot, delete after max_age', async (t) => {
  const { seen, client } = await recordRequests(t);
  const ours = ilmPolicyRequest('auth', '400d', '1d');
  await client.transport.request({ method: ours.method, path: ours.path, body: ours.body! });
  const body = ours.body as { policy: Parameters<typeof client.ilm.putLifecycle>[0]['policy'] };
  await client.ilm.putLifecycle({ name: 'ci-audit-auth', policy: body.policy! });
  assert.deepEqual(seen[0], seen[1]);
  assert.equal(seen[0]!.path, '/_ilm/policy/ci-audit-auth');
  const phases = (seen[0]!.body as { policy: { phases: Record<string, { min_age: string; actions: Record<string, unknown> }> } }).policy.phases;
  assert.deepEqual(phases.hot!.actions.rollover, { max_age: '1d', max_primary_shard_size: '50gb' });
  assert.deepEqual(phases.delete, { min_age: '400d', actions: { delete: {} } });
});

void test('the default ILM policy and putting an existing stream under a policy are the documented requests', async (t) => {
  const { seen, client } = await recordRequests(t);
  const ours = ilmPolicyRequest(undefined, '90d', '1d');
  await client.transport.request({ method: ours.method, path: ours.path, body: ours.body! });
  const body = ours.body as { policy: Parameters<typeof client.ilm.putLifecycle>[0]['policy'] };
  await client.ilm.putLifecycle({ name: defaultIlmPolicyName, policy: body.policy! });
  assert.deepEqual(seen[0], seen[1]);
  assert.equal(decodeURIComponent(seen[0]!.path), '/_ilm/policy/ci-audit@default');
  assert.deepEqual((seen[0]!.body as { policy: { phases: Record<string, unknown> } }).policy.phases.delete, { min_age: '90d', actions: { delete: {} } });
  const stream = ilmStreamRequest('logs-ci_audit.nginx-default', defaultIlmPolicyName);
  await client.transport.request({ method: stream.method, path: stream.path, body: stream.body! });
  await client.indices.putSettings({ index: 'logs-ci_audit.nginx-default', settings: { index: { lifecycle: { name: defaultIlmPolicyName } } } });
  assert.deepEqual(seen[2], seen[3]);
  assert.deepEqual(seen[2], { method: 'PUT', path: '/logs-ci_audit.nginx-default/_settings', body: { index: { lifecycle: { name: 'ci-audit@default' } } } });
});

void test('the catch-all template carries the default retention of the mechanism', () => {
  assert.deepEqual(defaultTemplateRetention('90d', 'lifecycle'), { dataRetention: '90d', applied: { max_age: '90d', compliance: false, mechanism: 'lifecycle' } });
  assert.deepEqual(defaultTemplateRetention('90d', 'ilm'), { ilmPolicy: 'ci-audit@default', applied: { max_age: '90d', compliance: false, mechanism: 'ilm' } });
  assert.deepEqual(defaultTemplateRetention('90d', 'own'), { applied: { max_age: '90d', compliance: false, mechanism: 'own' } });
});

void test('own enforcement plan: delete backing indices whose newest document expired, block the others, keep the write index', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  const hour = 3_600_000;
  const index = (name: string, newest: number | undefined, extra: Partial<BackingIndexState> = {}): BackingIndexState => ({
    index: name,
    isWrite: false,
    docs: newest === undefined ? 0 : 5,
    ...(newest === undefined ? {} : { newest, oldest: newest - hour }),
    createdAt: now - 10 * hour,
    writeBlocked: false,
    ...extra,
  });
  const plan = planStream(
    [
      index('.ds-1', now - 5 * hour),
      index('.ds-2', now - 2 * hour - 1),
      index('.ds-3', now - 2 * hour + 1),
      index('.ds-4', undefined, { createdAt: now - 3 * hour }),
      index('.ds-5', now - hour, { writeBlocked: true }),
      index('.ds-6', now - 10 * hour, { isWrite: true }),
    ],
    2 * hour,
    '2h',
    24 * hour,
    now,
  );
  assert.deepEqual(plan.delete.map((d) => d.index), ['.ds-1', '.ds-2', '.ds-4']);
  assert.match(plan.delete[0]!.reason, /^newest document 2026-11-26T07:00:00.000Z is older than the retention max_age 2h$/);
  assert.match(plan.delete[2]!.reason, /none; created/);
  assert.deepEqual(plan.block, ['.ds-3']);
  assert.equal(plan.rollover, false, 'the write index is younger than rollover_max_age');
  // An expired write index is never deleted: it is rolled over first.
  const old = planStream([index('.ds-9', now - 48 * hour, { isWrite: true, createdAt: now - 48 * hour })], 2 * hour, '2h', 24 * hour, now);
  assert.deepEqual(old, { rollover: true, block: [], delete: [] });
});
