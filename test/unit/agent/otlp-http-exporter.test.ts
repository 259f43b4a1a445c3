import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib';
import { ExportResultCode } from '@opentelemetry/core';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { hasErrorCode } from '../../../core/errors.ts';
import { Pipeline } from '../../../agent/pipeline/pipeline.ts';
import { agentResource } from '../../../agent/resource.ts';
import { logsEndpoint, OtlpHttpLogExporter } from '../../../agent/sinks/otlp-http-exporter.ts';
import { captureLogger, makeRecords } from './helpers.ts';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** Bytes on the wire, before decompression. */
  wireBytes: number;
  at: number;
}

type Handler = (req: Received, res: ServerResponse, n: number) => void;

/** A real HTTP server on a free port that keeps every request (body decompressed). */
async function otlpServer(t: TestContext, handler: Handler): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const encoding = req.headers['content-encoding'];
      const body = encoding === 'gzip' ? gunzipSync(raw) : encoding === 'zstd' ? zstdDecompressSync(raw) : raw;
      const r = { method: req.method, url: req.url, headers: req.headers, body, wireBytes: raw.length, at: performance.now() };
      received.push(r);
      handler(r, res, received.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, received };
}

void test('logsEndpoint appends /v1/logs with one slash', () => {
  assert.equal(logsEndpoint('http://a:4318').href, 'http://a:4318/v1/logs');
  assert.equal(logsEndpoint('http://a:4318/otlp/').href, 'http://a:4318/otlp/v1/logs');
});

void test('posts gzipped protobuf with content type and bearer token; 200 is success', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res) => {
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
  const { logger, lines } = captureLogger();
  const exporter = new OtlpHttpLogExporter({ url, token: 's3cret-token', timeoutMs: 2000, logger });
  t.after(() => exporter.shutdown());
  const records = makeRecords(['first line', 'second line']);
  const result = await exporter.send(records);
  assert.equal(result.code, ExportResultCode.SUCCESS);
  assert.equal(received.length, 1);
  const req = received[0]!;
  assert.equal(req.method, 'POST');
  assert.equal(req.url, '/v1/logs');
  assert.equal(req.headers['content-type'], 'application/x-protobuf');
  assert.equal(req.headers['content-encoding'], 'gzip');
  assert.equal(req.headers.authorization, 'Bearer s3cret-token');
  assert.match(String(req.headers['user-agent']), /^ci-audit-agent\//);
  // The body is exactly the ExportLogsServiceRequest of the records.
  assert.deepEqual(new Uint8Array(req.body), ProtobufLogsSerializer.serializeRequest(records));
  assert.ok(req.body.includes('second line'));
  assert.ok(req.body.includes('ci_audit.agent.id'));
  assert.ok(!JSON.stringify(lines).includes('s3cret-token'));
});

void test('output.compression_level sets the gzip level: the same request, fewer bytes at 9 than at 1', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res) => res.writeHead(200).end());
  const records = makeRecords(Array.from({ length: 400 }, (_, i) => `sshd[${2000 + (i % 50)}]: Accepted publickey for deploy from 203.0.113.${i % 200} port ${40000 + i} ssh2`));
  for (const compressionLevel of [1, 9]) {
    const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger: captureLogger().logger, compressionLevel });
    t.after(() => exporter.shutdown());
    assert.equal((await exporter.send(records)).code, ExportResultCode.SUCCESS);
  }
  const [fast, small] = received;
  assert.deepEqual(fast!.body, small!.body);
  assert.deepEqual(new Uint8Array(fast!.body), ProtobufLogsSerializer.serializeRequest(records));
  assert.ok(small!.wireBytes < fast!.wireBytes, `level 9 wrote ${small!.wireBytes} bytes, level 1 ${fast!.wireBytes}`);
});

void test('output.compression zstd and none: the same request, with Content-Encoding zstd or none; zstd at a higher level fewer bytes', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res) => res.writeHead(200).end());
  const records = makeRecords(Array.from({ length: 400 }, (_, i) => `sshd[${2000 + (i % 50)}]: Accepted publickey for deploy from 203.0.113.${i % 200} port ${40000 + i} ssh2`));
  const settings = [{ compression: 'zstd', compressionLevel: 1 }, { compression: 'zstd', compressionLevel: 19 }, { compression: 'none' }, { compression: 'gzip' }] as const;
  for (const options of settings) {
    const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger: captureLogger().logger, ...options });
    t.after(() => exporter.shutdown());
    assert.equal((await exporter.send(records)).code, ExportResultCode.SUCCESS);
  }
  assert.deepEqual(received.map((r) => r.headers['content-encoding']), ['zstd', 'zstd', undefined, 'gzip']);
  const request = ProtobufLogsSerializer.serializeRequest(records) ?? assert.fail('the request did not serialize');
  for (const r of received) assert.deepEqual(new Uint8Array(r.body), request);
  const [zstd1 = 0, zstd19 = 0, none = 0, gzip = 0] = received.map((r) => r.wireBytes);
  assert.equal(none, request.byteLength);
  assert.ok(zstd19 < zstd1 && zstd1 < gzip && gzip < none, `zstd 19: ${zstd19}, zstd 1: ${zstd1}, gzip: ${gzip}, none: ${none} bytes`);
});

void test('a set-aside batch sent again is labelled gzip, whatever output.compression is', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res) => res.writeHead(200).end());
  const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger: captureLogger().logger, compression: 'zstd' });
  t.after(() => exporter.shutdown());
  const request = ProtobufLogsSerializer.serializeRequest(makeRecords(['set aside once'])) ?? assert.fail('the request did not serialize');
  assert.equal((await exporter.sendEncoded(gzipSync(request), 1)).code, ExportResultCode.SUCCESS);
  const [resent] = received;
  assert.equal(resent?.headers['content-encoding'], 'gzip');
  assert.deepEqual(new Uint8Array(resent.body), request);
});

void test('no Authorization header without a token', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res) => res.writeHead(200).end());
  const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger: captureLogger().logger });
  t.after(() => exporter.shutdown());
  assert.equal((await exporter.send(makeRecords(['x']))).code, ExportResultCode.SUCCESS);
  assert.equal(received[0]?.headers.authorization, undefined);
});

void test('503 with Retry-After is retried after the wait, then 200 acknowledges the records', async (t) => {
  const { url, received } = await otlpServer(t, (_r, res, n) => {
    if (n === 0) res.writeHead(503, { 'retry-after': '1', 'content-type': 'text/plain' }).end('overloaded');
    else res.writeHead(200).end();
  });
  const { logger, lines } = captureLogger();
  const exporter = new OtlpHttpLogExporter({ url: `http://agent:pw@${url.slice('http://'.length)}`, token: 'tok-123', timeoutMs: 2000, logger });
  const pipeline = new Pipeline({ resource: agentResource({ agentId: 'a1' }), exporter, logger, maxBatchRecords: 10, maxDelayMs: 10 });
  t.after(() => pipeline.shutdown());
  const acked: string[] = [];
  await pipeline.sink.write({ body: 'audit line', attributes: {}, observedAt: Date.now(), ack: () => acked.push('audit line') });
  await pipeline.flush();
  assert.equal(received.length, 2);
  assert.deepEqual(received[0]!.body, received[1]!.body, 'the same batch is sent again');
  const gap = received[1]!.at - received[0]!.at;
  assert.ok(gap >= 950, `retried after ${gap} ms, Retry-After asked for 1 s`);
  assert.deepEqual(acked, ['audit line']);
  const warning = lines.find((l) => l.code === 'CIA_ERR_SHIP_UNAVAILABLE');
  assert.match(String(warning?.err), /HTTP 503: overloaded/);
  // Credentials in the URL and the token never reach the log.
  const logged = JSON.stringify(lines);
  assert.ok(!logged.includes(':pw@') && !logged.includes('tok-123'), logged);
  assert.ok(logged.includes('agent:***@127.0.0.1'));
});

void test('400 is a permanent rejection carrying the aggregator\'s message', async (t) => {
  const { url } = await otlpServer(t, (_r, res) => {
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 3, message: 'record without dataset' }));
  });
  const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger: captureLogger().logger });
  t.after(() => exporter.shutdown());
  const result = await exporter.send(makeRecords(['a', 'b']));
  assert.equal(result.code, ExportResultCode.FAILED);
  assert.ok(hasErrorCode(result.error, 'CIA_ERR_SHIP_REJECTED'));
  assert.match(result.error.message, /rejected 2 records: HTTP 400: record without dataset/);
});

void test('an OTLP partial success is success, logged as an error', async (t) => {
  const partial = Buffer.from([0x0a, 0x07, 0x08, 0x01, 0x12, 0x03, 0x62, 0x61, 0x64]); // rejected 1, "bad"
  const { url } = await otlpServer(t, (_r, res) => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(partial));
  const { logger, lines } = captureLogger();
  const exporter = new OtlpHttpLogExporter({ url, timeoutMs: 2000, logger });
  t.after(() => exporter.shutdown());
  assert.equal((await exporter.send(makeRecords(['a', 'b']))).code, ExportResultCode.SUCCESS);
  const error = lines.find((l) => l.code === 'CIA_ERR_SHIP_REJECTED');
  assert.equal(error?.level, 50);
  assert.equal(error?.rejected, 1);
  assert.equal(error?.message, 'bad');
});

void test('a refused connection and a timeout are retryable', async (t) => {
  const { url } = await otlpServer(t, () => {
    // Never answers.
  });
  const { logger } = captureLogger();
  const slow = new OtlpHttpLogExporter({ url, timeoutMs: 100, logger });
  t.after(() => slow.shutdown());
  const timedOut = await slow.send(makeRecords(['a']));
  assert.ok(hasErrorCode(timedOut.error, 'CIA_ERR_SHIP_UNAVAILABLE'));
  assert.match(timedOut.error.message, /no response within 100 ms/);

  const closed = new OtlpHttpLogExporter({ url: 'http://127.0.0.1:1', timeoutMs: 1000, logger });
  t.after(() => closed.shutdown());
  const refused = await closed.send(makeRecords(['a']));
  assert.ok(hasErrorCode(refused.error, 'CIA_ERR_SHIP_UNAVAILABLE'));
  assert.match(refused.error.message, /ECONNREFUSED/);
});
