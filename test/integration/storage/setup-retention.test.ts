// Setup, template upgrades, retention apply/show and ci-audit's own retention enforcement against the
// real Elasticsearch in ES_URL (the minimal integ-test distribution: no ILM, no data stream
// lifecycle service, so the own mechanism is what runs; the lifecycle and ILM request bodies are
// checked in test/unit/aggregator/retention against the documented APIs instead).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../config/schema.ts';
import { hasErrorCode } from '../../../core/errors.ts';
import { dataStreamName } from '../../../core/wire.ts';
import { ensureTemplates } from '../../../aggregator/index/setup.ts';
import { buildTemplatePlan, settingsComponentName } from '../../../aggregator/index/templates.ts';
import { applyRetention, detectCapabilities, showRetention } from '../../../aggregator/retention/apply.ts';
import { runSetup } from '../../../aggregator/retention/commands.ts';
import { backingStates, enforceRetention } from '../../../aggregator/retention/enforce.ts';
import { acquireLock } from '../../../aggregator/retention/lock.ts';
import { resolvePolicies } from '../../../aggregator/retention/policy.ts';
import { esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

const silent = pino({ level: 'silent' });

function configFor(url: string, namespace: string, retention: Record<string, unknown> = {}) {
  return aggregatorConfigSchema.parse({ elasticsearch: { url, namespace }, retention });
}

void test('setup installs every template, and a second setup changes nothing', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const config = configFor(url, uniqueNamespace('setup'));
  const first: string[] = [];
  await runSetup({ force: true, out: (l) => first.push(l) }, config);
  assert.ok(first.some((l) => / index_template ci-audit-logs\.auth /.test(l)), first.join('\n'));
  assert.ok(first.some((l) => / component_template ci-audit-logs@mappings /.test(l)));
  const second: string[] = [];
  await runSetup({ out: (l) => second.push(l) }, config);
  const touched = second.filter((l) => /^(created|updated) /.test(l));
  assert.deepEqual(touched, [], 'the second setup changed templates');
  assert.ok(second.filter((l) => /^unchanged /.test(l)).length >= 9, second.join('\n'));
  const caps = await detectCapabilities(es);
  assert.equal(first[0], `retention mechanism: ${caps.lifecycle ? 'lifecycle' : caps.ilm ? 'ilm' : 'own'}`);
});

void test('a template upgrade applies; a newer template of a newer ci-audit is never downgraded', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const plan = buildTemplatePlan();
  await ensureTemplates(es, url, plan);
  const settings = plan.componentTemplates.find((c) => c.name === settingsComponentName)!;
  // What an older ci-audit left: version 1, other settings.
  await es.cluster.putComponentTemplate({ name: settingsComponentName, template: { settings: { 'index.codec': 'default' } }, version: 1, _meta: { managed_by: 'ci-audit', version: 1, digest: 'old' } });
  const upgraded = await ensureTemplates(es, url, plan);
  assert.deepEqual(upgraded.filter((r) => r.action !== 'unchanged').map((r) => `${r.action} ${r.name}`), [`updated ${settingsComponentName}`]);
  const installed = (await es.cluster.getComponentTemplate({ name: settingsComponentName })).component_templates[0]!.component_template;
  assert.equal(installed.version, settings.body.version);
  assert.equal((installed.template.settings as { index?: { codec?: string } }).index?.codec, 'best_compression');
  // A newer version (a newer aggregator's) stays.
  await es.cluster.putComponentTemplate({ name: settingsComponentName, ...settings.body, version: 99, _meta: { ...settings.body._meta, version: 99 } });
  try {
    const kept = await ensureTemplates(es, url, plan);
    assert.deepEqual(kept.find((r) => r.name === settingsComponentName), { kind: 'component_template', name: settingsComponentName, action: 'unchanged', version: 99 });
  } finally {
    await es.cluster.putComponentTemplate({ name: settingsComponentName, ...settings.body });
  }
});

void test('retention config round trip: apply, show, re-apply is a no-op, shortening a compliance dataset needs --force', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const namespace = uniqueNamespace('rt');
  const dataset = `rt_${namespace.slice(-6)}`;
  const long = configFor(url, namespace, { mechanism: 'own', datasets: { [dataset]: { max_age: '30d', compliance: true }, auth: { max_age: '400d', compliance: true } } });
  const first = await applyRetention({ client: es, url, config: long, force: true });
  assert.equal(first.mechanism, 'own');
  assert.equal(first.checks.find((c) => c.dataset === dataset)?.change, 'new');
  const again = await applyRetention({ client: es, url, config: long, force: false });
  assert.equal(again.checks.find((c) => c.dataset === dataset)?.change, 'unchanged');
  assert.deepEqual(again.templates.filter((r) => r.action !== 'unchanged'), []);

  // A data stream of that dataset, so show lists it with its backing index.
  await es.create({ index: dataStreamName(dataset, namespace), id: 'x', document: { '@timestamp': new Date().toISOString(), message: 'x' }, refresh: 'true' });
  const shown = await showRetention(es, url, long);
  const row = shown.streams.find((s) => s.dataStream === dataStreamName(dataset, namespace));
  assert.deepEqual(row, { dataStream: dataStreamName(dataset, namespace), dataset, maxAge: '30d', compliance: true, mechanism: 'own', source: 'applied', backingIndices: 1 });

  const short = configFor(url, namespace, { mechanism: 'own', datasets: { [dataset]: { max_age: '10d', compliance: true }, auth: { max_age: '400d', compliance: true } } });
  await assert.rejects(applyRetention({ client: es, url, config: short, force: false }), (err: unknown) => hasErrorCode(err, 'CIA_ERR_RETENTION_SHORTEN') && err.message.includes(`${dataset} (30d -> 10d)`));
  assert.equal((await showRetention(es, url, long)).streams.find((s) => s.dataset === dataset)?.maxAge, '30d', 'the refused apply changed something');
  const forced = await applyRetention({ client: es, url, config: short, force: true });
  assert.equal(forced.checks.find((c) => c.dataset === dataset)?.change, 'shorter');
  assert.equal((await showRetention(es, url, short)).streams.find((s) => s.dataset === dataset)?.maxAge, '10d');
  // The test cluster lacks both services: asking for one is a clear error, not a silent fallback.
  const caps = await detectCapabilities(es);
  if (!caps.ilm) {
    await assert.rejects(applyRetention({ client: es, url, config: configFor(url, namespace, { mechanism: 'ilm' }), force: true }), (err: unknown) => hasErrorCode(err, 'CIA_ERR_RETENTION_UNSUPPORTED'));
  }
});

async function writeAt(es: ReturnType<typeof esClient>, stream: string, id: string, at: Date): Promise<void> {
  await es.create({ index: stream, id, document: { '@timestamp': at.toISOString(), message: `record ${id}` }, refresh: 'true' });
}

void test('own enforcement: expired backing indices deleted and recorded, younger ones write-blocked, the write index kept; under a leader lock', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  await ensureTemplates(es, url);
  const namespace = uniqueNamespace('ret');
  const stream = dataStreamName('auth', namespace);
  const now = Date.now();
  const hours = (h: number) => new Date(now - h * 3_600_000);
  // Backing indices aged by their documents: 3 h, 2 h, 10 min old; then the write index, fresh.
  await writeAt(es, stream, 'a', hours(3.5));
  await writeAt(es, stream, 'b', hours(3));
  await es.indices.rollover({ alias: stream });
  await writeAt(es, stream, 'c', hours(2));
  await es.indices.rollover({ alias: stream });
  await writeAt(es, stream, 'd', new Date(now - 10 * 60_000));
  await es.indices.rollover({ alias: stream });
  await writeAt(es, stream, 'e', new Date(now));
  const before = await backingStates(es, url, stream);
  assert.equal(before.length, 4);

  const config = configFor(url, namespace, { datasets: { auth: { max_age: '60m', compliance: true } } });
  const policies = resolvePolicies(config.retention, ['auth']);
  const options = {
    client: es,
    url,
    namespace,
    policies,
    fallback: { dataset: '', maxAge: '400d', maxAgeMs: 400 * 86_400_000, compliance: false },
    rolloverMaxAgeMs: 86_400_000,
    logger: silent,
  };

  // Another aggregator holds the lock: this one does nothing.
  const held = await acquireLock(es, url, `retention-${namespace}`, 60_000);
  assert.ok(held);
  const skipped = await enforceRetention(options);
  assert.deepEqual(skipped, { leader: false, rolledOver: [], blocked: [], deleted: [], skipped: [] });
  await held.release();

  const report = await enforceRetention(options);
  assert.equal(report.leader, true);
  assert.deepEqual(report.deleted.map((d) => d.index), [before[0]!.index, before[1]!.index]);
  assert.deepEqual(report.blocked, [before[2]!.index]);
  assert.deepEqual(report.rolledOver, []);
  const after = await backingStates(es, url, stream);
  assert.deepEqual(after.map((s) => s.index), [before[2]!.index, before[3]!.index]);
  assert.equal(after[0]!.writeBlocked, true);
  assert.equal(after[1]!.isWrite, true);
  // The write-blocked index refuses writes, even from a superuser.
  await assert.rejects(es.index({ index: before[2]!.index, id: 'd', document: { '@timestamp': new Date().toISOString(), message: 'tampered' }, if_seq_no: 0, if_primary_term: 1 }), /cluster_block_exception|blocked/);

  // Each deletion is an integrity event: what, why, which range.
  const events = await es.search<{ message: string; ci_audit: { retention: { index: string; docs: number; oldest: string; newest: string; max_age: string } } }>({
    index: dataStreamName('integrity', namespace),
    sort: [{ 'ci_audit.retention.index': 'asc' }],
  });
  const recorded = events.hits.hits.map((h) => h._source!.ci_audit.retention);
  assert.deepEqual(recorded.map((r) => [r.index, r.docs, r.max_age]), [
    [before[0]!.index, 2, '60m'],
    [before[1]!.index, 1, '60m'],
  ]);
  assert.equal(Date.parse(recorded[0]!.oldest), hours(3.5).getTime());
  assert.equal(Date.parse(recorded[0]!.newest), hours(3).getTime());
  assert.match(events.hits.hits[0]!._source!.message, /older than the retention max_age 60m/);

  // Re-running changes nothing.
  const rerun = await enforceRetention(options);
  assert.deepEqual({ ...rerun, leader: true }, { leader: true, rolledOver: [], blocked: [], deleted: [], skipped: [] });

  // A write index holding documents older than rollover_max_age is rolled over (daily rollover).
  await writeAt(es, stream, 'old-in-write', hours(30));
  const rolled = await enforceRetention(options);
  assert.deepEqual(rolled.rolledOver, [stream]);
  assert.deepEqual(rolled.blocked, [before[3]!.index]);
  assert.deepEqual(rolled.deleted, []);
});
