// The disk buffer's record codec gives back exactly what it was given, so that the canonical record
// the chain hashed before the buffer is the one the exporter sends after it: nanoseconds of both
// times, numbers that stay numbers and strings that stay strings, and the values JSON cannot hold
// (NaN, ±Infinity, bytes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { decodeRecord, encodeRecord } from '../../../../agent/buffer/record-codec.ts';
import { hrTimeNanos } from '../../../../core/integrity/record.ts';
import { agentResource } from '../../../../agent/resource.ts';
import { canonicalRecord, type AttestedInput } from '../../../../core/integrity/record.ts';

const scope = { resource: agentResource({ agentId: 'codec-agent', hostName: 'runner-1' }), instrumentationScope: { name: 'ci-audit-agent', version: '1' } };

function canonical(r: ReadableLogRecord): string {
  return canonicalRecord({
    agent: 'codec-agent',
    seq: 1,
    timeUnixNano: hrTimeNanos(r.hrTime),
    observedTimeUnixNano: hrTimeNanos(r.hrTimeObserved),
    severityNumber: r.severityNumber ?? 0,
    body: r.body as AttestedInput,
    attributes: r.attributes as Record<string, AttestedInput>,
    resource: r.resource.attributes as Record<string, AttestedInput>,
  });
}

function record(body: ReadableLogRecord['body'], attributes: ReadableLogRecord['attributes']): ReadableLogRecord {
  return {
    hrTime: [1_700_000_123, 999_999_999],
    hrTimeObserved: [1_700_000_124, 1],
    severityNumber: 17,
    body,
    attributes,
    droppedAttributesCount: 0,
    resource: scope.resource,
    instrumentationScope: scope.instrumentationScope,
  };
}

const cases: [string, ReadableLogRecord][] = [
  ['plain line', record('a line with "quotes", \\ and ✓', { 'ci_audit.dataset': 'ci', 'log.offset': 1234, 'n.as.string': '1234', 'x.double': 0.1 + 0.2, 'x.neg': -0, 'x.bool': false, 'x.list': [1, 'one', true] })],
  ['non-finite numbers', record('line', { 'x.nan': Number.NaN, 'x.inf': Number.POSITIVE_INFINITY, 'x.ninf': Number.NEGATIVE_INFINITY, 'x.list': [Number.NaN, 2] })],
  ['the text null in a value', record('null', { 'x.text': 'null', 'x.nan': Number.NaN })],
  ['bytes and nested body', record({ raw: new Uint8Array([0, 1, 254, 255]), nested: { deep: [1, { n: Number.NaN }] }, text: 'null' }, { 'ci_audit.dataset': 'ci' })],
  ['wide integer', record('line', { 'x.wide': 2 ** 60, 'x.max': Number.MAX_SAFE_INTEGER })],
];

for (const [name, r] of cases) {
  void test(`${name}: the canonical record survives encode and decode exactly`, () => {
    const decoded = decodeRecord(encodeRecord(r), scope);
    assert.equal(canonical(decoded), canonical(r));
    assert.deepEqual(decoded.hrTime, r.hrTime);
    assert.deepEqual(decoded.hrTimeObserved, r.hrTimeObserved);
    for (const [key, value] of Object.entries(r.attributes)) {
      assert.equal(typeof decoded.attributes[key], typeof value, `${key} keeps its type`);
      // -0 comes back as 0: the same canonical number and the same OTLP int64.
      assert.deepEqual(decoded.attributes[key], Object.is(value, -0) ? 0 : value, key);
    }
    assert.deepEqual(decoded.body, r.body);
  });
}

void test('a record without values JSON cannot hold is stored as plain JSON (no second pass)', () => {
  const r = cases[0]![1];
  const text = encodeRecord(r).toString('utf8');
  assert.deepEqual((JSON.parse(text) as { a: unknown }).a, { ...r.attributes, 'x.neg': 0 });
  assert.ok(!text.includes('ci_audit.value'));
});
