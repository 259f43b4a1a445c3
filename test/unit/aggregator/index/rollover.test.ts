import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staleFields, writeIndexOf } from '../../../../aggregator/index/rollover.ts';
import { composedMappings } from '../../../../aggregator/index/templates.ts';

void test('staleFields: fields missing from the write index, or of another type, by full path', () => {
  const desired = {
    message: { type: 'match_only_text' },
    source: { properties: { ip: { type: 'ip' }, port: { type: 'long' } } },
    ci_audit: { type: 'object', properties: { retention: { properties: { checkpoint: { type: 'keyword' } } } } },
  };
  const actual = {
    message: { type: 'text' },
    source: { properties: { ip: { type: 'ip' } } },
    ci_audit: { properties: { retention: { properties: {} } } },
    dynamic_extra: { type: 'keyword' },
  };
  assert.deepEqual(staleFields(desired, actual), ['message', 'source.port', 'ci_audit.retention.checkpoint']);
});

void test('staleFields: an index created from the same mappings is current, whatever it added dynamically', () => {
  const { properties } = composedMappings('integrity');
  const typed = properties as Parameters<typeof staleFields>[0];
  assert.deepEqual(staleFields(typed, { ...typed, labels_extra: { type: 'keyword' } }), []);
  assert.deepEqual(staleFields(undefined, typed), []);
  assert.ok(staleFields(typed, {}).length > 10);
});

void test('writeIndexOf: the backing index of the highest generation, whatever the order or date', () => {
  assert.equal(writeIndexOf(['.ds-logs-ci_audit.ci-x-2026.11.27-000010', '.ds-logs-ci_audit.ci-x-2026.11.26-000002', '.ds-logs-ci_audit.ci-x-2026.11.25-000001']), '.ds-logs-ci_audit.ci-x-2026.11.27-000010');
  assert.equal(writeIndexOf([]), undefined);
});
