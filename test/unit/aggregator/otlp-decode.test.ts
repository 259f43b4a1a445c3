import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasErrorCode } from '../../../core/errors.ts';
import { decodeJsonLogs, decodeProtobufLogs, maxJsonContainers, maxValueDepth } from '../../../aggregator/receiver/otlp-decode.ts';
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

/** A length-delimited protobuf field: tag, varint length, payload. */
function lengthField(number: number, payload: Uint8Array | number[]): Buffer {
  const bytes = Buffer.from(payload);
  const length: number[] = [];
  for (let n = bytes.byteLength; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([(number << 3) | 2, ...length]), bytes]);
}

/** resource_logs { scope_logs { log_records { <fields> } } }: the record's fields start at byte 6. */
const inRecord = (fields: Uint8Array | number[]): Buffer => lengthField(1, lengthField(2, lengthField(2, fields)));

void test('malformed protobuf bodies are refused with the field path and the byte where it went wrong', () => {
  const record = '<request>.resourceLogs[0].scopeLogs[0].logRecords[0]';
  let deep = lengthField(1, Buffer.from('x'));
  for (let i = 0; i < 50; i++) deep = lengthField(5, lengthField(1, deep));
  const cases: Array<[string, Buffer, string]> = [
    ['a string longer than its record', inRecord([0x1a, 0x05, 0x41]), `index out of range: a string of 5 bytes at byte 8 runs past the end of its message at byte 9, in ${record}.severityText`],
    ['a varint cut off', inRecord([0x10, 0x80]), `index out of range: a varint at byte 7 is cut off by the end of its message at byte 8, in ${record}.severityNumber`],
    ['a varint of 11 bytes', inRecord([0x10, ...Array<number>(10).fill(0xff), 0x01]), `${record}.severityNumber: invalid varint encoding (more than 10 bytes) (byte 7)`],
    ['a known field with the wrong wire type', inRecord([0x0a, 0x00]), `${record}.timeUnixNano: field 1 has wire type 2, which does not fit its type fixed64 (byte 6)`],
    ['field number 0', inRecord([0x02, 0x00]), `${record}: illegal tag: field number 0 (byte 6)`],
    ['wire type 7 on an unknown field', inRecord([0x7f]), `${record}: invalid wire type 7 (byte 7)`],
    ['a group closed by another field', inRecord([0xa3, 0x01, 0x08, 0x01, 0xac, 0x01]), `${record}: group of field 20 ends with the end tag of field 21 (byte 12)`],
    [
      'invalid UTF-8 in an attribute key',
      inRecord(lengthField(6, Buffer.concat([lengthField(1, [0x61, 0xc3]), lengthField(2, lengthField(1, [0x62]))]))),
      `${record}.attributes[0].key: a string of 2 bytes is not UTF-8: the encoded data was not valid for encoding utf-8 (byte 10)`,
    ],
    // A field the aggregator does not keep is still checked.
    ['invalid UTF-8 in schema_url', lengthField(1, lengthField(3, [0xff])), '<request>.resourceLogs[0].schemaUrl: a string of 1 byte is not UTF-8: the encoded data was not valid for encoding utf-8 (byte 4)'],
    [
      'the second attribute cut short',
      inRecord(Buffer.concat([lengthField(6, lengthField(1, [0x61])), lengthField(6, lengthField(2, [0x10, 0x80]))])),
      `index out of range: a varint at byte 16 is cut off by the end of its message at byte 17, in ${record}.attributes[1].value.boolValue`,
    ],
    [
      'values nested beyond 100 messages',
      inRecord(lengthField(5, deep)),
      `${record}.body.arrayValue.values[0].arrayValue.(88 more).values[0].arrayValue.values[0].arrayValue.values[0].arrayValue: messages nested deeper than 100 levels (byte 243)`,
    ],
  ];
  for (const [name, body, message] of cases) {
    assert.throws(
      () => decodeProtobufLogs(body),
      (err: unknown) => {
        assert.ok(hasErrorCode(err, 'CIA_ERR_RECEIVER_DECODE'), `${name}: code of ${String(err)}`);
        assert.equal(err.message, `body is not a protobuf ExportLogsServiceRequest: ${message}`, name);
        return true;
      },
    );
  }
});

void test('protobuf strings: a BOM is kept, unknown fields are skipped, "__proto__" is an attribute like any other', () => {
  const body = inRecord(
    Buffer.concat([
      Buffer.from([0x78, 0x05]), // field 15 (unknown), varint
      lengthField(3, Buffer.from('\uFEFFWARN')),
      lengthField(6, Buffer.concat([lengthField(1, Buffer.from('__proto__')), lengthField(2, lengthField(6, lengthField(1, Buffer.concat([lengthField(1, Buffer.from('polluted')), lengthField(2, [0x10, 0x01])]))))])),
    ]),
  );
  const [record] = decodeProtobufLogs(body);
  assert.ok(record);
  assert.equal(record.severityText, '\uFEFFWARN');
  assert.deepEqual(Object.keys(record.attributes), ['__proto__']);
  assert.equal(Object.getPrototypeOf(record.attributes), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(record.attributes, '__proto__')?.value, { polluted: true });
  assert.equal((record.attributes as Record<string, unknown>).polluted, undefined);
});

void test('OTLP/JSON: an attribute named "__proto__" is kept as an attribute, not made the prototype', () => {
  const [record] = decodeJsonLogs(
    JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ attributes: [{ key: '__proto__', value: { kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } } }] }] }] }] }),
  );
  assert.ok(record);
  assert.deepEqual(Object.keys(record.attributes), ['__proto__']);
  assert.equal(Object.getPrototypeOf(record.attributes), Object.prototype);
  assert.equal((record.attributes as Record<string, unknown>).polluted, undefined);
});

void test('OTLP/JSON that is not UTF-8 is refused with the byte offset, as protobuf strings are; a BOM and U+FFFD written as such are text', () => {
  const prefix = Buffer.from('\uFEFF{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":"\uFFFD€', 'utf8');
  for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
    const body = Buffer.concat([prefix, Buffer.from(bad), Buffer.from('"}]}]}]}')]);
    assert.throws(
      () => decodeJsonLogs(body),
      (err: unknown) => hasErrorCode(err, 'CIA_ERR_RECEIVER_DECODE') && err.message === `body is not UTF-8, as OTLP/JSON must be: invalid byte 0x${bad[0]!.toString(16)} at byte ${prefix.byteLength}`,
      Buffer.from(bad).toString('hex'),
    );
  }
  assert.equal(decodeJsonLogs(Buffer.concat([prefix, Buffer.from('"}]}]}]}')]))[0]?.severityText, '\uFFFD€');
});

void test('OTLP/JSON integers of 32-bit fields are refused beyond the field\'s range, as the protobuf wire cannot carry them', () => {
  const record = (fields: Record<string, unknown>) => JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [fields] }] }] });
  const path = 'resourceLogs[0].scopeLogs[0].logRecords[0]';
  for (const [field, value] of [
    ['severityNumber', 1e300],
    ['severityNumber', -(2 ** 31) - 1],
    ['severityNumber', '2147483648'],
    ['severityNumber', 1.5],
    ['flags', -1],
    ['flags', 2 ** 32],
    ['droppedAttributesCount', '-1'],
  ] as const) {
    assert.throws(
      () => decodeJsonLogs(record({ [field]: value })),
      (err: unknown) => hasErrorCode(err, 'CIA_ERR_RECEIVER_DECODE') && err.message.startsWith(`${path}.${field}: expected a${field === 'severityNumber' ? ' 32-bit' : 'n unsigned 32-bit'} integer`),
      `${field}: ${value}`,
    );
  }
  // Within range, JSON gives what protobuf gives for the same values: severity 99 (unnamed) and -1 kept.
  for (const severity of [99, -1, 2 ** 31 - 1]) {
    const varint = Buffer.alloc(10);
    let n = BigInt.asUintN(64, BigInt(severity));
    let length = 0;
    for (; n >= 0x80n; n >>= 7n) varint[length++] = Number(n & 0x7fn) | 0x80;
    varint[length++] = Number(n);
    const [fromProtobuf] = decodeProtobufLogs(inRecord([0x10, ...varint.subarray(0, length), 0x45, 0xff, 0xff, 0xff, 0xff]));
    const [fromJson] = decodeJsonLogs(record({ severityNumber: severity, flags: 2 ** 32 - 1 }));
    assert.equal(fromProtobuf?.severityNumber, severity);
    assert.deepEqual([fromJson?.severityNumber, fromJson?.flags], [fromProtobuf?.severityNumber, fromProtobuf?.flags]);
  }
});

void test('a request with more records than allowed fails as too large at the first one beyond, in both formats', () => {
  const json = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{}, {}] }] }, { scopeLogs: [{ logRecords: [{}, { timeUnixNano: 'soon' }] }] }] });
  const protobuf = Buffer.concat([inRecord([]), inRecord([]), inRecord([]), inRecord([0x09])]);
  for (const decode of [() => decodeJsonLogs(json, 3), () => decodeProtobufLogs(protobuf, 3)]) {
    assert.throws(decode, (err: unknown) => {
      assert.ok(hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'), String(err));
      assert.equal(err.message, 'request holds more than limits.max_in_flight_records (3) log records: decoding stopped at record 4; send smaller batches');
      assert.deepEqual(err.details, { limit: 3 });
      return true;
    });
  }
  assert.equal(decodeJsonLogs(json.replace('"soon"', '"1"'), 4).length, 4);
  assert.equal(decodeProtobufLogs(Buffer.concat([inRecord([]), inRecord([]), inRecord([]), inRecord([])]), 4).length, 4);
});

void test('an OTLP/JSON body of more JSON objects and arrays than the receiver parses is too large before it is parsed', () => {
  // Empty records, 3 bytes each: a body that JSON.parse would build into 100 bytes of memory a byte.
  const body = (records: number): Buffer => Buffer.from(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[${'{},'.repeat(records - 1)}{}]}]}]}`);
  const containers = 6; // the request, resourceLogs and its item, scopeLogs and its item, logRecords
  assert.throws(
    () => decodeJsonLogs(body(maxJsonContainers - containers + 1)),
    (err: unknown) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE') && /more than 1000000 JSON objects and arrays/.test(err.message),
  );
  // At the bound it is parsed (the record count is the in-flight limit's to refuse).
  assert.equal(decodeJsonLogs(body(maxJsonContainers - containers)).length, maxJsonContainers - containers);
});

void test('the [ of escaped ANSI colour codes in CI output does not count toward the OTLP/JSON container bound', () => {
  // 512 records of a coloured 16 KiB line: about 1.1 million "[" in strings, a thousand containers.
  const line = '\u001b[32mok\u001b[0m '.repeat(2200);
  const body = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: Array.from({ length: 512 }, () => ({ body: { stringValue: line } })) }] }] });
  assert.ok(body.split('[').length > maxJsonContainers);
  assert.equal(decodeJsonLogs(body).length, 512);
  // A bare "[" in strings still counts: the bound stays an upper bound on what JSON.parse builds.
  assert.throws(() => decodeJsonLogs(body.replaceAll('\\u001b[', '\\u001c[')), (err: unknown) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'));
});
