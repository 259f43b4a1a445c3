import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer } from 'node:net';
import { constants, gzipSync, zstdCompressSync } from 'node:zlib';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import pino from 'pino';
import { CiAuditError } from '../../../core/errors.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import type { WriterState } from '../../../aggregator/index/document-writer.ts';
import type { Ingest, IngestResult } from '../../../aggregator/ingest.ts';
import type { DecodedLogRecord } from '../../../aggregator/log-record.ts';
import { Pipeline } from '../../../aggregator/pipeline.ts';
import { RpcStatus } from '../../../aggregator/receiver/otlp-proto.ts';
import { createReceiver } from '../../../aggregator/receiver/server.ts';
import { emitRecords, jsonBody, protobufBody } from './otlp-fixtures.ts';

const silent = pino({ level: 'silent' });
const limits = { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 256 * 1024 };

class FakeIngest implements Ingest {
  ready = true;
  state: WriterState = 'ready';
  calls: DecodedLogRecord[][] = [];
  result: (records: DecodedLogRecord[]) => IngestResult = (records) => ({ received: records.length, created: records.length, duplicates: 0, rejected: 0 });
  retryAfterSeconds(): number {
    return 7;
  }
  async ingest(records: DecodedLogRecord[]): Promise<IngestResult> {
    this.calls.push(records);
    await Promise.resolve();
    return this.result(records);
  }
}

function receiver(t: { after: (fn: () => Promise<void>) => void }, ingest: Ingest = new FakeIngest()) {
  const app = createReceiver({ ingest, limits, logger: silent });
  t.after(() => app.close());
  return app;
}

async function twoRecords(): Promise<Awaited<ReturnType<typeof emitRecords>>> {
  return emitRecords({ resource: { 'host.name': 'h' }, records: [{ body: 'one' }, { body: 'two' }] });
}

function decodeStatus(payload: Buffer): { code: number; message: string } {
  return RpcStatus.toObject(RpcStatus.decode(payload)) as { code: number; message: string };
}

/** The receiver listening on a free loopback port, as the aggregator runs it; closed after the test. */
async function listening(t: { after: (fn: () => Promise<void>) => void }, ingest: Ingest): Promise<string> {
  const app = createReceiver({ ingest, limits, logger: silent });
  t.after(() => app.close());
  return app.listen({ host: '127.0.0.1', port: 0 });
}

/** POSTs `body` to /v1/logs over HTTP; the status and the google.rpc.Status of the answer, in either format. */
async function post(url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; code: number; message: string }> {
  const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers, body });
  const payload = Buffer.from(await res.arrayBuffer());
  const status = res.headers.get('content-type') === 'application/json' ? (JSON.parse(payload.toString('utf8')) as { code: number; message: string }) : decodeStatus(payload);
  return { status: res.status, code: status.code, message: status.message };
}

void test('a protobuf request (gzip) is acknowledged with an empty ExportLogsServiceResponse once stored', async (t) => {
  const ingest = new FakeIngest();
  const app = receiver(t, ingest);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
    payload: gzipSync(protobufBody(await twoRecords())),
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/x-protobuf');
  assert.equal(res.rawPayload.byteLength, 0);
  assert.deepEqual(ProtobufLogsSerializer.deserializeResponse(res.rawPayload), {});
  assert.deepEqual(ingest.calls.map((c) => c.map((r) => r.body)), [['one', 'two']]);
});

void test('zstd requests, protobuf and JSON, are decoded like gzip ones', async (t) => {
  const ingest = new FakeIngest();
  const app = receiver(t, ingest);
  const records = await twoRecords();
  for (const [contentType, body] of [['application/x-protobuf', protobufBody(records)], ['application/json', jsonBody(records)]] as const) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/logs',
      headers: { 'content-type': contentType, 'content-encoding': 'zstd' },
      payload: zstdCompressSync(body),
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], contentType);
  }
  assert.deepEqual(ingest.calls.map((c) => c.map((r) => r.body)), [['one', 'two'], ['one', 'two']]);
});

void test('a JSON request is answered in JSON', async (t) => {
  const app = receiver(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    payload: jsonBody(await twoRecords()),
  });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(res.json(), {});
});

void test('records Elasticsearch rejected are reported as partial success, in both formats', async (t) => {
  const ingest = new FakeIngest();
  ingest.result = (records) => ({ received: records.length, created: 1, duplicates: 0, rejected: 1, firstError: 'HTTP 400 document_parsing_exception: bad' });
  const app = receiver(t, ingest);
  const records = await twoRecords();
  const pb = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/x-protobuf' }, payload: protobufBody(records) });
  assert.equal(pb.statusCode, 200);
  const response = ProtobufLogsSerializer.deserializeResponse(pb.rawPayload);
  assert.equal(Number(response.partialSuccess?.rejectedLogRecords), 1);
  assert.match(String(response.partialSuccess?.errorMessage), /1 of 2 log records were rejected by Elasticsearch; first: HTTP 400 document_parsing_exception: bad/);
  const js = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/json' }, payload: jsonBody(records) });
  assert.equal(js.statusCode, 200);
  assert.deepEqual(js.json(), {
    partialSuccess: { rejectedLogRecords: 1, errorMessage: '1 of 2 log records were rejected by Elasticsearch; first: HTTP 400 document_parsing_exception: bad' },
  });
});

void test('415 for a content type other than protobuf or JSON, and for an unknown content encoding', async (t) => {
  const ingest = new FakeIngest();
  const app = receiver(t, ingest);
  const type = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
  assert.equal(type.statusCode, 415);
  assert.deepEqual(type.json(), {
    code: 3,
    message: 'unsupported Content-Type "text/plain"; use application/x-protobuf or application/json',
  });
  const none = await app.inject({ method: 'POST', url: '/v1/logs', payload: Buffer.from([1, 2]) });
  assert.equal(none.statusCode, 415);
  const encoding = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' },
    payload: Buffer.from([1, 2, 3]),
  });
  assert.equal(encoding.statusCode, 415);
  assert.equal(encoding.headers['accept-encoding'], 'gzip, zstd, identity');
  assert.match(decodeStatus(encoding.rawPayload).message, /unsupported Content-Encoding "br"; use one of gzip, zstd, identity/);
  assert.equal(ingest.calls.length, 0);
});

void test('413 when the body as sent exceeds limits.max_body_bytes', async (t) => {
  const app = receiver(t);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/x-protobuf' },
    payload: Buffer.alloc(limits.maxBodyBytes + 1),
  });
  assert.equal(res.statusCode, 413);
  assert.equal(res.headers['content-type'], 'application/x-protobuf');
  assert.deepEqual(decodeStatus(res.rawPayload), { code: 3, message: `body exceeds limits.max_body_bytes (${limits.maxBodyBytes} bytes); send smaller batches` });
});

void test('413 for a gzip bomb: a small body that decompresses beyond limits.max_decompressed_bytes', async (t) => {
  const ingest = new FakeIngest();
  const app = receiver(t, ingest);
  const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024)); // 16 MiB of zeros, about 16 KiB gzipped
  assert.ok(bomb.byteLength < limits.maxBodyBytes, `bomb is ${bomb.byteLength} bytes`);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: bomb,
  });
  assert.equal(res.statusCode, 413);
  assert.match(res.json<{ message: string }>().message, /decompressed body exceeds limits\.max_decompressed_bytes \(262144 bytes\)/);
  assert.equal(ingest.calls.length, 0);
});

void test('413 for a zstd bomb, whether its frame declares its size or not', async (t) => {
  const ingest = new FakeIngest();
  const app = receiver(t, ingest);
  const zeros = Buffer.alloc(16 * 1024 * 1024);
  for (const contentSizeFlag of [1, 0]) {
    const bomb = zstdCompressSync(zeros, { params: { [constants.ZSTD_c_contentSizeFlag]: contentSizeFlag } });
    assert.ok(bomb.byteLength < limits.maxBodyBytes, `bomb is ${bomb.byteLength} bytes`);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/logs',
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
      payload: bomb,
    });
    assert.equal(res.statusCode, 413);
    assert.match(res.json<{ message: string }>().message, /decompressed body exceeds limits\.max_decompressed_bytes \(262144 bytes\)/);
  }
  assert.equal(ingest.calls.length, 0);
});

void test('400 for corrupt gzip or zstd and for bodies that are not OTLP', async (t) => {
  const app = receiver(t);
  const valid = gzipSync(protobufBody(await twoRecords()));
  const validZstd = zstdCompressSync(protobufBody(await twoRecords()));
  const cases: Array<[Record<string, string>, Buffer, RegExp]> = [
    [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, Buffer.from('definitely not gzip'), /body is not valid gzip data: incorrect header check/],
    [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, valid.subarray(0, valid.byteLength - 10), /body is not valid gzip data: unexpected end of file/],
    [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'zstd' }, Buffer.from('definitely not zstd'), /body is not valid zstd data: Unknown frame descriptor/],
    [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'zstd' }, validZstd.subarray(0, validZstd.byteLength - 3), /body is not valid zstd data: unexpected end of file/],
    [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'zstd' }, zstdCompressSync(Buffer.alloc(16 * 1024 * 1024), { params: { [constants.ZSTD_c_windowLog]: 24, [constants.ZSTD_c_contentSizeFlag]: 0 } }), /zstd window exceeds 8388608 bytes/],
    [{ 'content-type': 'application/x-protobuf' }, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), /body is not a protobuf ExportLogsServiceRequest/],
    [{ 'content-type': 'application/json' }, Buffer.from('{"resourceLogs": 5}'), /resourceLogs: expected an array, got number 5/],
  ];
  for (const [headers, payload, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v1/logs', headers, payload });
    assert.equal(res.statusCode, 400, message.source);
    const status = headers['content-type'] === 'application/json' ? res.json<{ code: number; message: string }>() : decodeStatus(res.rawPayload);
    assert.equal(status.code, 3);
    assert.match(status.message, message);
  }
});

void test('400 at once for a zstd body of many empty frames, instead of a zstd context for each; nothing is stored', async (t) => {
  const ingest = new FakeIngest();
  const url = await listening(t, ingest);
  const empty = zstdCompressSync(Buffer.alloc(0));
  const frames = Buffer.concat(Array.from({ length: Math.floor(limits.maxBodyBytes / empty.byteLength) }, () => empty));
  for (const contentType of ['application/x-protobuf', 'application/json']) {
    const res = await post(url, { 'content-type': contentType, 'content-encoding': 'zstd' }, frames);
    assert.deepEqual(res, {
      status: 400,
      code: 3,
      message: 'body holds more than 16 zstd frames, the most the receiver decodes in one request; compress each request as one zstd frame',
    }, contentType);
  }
  assert.equal(ingest.calls.length, 0);
});

void test('a body that decompresses to nothing gets 400 as an empty body does, in both formats and both codings', async (t) => {
  const ingest = new FakeIngest();
  const url = await listening(t, ingest);
  for (const [encoding, body] of [['gzip', gzipSync(Buffer.alloc(0))], ['zstd', zstdCompressSync(Buffer.alloc(0))], ['zstd', Buffer.concat([zstdCompressSync(Buffer.alloc(0)), zstdCompressSync(Buffer.alloc(0))])]] as const) {
    for (const contentType of ['application/x-protobuf', 'application/json']) {
      const res = await post(url, { 'content-type': contentType, 'content-encoding': encoding }, body);
      assert.deepEqual(res, {
        status: 400,
        code: 3,
        message: `empty body: its ${encoding} data decompresses to 0 bytes; expected an ExportLogsServiceRequest with log records`,
      }, `${encoding} ${contentType}`);
    }
  }
  assert.equal(ingest.calls.length, 0);
});

void test('OTLP/JSON that is not UTF-8, or a number beyond its field\'s range, gets 400 as protobuf would; nothing is stored', async (t) => {
  const ingest = new FakeIngest();
  const url = await listening(t, ingest);
  const json = { 'content-type': 'application/json' };
  const record = (fields: string): Buffer => Buffer.from(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{${fields}}]}]}]}`);
  // 0xff inside a string value, after a multi-byte character and a U+FFFD the body itself holds.
  const prefix = Buffer.from('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"é\uFFFD');
  const notUtf8 = Buffer.concat([prefix, Buffer.from([0xff]), Buffer.from('"}}]}]}]}')]);
  assert.deepEqual(await post(url, json, notUtf8), { status: 400, code: 3, message: `body is not UTF-8, as OTLP/JSON must be: invalid byte 0xff at byte ${prefix.byteLength}` });
  const cases: Array<[string, string]> = [
    ['"severityNumber":1e300', 'severityNumber: expected a 32-bit integer (-2147483648 to 2147483647), got number 1e+300'],
    ['"severityNumber":2147483648', 'severityNumber: expected a 32-bit integer (-2147483648 to 2147483647), got number 2147483648'],
    ['"severityNumber":"9999999999"', 'severityNumber: expected a 32-bit integer (-2147483648 to 2147483647), got "9999999999"'],
    ['"flags":-1', 'flags: expected an unsigned 32-bit integer (0 to 4294967295), got number -1'],
    ['"droppedAttributesCount":4294967296', 'droppedAttributesCount: expected an unsigned 32-bit integer (0 to 4294967295), got number 4294967296'],
  ];
  for (const [fields, message] of cases) {
    assert.deepEqual(await post(url, json, record(fields)), { status: 400, code: 3, message: `resourceLogs[0].scopeLogs[0].logRecords[0].${message}` }, fields);
  }
  assert.equal(ingest.calls.length, 0);
  // Each field's extremes, and a severity beyond the 24 named ones (an open enum, kept as protobuf keeps it).
  const ok = await post(url, json, record('"severityNumber":-2147483648,"flags":4294967295,"droppedAttributesCount":"4294967295"'));
  assert.equal(ok.status, 200);
  assert.equal((await post(url, json, record('"severityNumber":2147483647'))).status, 200);
  assert.equal((await post(url, json, record('"severityNumber":99'))).status, 200);
  assert.deepEqual(ingest.calls.map(([r]) => [r!.severityNumber, r!.flags, r!.droppedAttributesCount]), [[-2147483648, 4294967295, 4294967295], [2147483647, 0, 0], [99, 0, 0]]);
});

void test('503 with Retry-After when the index stage cannot store the records, never 200', async (t) => {
  const ingest = new FakeIngest();
  ingest.result = () => {
    throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', 'Elasticsearch did not accept 2 of 2 documents after 3 attempts');
  };
  const app = receiver(t, ingest);
  const res = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/json' }, payload: jsonBody(await twoRecords()) });
  assert.equal(res.statusCode, 503);
  assert.equal(res.headers['retry-after'], '7');
  assert.deepEqual(res.json(), { code: 14, message: 'Elasticsearch did not accept 2 of 2 documents after 3 attempts' });
});

void test('503 with Retry-After and an unhealthy /healthz while Elasticsearch cannot be reached', async (t) => {
  // A port nobody listens on.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const writer = new ElasticsearchWriter({
    elasticsearch: { url: `http://ci-audit:s3cret-pw@127.0.0.1:${port}`, namespace: 'default', request_timeout_ms: 1000 },
    logger,
    probeInitialDelayMs: 50,
  });
  t.after(() => writer.close());
  writer.start();
  const ingest = new Pipeline({ namespace: 'default', writer, logger });
  const app = receiver(t, ingest);

  const res = await app.inject({
    method: 'POST',
    url: '/v1/logs',
    headers: { 'content-type': 'application/x-protobuf' },
    payload: protobufBody(await twoRecords()),
  });
  assert.equal(res.statusCode, 503);
  assert.match(String(res.headers['retry-after']), /^\d+$/);
  assert.equal(decodeStatus(res.rawPayload).code, 14);
  assert.match(decodeStatus(res.rawPayload).message, /Elasticsearch is not ready \((starting|unavailable)\); retry later/);

  const health = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 503);
  assert.equal(health.json<{ elasticsearch: { ready: boolean } }>().elasticsearch.ready, false);

  // The failure is logged once at warn, with the URL and without the password.
  while (!lines.some((l) => l.level === 40)) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.url, `http://127.0.0.1:${port}/`);
  assert.equal(warnings[0]!.code, 'CIA_ERR_ES_UNAVAILABLE');
  assert.ok(lines.filter((l) => l.level === 20).length >= 1, 'later failures are logged at debug');
  assert.ok(!JSON.stringify(lines).includes('s3cret-pw'));
});

void test('GET /healthz is 200 when ready', async (t) => {
  const app = receiver(t);
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { state: 'ready', elasticsearch: { ready: true } });
});

void test('closing lets an in-flight request finish with its answer', async () => {
  const ingest = new FakeIngest();
  let release: () => void = () => undefined;
  const stored = new Promise<void>((resolve) => {
    release = resolve;
  });
  const base = ingest.result;
  ingest.ingest = async (records) => {
    ingest.calls.push(records);
    await stored;
    return base(records);
  };
  const app = createReceiver({ ingest, limits, logger: silent });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const inFlight = fetch(`${address}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody(await twoRecords()) });
  while (ingest.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
  const closing = app.close();
  release();
  const res = await inFlight;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {});
  await closing;
});

void test('an answer given after close() began closes its connection, so the close does not wait for keep-alive', async () => {
  const ingest = new FakeIngest();
  const held = Promise.withResolvers<void>();
  const entered = Promise.withResolvers<void>();
  const store = ingest.result;
  ingest.ingest = async (records) => {
    entered.resolve();
    await held.promise;
    return store(records);
  };
  const app = createReceiver({ ingest, limits, logger: silent });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const answer = fetch(`http://127.0.0.1:${port}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody(await emitRecords({ records: [{ body: 'in flight' }] })) });
  await entered.promise;
  const closed = app.close();
  // The close has begun once the server takes no new connection.
  for (;;) {
    const socket = createConnection({ host: '127.0.0.1', port });
    const refused = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(false));
      socket.once('error', () => resolve(true));
    });
    socket.destroy();
    if (refused) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  held.resolve();
  const response = await answer;
  assert.equal(response.status, 200, 'the request in flight is answered');
  assert.equal(response.headers.get('connection'), 'close');
  await response.arrayBuffer();
  await closed;
});
