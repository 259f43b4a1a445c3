import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deletionEvent } from '../../../../aggregator/retention/enforce.ts';

const policy = { dataset: 'ci', maxAge: '90d', maxAgeMs: 90 * 86_400_000, compliance: false };
const at = new Date('2026-11-26T12:00:00Z');

void test('a deletion event names the range (first and last @timestamp, document count) and leaves the covering checkpoint null', () => {
  const deletion = {
    index: '.ds-logs-ci_audit.ci-prod-2026.08.01-000001',
    oldest: Date.parse('2026-08-01T00:00:00Z'),
    newest: Date.parse('2026-08-02T00:00:00Z'),
    docs: 1234,
    reason: 'newest document older than 90d',
  };
  const event = deletionEvent('prod', 'logs-ci_audit.ci-prod', policy, deletion, at) as {
    '@timestamp': string;
    message: string;
    data_stream: { dataset: string; namespace: string };
    ci_audit: { retention: Record<string, unknown> };
  };
  assert.equal(event['@timestamp'], '2026-11-26T12:00:00.000Z');
  assert.deepEqual(event.data_stream, { type: 'logs', dataset: 'ci_audit.integrity', namespace: 'prod' });
  assert.deepEqual(event.ci_audit.retention, {
    index: deletion.index,
    data_stream: 'logs-ci_audit.ci-prod',
    max_age: '90d',
    docs: 1234,
    mechanism: 'own',
    checkpoint: null,
    oldest: '2026-08-01T00:00:00.000Z',
    newest: '2026-08-02T00:00:00.000Z',
  });
  assert.match(event.message, /1234 documents from 2026-08-01T00:00:00\.000Z to 2026-08-02T00:00:00\.000Z/);
});

void test('an empty backing index is recorded as such, without a range', () => {
  const event = deletionEvent('prod', 'logs-ci_audit.ci-prod', policy, { index: 'x', docs: 0, reason: 'empty and older than 90d' }, at) as {
    message: string;
    ci_audit: { retention: Record<string, unknown> };
  };
  assert.equal(event.ci_audit.retention.oldest, undefined);
  assert.equal(event.ci_audit.retention.docs, 0);
  assert.match(event.message, /\(no documents\)/);
});
