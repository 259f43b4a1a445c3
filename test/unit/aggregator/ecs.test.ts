import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DecodedLogRecord } from '../../../aggregator/log-record.ts';
import { bodyString, chainPosition, documentId, flattenAttributes, mapToEcs, nanosToRfc3339 } from '../../../aggregator/map/ecs.ts';
import { decodeProtobufLogs } from '../../../aggregator/receiver/otlp-decode.ts';
import { integrityEventId } from '../../../aggregator/verify/events.ts';
import { agentAttributes, agentResource, emitRecords, protobufBody } from './otlp-fixtures.ts';

const ingested = new Date('2026-11-26T10:00:00.123Z');
const options = { namespace: 'default', ingested };

function record(overrides: Partial<DecodedLogRecord> = {}): DecodedLogRecord {
  return {
    resource: {},
    scope: { name: '', version: '', attributes: {} },
    timeUnixNano: 1_795_688_521_482_113_789n,
    observedTimeUnixNano: 0n,
    severityNumber: 0,
    severityText: '',
    body: 'a line',
    attributes: {},
    droppedAttributesCount: 0,
    flags: 0,
    traceId: '',
    spanId: '',
    eventName: '',
    ...overrides,
  };
}

void test('a record from the ci-audit agent maps to its data stream, a deterministic _id and ECS fields', async () => {
  const readable = await emitRecords({
    resource: { ...agentResource('agent-7', 'runner-01'), 'os.type': 'linux' },
    scope: { name: 'ci-audit.file', version: '0.1.0' },
    records: [
      {
        timestamp: [1795688521, 482113789],
        observedTimestamp: [1795688522, 5],
        severityNumber: 9,
        body: 'runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2',
        attributes: { ...agentAttributes('auth', '000000000000002a', '/var/log/auth.log', 4096), 'user.name': 'deploy' },
      },
    ],
  });
  const [decoded] = decodeProtobufLogs(protobufBody(readable));
  const mapped = mapToEcs(decoded!, options);
  assert.equal(mapped.dataStream, 'logs-ci_audit.auth-default');
  assert.equal(mapped.id, 'agent-7:id:000000000000002a');
  assert.deepEqual(mapped.issues, []);
  assert.deepEqual(mapped.document, {
    '@timestamp': '2026-11-26T10:22:01.482113789Z',
    message: 'runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2',
    event: {
      dataset: 'ci_audit.auth',
      ingested: '2026-11-26T10:00:00.123Z',
      original: 'runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2',
      id: '000000000000002a',
      created: '2026-11-26T10:22:02.000000005Z',
      severity: 9,
    },
    log: { level: 'info', file: { path: '/var/log/auth.log' }, offset: 4096 },
    host: { name: 'runner-01', os: { type: 'linux' } },
    agent: { id: 'agent-7', type: 'ci-audit-agent', version: '0.1.0' },
    data_stream: { type: 'logs', dataset: 'ci_audit.auth', namespace: 'default' },
    ci_audit: {
      verified: false,
      from_agent: true,
      scope: { name: 'ci-audit.file', version: '0.1.0' },
    },
    // An ECS attribute from the agent's parsers goes to its ECS path (aggregator/map/ecs-fields.ts).
    user: { name: 'deploy' },
  });
});

void test('a record from any OpenTelemetry SDK (no ci-audit attributes) is mapped too, unverified, with an Elasticsearch id', async () => {
  const readable = await emitRecords({
    resource: { 'service.name': 'checkout', 'service.version': '2.3.0', 'telemetry.sdk.language': 'nodejs' },
    scope: { name: 'checkout-logger' },
    records: [{ timestamp: [1795688521, 1], severityText: 'Error', body: 'payment failed', attributes: { 'http.response.status_code': 502 } }],
  });
  const [decoded] = decodeProtobufLogs(protobufBody(readable));
  const mapped = mapToEcs(decoded!, { namespace: 'prod', ingested });
  assert.equal(mapped.dataStream, 'logs-ci_audit.generic-prod');
  assert.equal(mapped.id, undefined);
  assert.deepEqual(mapped.issues, ['dataset_missing', 'record_id_missing']);
  const doc = mapped.document as Record<string, Record<string, unknown>>;
  assert.deepEqual(doc.agent, { type: 'checkout', version: '2.3.0' });
  assert.equal(doc.host, undefined);
  assert.deepEqual(doc.log, { level: 'error' });
  assert.deepEqual(doc.data_stream, { type: 'logs', dataset: 'ci_audit.generic', namespace: 'prod' });
  assert.equal(doc.ci_audit!.verified, false);
  assert.equal(doc.ci_audit!.from_agent, false);
  assert.deepEqual(doc.ci_audit!.issues, ['dataset_missing', 'record_id_missing']);
  assert.deepEqual(doc.ci_audit!.attributes, { 'http.response.status_code': 502 });
  assert.deepEqual(doc.ci_audit!.resource, { attributes: { 'telemetry.sdk.language': 'nodejs' } });
});

void test('each record gets its own dataset and namespace, whichever the record before had', () => {
  const mapped = (dataset: string | undefined, namespace: string): [string, unknown, string[]] => {
    const m = mapToEcs(record({ attributes: dataset === undefined ? {} : { 'ci_audit.dataset': dataset } }), { namespace, ingested });
    return [m.dataStream, (m.document.event as Record<string, unknown>).dataset, m.issues.filter((i) => i.startsWith('dataset'))];
  };
  const results = [
    mapped('auth', 'default'),
    mapped('auth', 'prod'),
    mapped('', 'prod'),
    mapped('sudo', 'prod'),
    mapped('Auth', 'prod'),
    mapped(undefined, 'prod'),
    mapped('generic', 'prod'),
    mapped('auth', 'default'),
  ];
  assert.deepEqual(results, [
    ['logs-ci_audit.auth-default', 'ci_audit.auth', []],
    ['logs-ci_audit.auth-prod', 'ci_audit.auth', []],
    ['logs-ci_audit.generic-prod', 'ci_audit.generic', ['dataset_invalid']],
    ['logs-ci_audit.sudo-prod', 'ci_audit.sudo', []],
    ['logs-ci_audit.generic-prod', 'ci_audit.generic', ['dataset_invalid']],
    ['logs-ci_audit.generic-prod', 'ci_audit.generic', ['dataset_missing']],
    ['logs-ci_audit.generic-prod', 'ci_audit.generic', []],
    ['logs-ci_audit.auth-default', 'ci_audit.auth', []],
  ]);
});

void test('an invalid dataset goes to the default data stream, flagged, and its value is kept', () => {
  const mapped = mapToEcs(record({ attributes: { 'ci_audit.dataset': 'Auth-Logs', 'ci_audit.record.id': '1' } }), options);
  assert.equal(mapped.dataStream, 'logs-ci_audit.generic-default');
  assert.deepEqual(mapped.issues, ['dataset_invalid']);
  const ciAudit = mapped.document.ci_audit as Record<string, unknown>;
  assert.deepEqual(ciAudit.issues, ['dataset_invalid']);
  assert.deepEqual(ciAudit.attributes, { 'ci_audit.dataset': 'Auth-Logs' });
  // Without an agent id the host name identifies the sender; without either, the id is still unique per record id.
  assert.equal(mapped.id, ':id:1');
  assert.equal(mapToEcs(record({ resource: { 'host.name': 'h' }, attributes: { 'ci_audit.record.id': '1' } }), options).id, 'h:id:1');
});

void test('unknown attributes are kept, flattened to keyword-friendly fields', () => {
  const flat = flattenAttributes({
    plain: 'x',
    'dotted.name': 1,
    nested: { a: { b: true }, c: 2.5 },
    big: 2n ** 64n,
    bytes: new Uint8Array([104, 105]),
    scalars: ['a', 1, false],
    objects: [{ k: 'v' }, 'x'],
    inf: Number.POSITIVE_INFINITY,
    empty: undefined,
    '': 'blank key',
    ' ': 'space key',
  });
  assert.deepEqual(flat, {
    plain: 'x',
    'dotted.name': 1,
    'nested.a.b': true,
    'nested.c': 2.5,
    big: '18446744073709551616',
    bytes: 'aGk=',
    scalars: ['a', 1, false],
    objects: '[{"k":"v"},"x"]',
    inf: 'Infinity',
    '_blank:""': 'blank key',
    '_blank:" "': 'space key',
  });
});

void test('a log offset that is not a non-negative integer is flagged and kept among the attributes', () => {
  const bad = mapToEcs(record({ attributes: { 'log.offset': 'end' } }), options);
  assert.ok(bad.issues.includes('log_offset_invalid'));
  assert.equal(bad.document.log, undefined);
  assert.deepEqual((bad.document.ci_audit as Record<string, unknown>).attributes, { 'log.offset': 'end' });
  const big = mapToEcs(record({ attributes: { 'log.offset': 2n ** 60n } }), options);
  assert.deepEqual(big.document.log, { offset: '1152921504606846976' });
});

void test('@timestamp falls back to the observed time, then to the ingest time, and says so', () => {
  const observed = mapToEcs(record({ timeUnixNano: 0n, observedTimeUnixNano: 1_000_000_000_000_000_001n }), options);
  assert.equal(observed.document['@timestamp'], '2001-09-09T01:46:40.000000001Z');
  assert.ok(observed.issues.includes('timestamp_missing'));

  const neither = mapToEcs(record({ timeUnixNano: 0n }), options);
  assert.equal(neither.document['@timestamp'], '2026-11-26T10:00:00.123000000Z');

  // Beyond what date_nanos holds (year 2262): kept verbatim in ci_audit.time_unix_nano.
  const far = mapToEcs(record({ timeUnixNano: 2n ** 63n, observedTimeUnixNano: 5n }), options);
  assert.equal(far.document['@timestamp'], '1970-01-01T00:00:00.000000005Z');
  assert.ok(far.issues.includes('timestamp_out_of_range'));
  assert.equal((far.document.ci_audit as Record<string, unknown>).time_unix_nano, '9223372036854775808');
});

void test('nanosToRfc3339 keeps all nine fractional digits', () => {
  assert.equal(nanosToRfc3339(1n), '1970-01-01T00:00:00.000000001Z');
  assert.equal(nanosToRfc3339(1_795_688_521_000_000_000n), '2026-11-26T10:22:01.000000000Z');
  assert.equal(nanosToRfc3339(2n ** 63n - 1n), '2262-04-11T23:47:16.854775807Z');
});

void test('bodies that are not strings become text', () => {
  assert.equal(bodyString(undefined), undefined);
  assert.equal(bodyString(42), '42');
  assert.equal(bodyString(2n ** 64n), '18446744073709551616');
  assert.equal(bodyString(false), 'false');
  assert.equal(bodyString(new Uint8Array([0, 255])), 'AP8=');
  assert.equal(bodyString({ a: [1, 2n ** 64n, undefined], b: new Uint8Array([1]) }), '{"a":[1,"18446744073709551616",null],"b":"AQ=="}');
  const mapped = mapToEcs(record({ body: undefined }), options);
  assert.equal(mapped.document.message, undefined);
  assert.equal((mapped.document.event as Record<string, unknown>).original, undefined);
});

void test('document ids stay within 512 bytes', () => {
  assert.equal(documentId('agent-1', '42'), 'agent-1:id:42');
  const long = documentId('a'.repeat(300), 'b'.repeat(300));
  assert.match(long, /^sha256:[0-9a-f]{64}$/);
  assert.equal(long, documentId('a'.repeat(300), 'b'.repeat(300)));
  // The limit is in UTF-8 bytes, not characters: 512 ASCII bytes fit, 171 three-byte characters (513 bytes) do not.
  assert.equal(documentId('a', 'b'.repeat(507)).length, 512);
  assert.match(documentId('a', 'b'.repeat(508)), /^sha256:/);
  assert.equal(documentId('\u20ac', '\u20ac'.repeat(168)), '\u20ac:id:' + '\u20ac'.repeat(168));
  assert.match(documentId('\u20ac', '\u20ac'.repeat(169)), /^sha256:/);
});

void test('a record id cannot take the _id of a chained record, a checkpoint or an integrity event of its agent', () => {
  const resource = { 'ci_audit.agent.id': 'runner-01', 'host.name': 'runner-01' };
  const chained = mapToEcs(record({ resource, attributes: { 'ci_audit.chain.seq': 5, 'ci_audit.chain.hash': 'ab'.repeat(32), 'ci_audit.chain.prev_hash': 'cd'.repeat(32) } }), options);
  const checkpoint = mapToEcs(record({ resource, attributes: { 'ci_audit.dataset': 'integrity', 'ci_audit.checkpoint.key': 'k1', 'ci_audit.checkpoint.seq': 5 } }), options);
  assert.equal(chained.id, 'runner-01:seq:5');
  assert.equal(checkpoint.id, 'runner-01:checkpoint:k1:5');
  const event = integrityEventId({ agentId: 'runner-01', action: 'chain_fork', idKey: '5:ab' });
  assert.equal(event, 'runner-01:integrity:chain_fork:5:ab');
  const reserved = new Set([chained.id, checkpoint.id, event]);
  for (const planted of ['seq:5', 'checkpoint:k1:5', 'integrity:chain_fork:5:ab']) {
    for (const named of [resource, { 'host.name': 'runner-01' }]) {
      const unchained = mapToEcs(record({ resource: named, attributes: { 'ci_audit.dataset': 'integrity', 'ci_audit.record.id': planted } }), options);
      assert.equal(unchained.id, `runner-01:id:${planted}`);
      assert.ok(!reserved.has(unchained.id), planted);
    }
  }
});

void test('trace context, severity text, event name and dropped attributes are carried over', () => {
  const mapped = mapToEcs(
    record({ traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), flags: 1, severityNumber: 21, eventName: 'job.done', droppedAttributesCount: 2 }),
    options,
  );
  const doc = mapped.document as Record<string, Record<string, unknown>>;
  assert.deepEqual(doc.trace, { id: 'ab'.repeat(16) });
  assert.deepEqual(doc.span, { id: 'cd'.repeat(8) });
  assert.deepEqual(doc.log, { level: 'fatal' });
  assert.equal(doc.event!.severity, 21);
  assert.equal(doc.ci_audit!.event_name, 'job.done');
  assert.equal(doc.ci_audit!.trace_flags, 1);
  assert.equal(doc.ci_audit!.dropped_attributes_count, 2);
});

void test('nanosToRfc3339 stays right across seconds, whatever second it wrote last', () => {
  const seq = [1_795_688_521_999_999_999n, 1_795_688_522_000_000_000n, 1_795_688_521_000_000_001n, 1_795_688_522_482_113_789n, 2n ** 63n - 1n, 1n];
  assert.deepEqual(seq.map(nanosToRfc3339), [
    '2026-11-26T10:22:01.999999999Z',
    '2026-11-26T10:22:02.000000000Z',
    '2026-11-26T10:22:01.000000001Z',
    '2026-11-26T10:22:02.482113789Z',
    '2262-04-11T23:47:16.854775807Z',
    '1970-01-01T00:00:00.000000001Z',
  ]);
});

void test('nanosToRfc3339 writes what Date writes, for days across the whole date_nanos range', () => {
  const reference = (nanos: bigint): string => {
    const seconds = nanos / 1_000_000_000n;
    return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${String(nanos % 1_000_000_000n).padStart(9, '0')}Z`;
  };
  const day = 86_400_000_000_000n;
  const samples = [1n, day - 1n, day, 951_782_400_000_000_000n - 1n, 951_782_400_000_000_000n, 4_107_542_400_000_000_000n, 2n ** 63n - 1n];
  // Leap days, month and year ends, and a spread of times of day over 1970..2262.
  for (let i = 0n; i < 3000n; i++) samples.push((i * 1_234_567_890_123_456_789n) % (2n ** 63n - 1n) + 1n);
  for (const nanos of samples) assert.equal(nanosToRfc3339(nanos), reference(nanos), String(nanos));
});

void test('nanosToRfc3339 keeps each day right when the days it writes alternate', () => {
  // An SDK's records alternate the line's day (event time) and today (observed time); a third day
  // now and then replaces one of the two kept.
  const day = 86_400_000_000_000n;
  const monday = 1_795_600_000_000_000_000n;
  const order = [0n, 1n, 0n, 1n, 1n, 0n, 2n, 0n, 2n, 1n, 0n, 2n, 2n, 1n];
  const samples = order.map((d, i) => monday + d * day + BigInt(i) * 1_000_000_007n);
  const reference = (nanos: bigint): string =>
    `${new Date(Number(nanos / 1_000_000_000n) * 1000).toISOString().slice(0, 19)}.${String(nanos % 1_000_000_000n).padStart(9, '0')}Z`;
  assert.deepEqual(samples.map(nanosToRfc3339), samples.map(reference));
});

void test('a chain position handed over by the verify stage maps as the one read from the attributes', () => {
  const attributes = { 'ci_audit.chain.seq': 7, 'ci_audit.chain.hash': 'ab'.repeat(32), 'ci_audit.chain.prev_hash': 'cd'.repeat(32), 'ci_audit.dataset': 'auth' };
  const chained = record({ resource: { 'ci_audit.agent.id': 'agent-1' }, attributes });
  const position = chainPosition(attributes);
  assert.deepEqual(position, { seq: 7, hash: 'ab'.repeat(32), prevHash: 'cd'.repeat(32) });
  const read = mapToEcs(chained, { ...options, chain: { canonical: '{"v":1}', verified: true } });
  const handed = mapToEcs(chained, { ...options, chain: { canonical: '{"v":1}', verified: true, position } });
  assert.equal(JSON.stringify(handed.document), JSON.stringify(read.document));
  assert.equal(handed.id, 'agent-1:seq:7');
  assert.equal(read.id, handed.id);
});

void test('a prev_hash is checked like the hash, also right after a record whose hash was well formed', () => {
  const hash = 'ab'.repeat(32);
  assert.ok(chainPosition({ 'ci_audit.chain.seq': 1, 'ci_audit.chain.hash': hash, 'ci_audit.chain.prev_hash': '0'.repeat(64) }));
  for (const prevHash of ['', 'AB'.repeat(32), 'zz', 42, undefined]) {
    assert.equal(chainPosition({ 'ci_audit.chain.seq': 2, 'ci_audit.chain.hash': 'cd'.repeat(32), 'ci_audit.chain.prev_hash': prevHash }), undefined, String(prevHash));
  }
  assert.ok(chainPosition({ 'ci_audit.chain.seq': 2, 'ci_audit.chain.hash': 'cd'.repeat(32), 'ci_audit.chain.prev_hash': hash }));
});
