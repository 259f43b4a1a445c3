// The disk buffer's record codec gives back exactly what it was given, so that the canonical record
// the chain hashed before the buffer is the one the exporter sends after it: nanoseconds of both
// times, numbers that stay numbers and strings that stay strings, NaN, ±Infinity and bytes. What
// it stored is what it sends, and what an earlier agent stored (JSON) is still read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { decodeRecord, encodeRecord } from '../../../../agent/buffer/record-codec.ts';
import { EncodedLogRecord } from '../../../../agent/sinks/encoded-log-record.ts';
import { encodeLogsRequest } from '../../../../agent/sinks/otlp-protobuf-encode.ts';
import { decodeProtobufLogs } from '../../../../aggregator/receiver/otlp-decode.ts';
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
    // Copied: the encoding is a view of a buffer the next encoding overwrites.
    const decoded = decodeRecord(Buffer.from(encodeRecord(r)), scope);
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

void test('a stored record goes into the request as it was stored: the request is the bytes of the original record', () => {
  for (const [name, r] of cases) {
    const decoded = decodeRecord(Buffer.from(encodeRecord(r)), scope);
    assert.ok(decoded instanceof EncodedLogRecord, `${name}: kept encoded`);
    assert.deepEqual(encodeLogsRequest([decoded, decoded]), encodeLogsRequest([r, r]), name);
  }
});

void test('a buffer an earlier agent wrote (JSON payloads) is still read after an upgrade', () => {
  // As earlier agents stored records: compact JSON, values JSON cannot hold tagged.
  const legacy = (text: string): Buffer => Buffer.from(text, 'utf8');
  const plain = decodeRecord(legacy('{"t":[1700000123,999999999],"o":[1700000124,1],"n":17,"b":"a line","a":{"ci_audit.dataset":"ci","log.offset":1234}}'), scope);
  assert.deepEqual(plain.hrTime, [1_700_000_123, 999_999_999]);
  assert.equal(plain.severityNumber, 17);
  assert.equal(plain.body, 'a line');
  assert.deepEqual(plain.attributes, { 'ci_audit.dataset': 'ci', 'log.offset': 1234 });
  assert.equal(plain.resource, scope.resource);
  const tagged = decodeRecord(legacy('{"t":[1,0],"o":[1,0],"a":{"x.nan":{"\\u0000ci_audit.value":"NaN"},"x.raw":{"\\u0000ci_audit.value":"bytes","base64":"AAH+"}}}'), scope);
  assert.ok(Number.isNaN(tagged.attributes['x.nan']));
  assert.deepEqual(tagged.attributes['x.raw'], new Uint8Array([0, 1, 254]));
  // Sent like any record: its request decodes at the aggregator to the same values.
  const [sent] = decodeProtobufLogs(encodeLogsRequest([plain]));
  assert.deepEqual(sent?.attributes, { 'ci_audit.dataset': 'ci', 'log.offset': 1234 });
});

void test('bytes that are not a stored record are refused when read, not sent', () => {
  for (const payload of [Buffer.from([0x01, 0x12, 0x00]), Buffer.from([0x02, 0x09]), Buffer.from('[1,2]'), Buffer.from('{"t":1}')]) {
    assert.throws(() => decodeRecord(payload, scope), /not a buffered log record/, payload.toString('hex'));
  }
});
