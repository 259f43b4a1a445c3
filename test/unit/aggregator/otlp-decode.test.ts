import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasErrorCode } from '../../../core/errors.ts';
import { decodeJsonLogs, decodeProtobufLogs, maxValueDepth } from '../../../aggregator/receiver/otlp-decode.ts';
import { emitRecords, jsonBody, protobufBody } from './otlp-fixtures.ts';

const traceId = '5b8efff798038103d269b633813fc60c';
const spanId = 'eee19b7ec3c1b174';

async function sampleRecords() {
  return emitRecords({
    resource: { 'host.name': 'runner-01', 'service.name': 'ci-audit-agent', 'ci_audit.agent.id': 'agent-7', 'process.pid': 4242 },
    scope: { name: 'ci-audit.auth', version: '0.1.0' },
    records: [
      {
        // Nanosecond precision that a JavaScript number (milliseconds) could not carry.
        timestamp: [1795688521, 482113789],
        observedTimestamp: [1795688522, 1],
        severityNumber: 13,
        severityText: 'WARN',
        body: 'sshd[2811]: Failed password for invalid user admin from 203.0.113.17 port 52144 ssh2',
        attributes: {
          'ci_audit.dataset': 'auth',
          'ci_audit.record.id': '000000000000002a',
          'log.file.path': '/var/log/auth.log',
          'log.offset': 1_234_567,
          'user.name': 'admin',
          retries: 3,
          ratio: 0.25,
          interactive: false,
          tags: ['ssh', 'failed'],
        },
        spanContext: { traceId, spanId, traceFlags: 1 },
      },
      { timestamp: [1795688523, 0], body: 42 },
      { timestamp: [1795688524, 999_999_999], body: 1.5 },
      { timestamp: [1795688525, 5], body: true },
      { timestamp: [1795688526, 6], body: new Uint8Array([0, 1, 2, 254, 255]) },
      { timestamp: [1795688527, 7], body: ['a', 1, { nested: 'yes' }] },
      { timestamp: [1795688528, 8], body: { job: { id: 88213, steps: ['checkout', 'build'] }, ok: true } },
      { timestamp: [1795688529, 9], eventName: 'ci.job.finished', attributes: { 'cicd.pipeline.name': 'deploy' } },
    ],
  });
}

void test('protobuf bodies from the OpenTelemetry serializer decode to flat records', async () => {
  const records = decodeProtobufLogs(protobufBody(await sampleRecords()));
  assert.equal(records.length, 8);
  const first = records[0]!;
  assert.deepEqual(first.resource, {
    'host.name': 'runner-01',
    'service.name': 'ci-audit-agent',
    'ci_audit.agent.id': 'agent-7',
    'process.pid': 4242,
  });
  assert.deepEqual(first.scope, { name: 'ci-audit.auth', version: '0.1.0', attributes: {} });
  assert.equal(first.timeUnixNano, 1_795_688_521_482_113_789n);
  assert.equal(first.observedTimeUnixNano, 1_795_688_522_000_000_001n);
  assert.equal(first.severityNumber, 13);
  assert.equal(first.severityText, 'WARN');
  assert.equal(first.body, 'sshd[2811]: Failed password for invalid user admin from 203.0.113.17 port 52144 ssh2');
  assert.deepEqual(first.attributes, {
    'ci_audit.dataset': 'auth',
    'ci_audit.record.id': '000000000000002a',
    'log.file.path': '/var/log/auth.log',
    'log.offset': 1_234_567,
    'user.name': 'admin',
    retries: 3,
    ratio: 0.25,
    interactive: false,
    tags: ['ssh', 'failed'],
  });
  assert.equal(first.traceId, traceId);
  assert.equal(first.spanId, spanId);
  assert.equal(first.flags, 1);

  assert.deepEqual(
    records.slice(1, 7).map((r) => r.body),
    [42, 1.5, true, new Uint8Array([0, 1, 2, 254, 255]), ['a', 1, { nested: 'yes' }], { job: { id: 88213, steps: ['checkout', 'build'] }, ok: true }],
  );
  assert.equal(records[2]!.timeUnixNano, 1_795_688_524_999_999_999n);
  const last = records[7]!;
  assert.equal(last.body, undefined);
  assert.equal(last.eventName, 'ci.job.finished');
  assert.equal(last.traceId, '');
  // Every record carries its resource and scope.
  assert.ok(records.every((r) => r.resource['ci_audit.agent.id'] === 'agent-7' && r.scope.name === 'ci-audit.auth'));
});

void test('OTLP/JSON bodies from the serializer decode to the same records as protobuf', async () => {
  const readable = await sampleRecords();
  const fromJson = decodeJsonLogs(jsonBody(readable));
  const fromProtobuf = decodeProtobufLogs(protobufBody(readable));
  assert.deepEqual(fromJson, fromProtobuf);
});

void test('records of several resources and scopes are flattened in order', async () => {
  const a = await emitRecords({ resource: { 'host.name': 'a' }, scope: { name: 's1' }, records: [{ body: 'a1' }, { body: 'a2' }] });
  const b = await emitRecords({ resource: { 'host.name': 'b' }, scope: { name: 's2' }, records: [{ body: 'b1' }] });
  const records = decodeProtobufLogs(protobufBody([...a, ...b]));
  assert.deepEqual(records.map((r) => [r.resource['host.name'], r.scope.name, r.body]), [
    ['a', 's1', 'a1'],
    ['a', 's1', 'a2'],
    ['b', 's2', 'b1'],
  ]);
});

void test('an empty protobuf body is a request without records', () => {
  assert.deepEqual(decodeProtobufLogs(new Uint8Array(0)), []);
  assert.deepEqual(decodeJsonLogs('{}'), []);
});

void test('OTLP/JSON: int64 as string or number keeps every digit, ids are hex, bytes base64', () => {
  const body = JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'host.name', value: { stringValue: 'h' } }] },
        scopeLogs: [
          {
            scope: { name: 'raw' },
            logRecords: [
              {
                timeUnixNano: '1795688521482113789',
                severityNumber: 9,
                traceId: '5B8EFFF798038103D269B633813FC60C',
                spanId: '',
                body: { bytesValue: Buffer.from('hi').toString('base64') },
                attributes: [
                  { key: 'big', value: { intValue: '9007199254740993' } },
                  { key: 'small', value: { intValue: 7 } },
                  { key: 'nan', value: { doubleValue: 'NaN' } },
                  { key: 'empty', value: {} },
                  { key: 'list', value: { kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] } } },
                ],
              },
            ],
          },
        ],
      },
    ],
  }).replace('"1795688521482113789"', '1795688521482113789'); // a JSON number beyond 2^53
  const [record] = decodeJsonLogs(body);
  assert.ok(record);
  assert.equal(record.timeUnixNano, 1_795_688_521_482_113_789n);
  assert.equal(record.observedTimeUnixNano, 0n);
  assert.equal(record.traceId, '5b8efff798038103d269b633813fc60c');
  assert.equal(record.spanId, '');
  assert.deepEqual(record.body, new Uint8Array(Buffer.from('hi')));
  assert.equal(record.attributes.big, 9_007_199_254_740_993n);
  assert.equal(record.attributes.small, 7);
  assert.ok(Number.isNaN(record.attributes.nan));
  assert.equal(record.attributes.empty, undefined);
  assert.ok('empty' in record.attributes);
  assert.deepEqual(record.attributes.list, { k: true });
});

void test('undecodable bodies fail with CIA_ERR_RECEIVER_DECODE and say what was wrong', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    // field 1, length-delimited, with a length far beyond the buffer
    [() => decodeProtobufLogs(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), /not a protobuf ExportLogsServiceRequest/],
    [() => decodeJsonLogs('{"resourceLogs": ['), /not valid JSON/],
    [() => decodeJsonLogs('[]'), /<request>: expected an object, got an array/],
    [() => decodeJsonLogs('{"resourceLogs": {}}'), /resourceLogs: expected an array/],
    [
      () => decodeJsonLogs('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{},{"timeUnixNano":"soon"}]}]}]}'),
      /resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[1\]\.timeUnixNano: expected an unsigned 64-bit integer.*"soon"/,
    ],
    [() => decodeJsonLogs('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}'), /traceId: expected a hex string/],
    [() => decodeJsonLogs('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"intValue":"1e3"}}]}]}]}'), /body\.intValue: expected a signed 64-bit integer/],
  ];
  for (const [decode, message] of cases) {
    assert.throws(decode, (err: unknown) => {
      assert.ok(hasErrorCode(err, 'CIA_ERR_RECEIVER_DECODE'), `code of ${String(err)}`);
      assert.match(err.message, message);
      return true;
    });
  }
});

void test('values nested deeper than the limit are refused instead of exhausting the stack', () => {
  let value: unknown = { stringValue: 'bottom' };
  for (let i = 0; i < maxValueDepth + 2; i++) value = { arrayValue: { values: [value] } };
  const body = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: value }] }] }] });
  assert.throws(() => decodeJsonLogs(body), /nested deeper than 64 levels/);
});
