import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataStreamName } from '../../../core/wire.ts';
import { indexTemplate, templatePattern, templateVersion } from '../../../aggregator/index/templates.ts';

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

void test('the template matches every ci-audit data stream and outranks the built-in logs-*-* template', () => {
  assert.deepEqual(indexTemplate.index_patterns, [templatePattern]);
  for (const name of [dataStreamName('auth', 'default'), dataStreamName('generic', 'prod_eu'), dataStreamName('ci', 'e2e_1a2b')]) {
    assert.ok(patternMatches(templatePattern, name), name);
  }
  assert.ok(!patternMatches(templatePattern, 'logs-generic-default'));
  assert.ok((indexTemplate.priority ?? 0) > 100);
  assert.deepEqual(indexTemplate.data_stream, {});
  assert.equal((indexTemplate._meta as { version: number }).version, templateVersion);
});

void test('mappings use only field types of the Elasticsearch server itself', () => {
  const types = new Set(fieldTypes(indexTemplate.template?.mappings));
  for (const t of unavailableTypes) assert.ok(!types.has(t), `${t} is not available on every distribution`);
});

void test('timestamps keep nanoseconds, event.original is stored only, offsets are longs', () => {
  const properties = indexTemplate.template?.mappings?.properties as Record<string, { type?: string; properties?: Record<string, Record<string, unknown>> }>;
  assert.equal(properties['@timestamp']?.type, 'date_nanos');
  assert.equal(properties.message?.type, 'text');
  assert.deepEqual(properties.event?.properties?.original, { type: 'keyword', index: false, doc_values: false });
  assert.equal(properties.event?.properties?.created?.type, 'date_nanos');
  assert.equal((properties.log?.properties?.offset as { type: string }).type, 'long');
  assert.equal((properties.source?.properties?.ip as { type: string }).type, 'ip');
  assert.equal(indexTemplate.template?.mappings?.date_detection, false);
});
