import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataStreamName } from '../../../../core/wire.ts';
import {
  buildTemplatePlan,
  builtInDatasets,
  composedMappings,
  datasetTemplateName,
  ecsFieldMappings,
  templateName,
  templatePattern,
  templateVersion,
} from '../../../../aggregator/index/templates.ts';
import { decideTemplateAction } from '../../../../aggregator/index/setup.ts';

/** Field types the minimal integ-test distribution lacks (mapper-extras, x-pack mappers). */
const unavailableTypes = ['match_only_text', 'wildcard', 'constant_keyword', 'scaled_float', 'unsigned_long', 'version', 'rank_feature'];

function patternMatches(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return regex.test(name);
}

function* fieldTypes(value: unknown): Generator<string> {
  if (Array.isArray(value)) {
    for (const v of value) yield* fieldTypes(v);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key === 'type' && typeof v === 'string') yield v;
      else yield* fieldTypes(v);
    }
  }
}

/** The index template Elasticsearch picks for a data stream name: highest priority among matches. */
function templateFor(name: string, plan = buildTemplatePlan()) {
  const matching = plan.indexTemplates.filter((t) => (t.body.index_patterns as string[]).some((p) => patternMatches(p, name)));
  return matching.sort((a, b) => (b.body.priority ?? 0) - (a.body.priority ?? 0))[0];
}

void test('every built-in dataset has its own index template; others fall to the catch-all; all outrank logs-*-*', () => {
  const plan = buildTemplatePlan();
  for (const dataset of builtInDatasets) {
    assert.equal(templateFor(dataStreamName(dataset, 'prod_eu'), plan)?.name, datasetTemplateName(dataset));
  }
  assert.equal(templateFor(dataStreamName('k8s_audit', 'default'), plan)?.name, templateName);
  assert.equal(templateFor('logs-generic-default', plan), undefined);
  const catchAll = plan.indexTemplates.find((t) => t.name === templateName)!;
  assert.deepEqual(catchAll.body.index_patterns, [templatePattern]);
  for (const t of plan.indexTemplates) {
    assert.ok((t.body.priority ?? 0) > 100, t.name);
    assert.deepEqual(t.body.data_stream, {});
    assert.equal(t.body._meta.version, templateVersion);
    // Every component template it names is in the plan, installed before it.
    for (const c of t.body.composed_of ?? []) assert.ok(plan.componentTemplates.some((ct) => ct.name === c), `${t.name} -> ${c}`);
  }
  // Configured datasets get their own template too.
  assert.equal(templateFor(dataStreamName('k8s_audit', 'default'), buildTemplatePlan({ datasets: ['k8s_audit'] }))?.name, datasetTemplateName('k8s_audit'));
});

void test('mappings use only field types of the Elasticsearch server itself', () => {
  const plan = buildTemplatePlan({ retention: new Map([['auth', { dataRetention: '400d' }]]) });
  const types = new Set(fieldTypes(plan));
  for (const t of unavailableTypes) assert.ok(!types.has(t), `${t} is not available on every distribution`);
});

void test('timestamps keep nanoseconds, event.original is stored only, offsets are longs, source.ip is an ip', () => {
  const properties = ecsFieldMappings as Record<string, { type?: string; properties?: Record<string, Record<string, unknown>> }>;
  assert.equal(properties['@timestamp']?.type, 'date_nanos');
  assert.equal(properties.message?.type, 'text');
  assert.deepEqual(properties.event?.properties?.original, { type: 'keyword', index: false, doc_values: false });
  assert.equal(properties.event?.properties?.created?.type, 'date_nanos');
  assert.equal((properties.log?.properties?.offset as { type: string }).type, 'long');
  assert.equal((properties.source?.properties?.ip as { type: string }).type, 'ip');
  const mappings = buildTemplatePlan().componentTemplates.find((c) => c.name === 'ci-audit-logs@mappings')!.body.template.mappings!;
  assert.equal(mappings.date_detection, false);
  assert.equal(mappings.properties, ecsFieldMappings);
});

void test('dead letters keep the refused document stored only, so it cannot be refused again', () => {
  const deadletter = composedMappings('deadletter').properties as { ci_audit: { properties: Record<string, { properties: Record<string, unknown> }> } };
  assert.deepEqual(deadletter.ci_audit.properties.deadletter!.properties.document, { type: 'keyword', index: false, doc_values: false });
  // The shared ci_audit fields are still there next to it.
  assert.ok('verified' in deadletter.ci_audit.properties);
});

void test('retention goes into the dataset template: lifecycle data_retention or an ILM policy; and changes the digest', () => {
  const plain = buildTemplatePlan();
  const withRetention = buildTemplatePlan({ retention: new Map([['auth', { dataRetention: '400d' }], ['ci', { ilmPolicy: 'ci-audit-ci' }]]) });
  const auth = withRetention.indexTemplates.find((t) => t.name === datasetTemplateName('auth'))!;
  const ci = withRetention.indexTemplates.find((t) => t.name === datasetTemplateName('ci'))!;
  assert.deepEqual(auth.body.template?.lifecycle, { data_retention: '400d' });
  assert.deepEqual(ci.body.template?.settings, { 'index.lifecycle.name': 'ci-audit-ci' });
  const plainAuth = plain.indexTemplates.find((t) => t.name === datasetTemplateName('auth'))!;
  assert.notEqual(plainAuth.body._meta.digest, auth.body._meta.digest);
  // Same input, same digest: setup twice changes nothing.
  assert.deepEqual(buildTemplatePlan(), plain);
});

void test('template decisions: create when absent, update older or changed, never downgrade', () => {
  const ours = { managed_by: 'ci-audit' as const, version: 2, digest: 'abc' };
  assert.equal(decideTemplateAction(undefined, ours), 'created');
  assert.equal(decideTemplateAction({ version: 2, digest: 'abc' }, ours), 'unchanged');
  assert.equal(decideTemplateAction({ version: 2, digest: 'old' }, ours), 'updated');
  assert.equal(decideTemplateAction({ version: 1, digest: 'abc' }, ours), 'updated');
  assert.equal(decideTemplateAction({}, ours), 'updated');
  assert.equal(decideTemplateAction({ version: 3, digest: 'zzz' }, ours), 'keep_newer');
});

void test('the catch-all template carries the default retention (lifecycle or ILM policy) for datasets without a template', () => {
  const plain = buildTemplatePlan().indexTemplates.find((t) => t.name === 'ci-audit-logs')!;
  assert.equal(plain.body.template, undefined);
  const applied = { max_age: '90d', compliance: false, mechanism: 'ilm' };
  const ilm = buildTemplatePlan({ defaultRetention: { ilmPolicy: 'ci-audit@default', applied } }).indexTemplates.find((t) => t.name === 'ci-audit-logs')!;
  assert.deepEqual(ilm.body.template, { settings: { 'index.lifecycle.name': 'ci-audit@default' } });
  assert.deepEqual(ilm.body._meta.retention, applied);
  assert.notEqual(ilm.body._meta.digest, plain.body._meta.digest);
  const lifecycle = buildTemplatePlan({ defaultRetention: { dataRetention: '90d' } }).indexTemplates.find((t) => t.name === 'ci-audit-logs')!;
  assert.deepEqual(lifecycle.body.template, { lifecycle: { data_retention: '90d' } });
});
