// Malformed and hostile requests against a real `ci-audit aggregator run` process and the real
// Elasticsearch in ES_URL. Each kind gets the right 4xx with a message saying what was wrong; the
// process stays up and healthy, its peak memory stays under a generous bound (a bound, not a timing),
// and nothing of them is indexed: the namespace holds exactly the records of the accepted requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { constants, createGzip, createZstdCompress, zstdCompressSync } from 'node:zlib';
import { CliProcess } from '../../../scripts/lib/cli-process.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { agentAttributes, agentResource, emitRecords, jsonBody, protobufBody } from '../../unit/aggregator/otlp-fixtures.ts';
import { chunks, rawRequest } from './raw-http.ts';
import type { RawResponse } from './raw-http.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));
const run = promisify(execFile);
const requestTimeoutMs = 3000;
const maxInFlightRequests = 64;
/** Peak resident memory allowed for the aggregator after all of this: generous, a bound not a timing. */
const maxPeakRssBytes = 400 * 1024 * 1024;

interface Case {
  name: string;
  /** Request line and headers. */
  head: string;
  body?: Buffer | Iterable<Buffer> | AsyncIterable<Buffer>;
  status: number;
  message: RegExp;
  /**
   * The server answers before it has read the whole body and closes the connection. When the
   * client is still sending, the closing side's kernel resets the connection, and a reset can
   * discard the answer before the client reads it (RFC 7230 6.6 warns of exactly this). Then the
   * refusal shows as a reset instead of the status: accepted for these cases only, with the
   * server's health and the index checked as for every other case.
   */
  answerMayBeLostToReset?: boolean;
}

function post(contentType: string | undefined, body: Buffer, extra: string[] = [], path = '/v1/logs'): { head: string; body: Buffer } {
  const headers = [`POST ${path} HTTP/1.1`, 'Host: aggregator', `Content-Length: ${body.byteLength}`, ...extra];
  if (contentType !== undefined) headers.push(`Content-Type: ${contentType}`);
  return { head: headers.join('\r\n'), body };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const oneRecord = (logRecord: Record<string, unknown>, attributes: unknown[] = []): Buffer =>
  json({ resourceLogs: [{ resource: { attributes }, scopeLogs: [{ logRecords: [logRecord] }] }] });

/** A protobuf message field: tag, length, bytes. */
function field(number: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(number << 3) | 2, payload.byteLength]), payload]);
}

async function gzipBomb(decompressedBytes: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const part of Readable.from(chunks(decompressedBytes / 65_536, 65_536, 0)).pipe(createGzip({ level: 9 }))) out.push(part as Buffer);
  return Buffer.concat(out);
}

/** A zstd bomb as a streaming sender writes it: no content size in the frame header. */
async function zstdBomb(decompressedBytes: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const part of Readable.from(chunks(decompressedBytes / 65_536, 65_536, 0)).pipe(createZstdCompress())) out.push(part as Buffer);
  return Buffer.concat(out);
}

async function* trickle(bytes: number, everyMs: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes; i++) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    yield Buffer.from('{');
  }
}

/** 100 MB in HTTP chunked framing, generated as it is sent. */
function* chunked(total: number, size: number): Generator<Buffer> {
  const data = Buffer.alloc(size, 0x41);
  const frame = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
  for (let sent = 0; sent < total; sent += size) yield frame;
  yield Buffer.from('0\r\n\r\n');
}

function deepArray(levels: number): unknown {
  let value: unknown = { stringValue: 'bottom' };
  for (let i = 0; i < levels; i++) value = { arrayValue: { values: [value] } };
  return value;
}

function peakRss(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((status) => Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) * 1024);
}

function messageOf(response: RawResponse): string {
  try {
    return String((JSON.parse(response.body) as { message?: unknown }).message);
  } catch {
    return response.body;
  }
}

void test('malformed and hostile requests: the right 4xx each, the process stays up, memory bounded, nothing indexed', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('hostile_it');
  const dir = await mkdtemp(join(tmpdir(), 'cia-hostile-'));
  const started: { aggregator?: CliProcess } = {};
  t.after(async () => {
    try {
      await started.aggregator?.stop();
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  const configFile = join(dir, 'aggregator.yaml');
  await writeFile(configFile, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    elasticsearch: { namespace },
    log: { level: 'info' },
    limits: {
      max_body_bytes: 4 * 1024 * 1024,
      max_decompressed_bytes: 8 * 1024 * 1024,
      request_timeout_ms: requestTimeoutMs,
      max_in_flight_requests: maxInFlightRequests,
      max_attributes_per_record: 1000,
      max_attribute_value_bytes: 1024 * 1024,
      rate: { requests_per_second: 1000, records_per_second: 100, burst_seconds: 1 },
    },
  }));
  const aggregator = new CliProcess(['aggregator', 'run', '--config', configFile], { ES_URL: esUrl });
  started.aggregator = aggregator;
  const url = String((await aggregator.waitForLog((l) => l.msg === 'receiver listening')).url);
  const port = Number(new URL(url).port);
  const healthy = async (): Promise<boolean> => (await fetch(`${url}/healthz`)).status === 200;
  await eventually(healthy, 'the aggregator to report Elasticsearch ready');
  const pid = aggregator.child.pid!;
  const rssBefore = await peakRss(pid);

  const valid = await emitRecords({ resource: { 'host.name': 'hostile-it' }, records: [{ body: 'first' }, { body: 'second' }, { body: 'third' }] });
  const validProto = protobufBody(valid);
  // resource_logs { scope_logs { log_records { severity_text: 0xff 0xfe } } }: not UTF-8.
  const notUtf8 = field(1, field(2, field(2, Buffer.from([0x1a, 0x02, 0xff, 0xfe]))));
  const manyAttributes = Array.from({ length: 5000 }, (_, i) => ({ key: `k${i}`, value: { intValue: i } }));
  const bomb = await gzipBomb(128 * 1024 * 1024);
  t.diagnostic(`gzip bomb: ${bomb.byteLength} bytes -> 128 MiB`);
  const zBomb = await zstdBomb(128 * 1024 * 1024);
  t.diagnostic(`zstd bomb: ${zBomb.byteLength} bytes -> 128 MiB`);
  // A frame that asks for a 128 MiB window (zstd's own limit by default): refused before zstd allocates it.
  const wideWindow = zstdCompressSync(Buffer.alloc(16 * 1024 * 1024), { params: { [constants.ZSTD_c_windowLog]: 27, [constants.ZSTD_c_contentSizeFlag]: 0 } });

  const cases: Case[] = [
    { name: 'truncated protobuf', ...post('application/x-protobuf', validProto.subarray(0, validProto.byteLength - 7)), status: 400, message: /not a protobuf ExportLogsServiceRequest: index out of range/ },
    { name: 'protobuf with a wrong wire type', ...post('application/x-protobuf', Buffer.from([0x08, 0x05])), status: 400, message: /resourceLogs: field 1 has wire type 0/ },
    { name: 'non-UTF-8 bytes in a protobuf string field', ...post('application/x-protobuf', notUtf8), status: 400, message: /not valid for encoding utf-8/ },
    { name: 'protobuf bytes sent as JSON', ...post('application/json', validProto), status: 400, message: /body is not UTF-8, as OTLP\/JSON must be: invalid byte 0x[0-9a-f]{2} at byte \d+/ },
    { name: 'invalid JSON', ...post('application/json', Buffer.from('{"resourceLogs": [')), status: 400, message: /body is not valid JSON/ },
    { name: 'wrong field type in JSON', ...post('application/json', oneRecord({ severityText: 42 })), status: 400, message: /logRecords\[0\]\.severityText: expected a string, got number 42/ },
    { name: 'JSON nested deeper than allowed', ...post('application/json', oneRecord({ body: deepArray(500) })), status: 400, message: /nested deeper than 64 levels/ },
    { name: 'negative timestamp', ...post('application/json', oneRecord({ timeUnixNano: '-5' })), status: 400, message: /timeUnixNano: expected an unsigned 64-bit integer/ },
    { name: 'timestamp beyond 64 bits', ...post('application/json', oneRecord({ timeUnixNano: '99999999999999999999999' })), status: 400, message: /timeUnixNano: expected an unsigned 64-bit integer/ },
    { name: 'huge attribute count', ...post('application/json', oneRecord({ body: { stringValue: 'x' } }, manyAttributes)), status: 400, message: /5000 attributes .* exceed limits\.max_attributes_per_record \(1000\)/ },
    { name: 'huge single attribute', ...post('application/json', oneRecord({ attributes: [{ key: 'blob', value: { stringValue: 'x'.repeat(2 * 1024 * 1024) } }] })), status: 400, message: /attribute "blob" is a string of 2097152 bytes, beyond limits\.max_attribute_value_bytes/ },
    { name: 'empty body', ...post('application/json', Buffer.alloc(0)), status: 400, message: /empty body/ },
    { name: 'wrong content type', ...post('text/plain', json({})), status: 415, message: /unsupported Content-Type "text\/plain"/ },
    { name: 'missing content type', ...post(undefined, json({})), status: 415, message: /unsupported Content-Type \(none\)/ },
    { name: 'unsupported content encoding', ...post('application/json', json({}), ['Content-Encoding: br']), status: 415, message: /unsupported Content-Encoding "br"; use one of gzip, zstd, identity/ },
    { name: 'corrupt gzip', ...post('application/x-protobuf', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xde, 0xad, 0xbe, 0xef]), ['Content-Encoding: gzip']), status: 400, message: /not valid gzip data/ },
    { name: 'gzip bomb', ...post('application/x-protobuf', bomb, ['Content-Encoding: gzip']), status: 413, message: /decompressed body exceeds limits\.max_decompressed_bytes/ },
    { name: 'corrupt zstd', ...post('application/x-protobuf', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]), ['Content-Encoding: zstd']), status: 400, message: /not valid zstd data/ },
    { name: 'zstd bomb', ...post('application/x-protobuf', zBomb, ['Content-Encoding: zstd']), status: 413, message: /decompressed body exceeds limits\.max_decompressed_bytes/ },
    { name: 'zstd window beyond 8 MiB', ...post('application/x-protobuf', wideWindow, ['Content-Encoding: zstd']), status: 400, message: /zstd window exceeds 8388608 bytes/ },
    { name: '100 MB body with Content-Length (streamed)', head: 'POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 104857600', body: chunks(1600, 65_536), status: 413, message: /body exceeds limits\.max_body_bytes/ , answerMayBeLostToReset: true },
    { name: '100 MB chunked body (streamed)', head: 'POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked', body: chunked(100 * 1024 * 1024, 65_536), status: 413, message: /body exceeds limits\.max_body_bytes/ , answerMayBeLostToReset: true },
    { name: 'GET on /v1/logs', head: 'GET /v1/logs HTTP/1.1\r\nHost: a', status: 405, message: /method GET not allowed on \/v1\/logs; use POST/ },
    { name: 'a path that does not exist', ...post('application/json', json({}), [], '/v1/metrics'), status: 404, message: /no route POST \/v1\/metrics/ },
    { name: 'Transfer-Encoding chunked and Content-Length both', head: 'POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked', body: Buffer.from('0\r\n\r\n'), status: 400, message: /malformed HTTP request/ },
    { name: 'HTTP/1.0 without a length', head: 'POST /v1/logs HTTP/1.0\r\nHost: a\r\nContent-Type: application/json', body: json({}), status: 411, message: /Content-Length required/ },
    { name: 'slow body (slowloris)', head: 'POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000', body: trickle(1000, 200), status: 408, message: /request not received within limits\.request_timeout_ms \(3000 ms\)/ , answerMayBeLostToReset: true },
  ];
  const answers = await Promise.all(
    cases.map(async (c) => {
      try {
        return { c, response: await rawRequest(port, c.head, { ...(c.body === undefined ? {} : { body: c.body }), timeoutMs: 60_000 }) };
      } catch (err) {
        if (c.answerMayBeLostToReset === true && /connection closed without an answer/.test((err as Error).message)) {
          t.diagnostic(`${c.name}: refused, the answer lost to a connection reset`);
          return { c, response: undefined };
        }
        throw new Error(`${c.name}: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
  for (const { c, response } of answers) {
    if (response === undefined) continue;
    assert.equal(response.status, c.status, `${c.name}: got ${response.status} ${response.body}`);
    assert.match(messageOf(response), c.message, c.name);
  }
  assert.ok(await healthy(), 'healthy after the malformed requests');

  // 200 connections that send their headers and hold the body: at most max_in_flight_requests are
  // admitted (and later cut off by the request timeout); the rest get 429 with Retry-After at once.
  const held = await Promise.all(Array.from({ length: 200 }, () =>
    rawRequest(port, 'POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000', { body: Buffer.from('{"resourceLogs":'), timeoutMs: 60_000 })));
  const statuses = new Map<number, number>();
  for (const r of held) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  t.diagnostic(`200 held connections: ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.deepEqual([...statuses.keys()].sort(), [408, 429]);
  assert.ok((statuses.get(429) ?? 0) >= 200 - maxInFlightRequests, 'beyond the in-flight bound, 429');
  const refused = held.find((r) => r.status === 429)!;
  assert.equal(refused.headers['retry-after'], '1');
  assert.match(messageOf(refused), /CIA_ERR_RECEIVER_OVERLOADED: .*limits\.max_in_flight_requests 64/);
  assert.ok(await healthy(), 'healthy after the held connections');

  // A sender over its record rate (100/s, bucket 100) sends two batches of 100 at once: the records are
  // counted as soon as a body is decoded, so one batch is stored and the other refused with Retry-After.
  const batch = async (label: string): Promise<Buffer> =>
    jsonBody(await emitRecords({ resource: { 'host.name': 'rate-it' }, records: Array.from({ length: 100 }, (_, i) => ({ body: `${label} ${i}` })) }));
  const fromOther = { localAddress: '127.0.0.2', timeoutMs: 60_000 };
  const rated = await Promise.all(['batch a', 'batch b'].map(async (label) => {
    const body = await batch(label);
    return rawRequest(port, post('application/json', body).head, { ...fromOther, body });
  }));
  assert.deepEqual(rated.map((r) => r.status).sort(), [200, 429], rated.map((r) => r.body).join(' | '));
  const overRate = rated.find((r) => r.status === 429)!;
  assert.equal(overRate.headers['retry-after'], '1');
  assert.match(messageOf(overRate), /CIA_ERR_RECEIVER_RATE_LIMITED: sender address 127\.0\.0\.2 exceeds limits\.rate\.records_per_second \(100\)/);

  // One valid request from the usual sender is still accepted.
  const accepted = await rawRequest(port, post('application/x-protobuf', validProto).head, { body: validProto, timeoutMs: 60_000 });
  assert.equal(accepted.status, 200, accepted.body);
  assert.ok(aggregator.running, 'the aggregator process is still running');

  const rssAfter = await peakRss(pid);
  t.diagnostic(`aggregator peak RSS (VmHWM): ${Math.round(rssBefore / 1048576)} MiB at start, ${Math.round(rssAfter / 1048576)} MiB after`);
  assert.ok(rssAfter < maxPeakRssBytes, `peak RSS ${rssAfter} bytes within ${maxPeakRssBytes}`);

  // Exactly the accepted records: 100 within the rate + 3 valid; nothing of the rest.
  const index = `logs-ci_audit.*-${namespace}`;
  await es.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  const count = await es.count({ index, allow_no_indices: true, ignore_unavailable: true });
  assert.equal(count.count, 103);
});

void test('with token auth, a request claiming another agent id gets 403 and nothing of it is indexed', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('hostile_auth_it');
  const dir = await mkdtemp(join(tmpdir(), 'cia-hostile-auth-'));
  const started: { aggregator?: CliProcess } = {};
  t.after(async () => {
    try {
      await started.aggregator?.stop();
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  const configFile = join(dir, 'aggregator.yaml');
  await writeFile(configFile, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    auth: { mode: 'token', registry_file: join(dir, 'agents.json') },
    elasticsearch: { namespace },
    retention: { enforce: false },
    log: { level: 'info' },
  }));
  const aggregator = new CliProcess(['aggregator', 'run', '--config', configFile], { ES_URL: esUrl });
  started.aggregator = aggregator;
  const url = String((await aggregator.waitForLog((l) => l.msg === 'receiver listening')).url);
  const port = Number(new URL(url).port);
  await eventually(async () => (await fetch(`${url}/healthz`)).status === 200, 'the aggregator to report Elasticsearch ready');

  const { stdout } = await run(process.execPath, [bin, 'aggregator', 'enrollment-token', '-c', configFile, '--uses', '1', '--ttl', '10m']);
  const enrolled = await fetch(`${url}/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${stdout.trim()}` }, body: JSON.stringify({ agent_id: 'hostile-agent-a' }) });
  assert.equal(enrolled.status, 200);
  const token = ((await enrolled.json()) as { token: string }).token;

  const forged = protobufBody(await emitRecords({ resource: agentResource('hostile-agent-b'), records: [{ body: 'forged', attributes: agentAttributes('ci', 'forged-1', '/x.log', 0) }] }));
  const response = await rawRequest(port, post('application/x-protobuf', forged, [`Authorization: Bearer ${token}`]).head, { body: forged, timeoutMs: 60_000 });
  assert.equal(response.status, 403);
  assert.ok(!response.body.includes(token), 'the token is not echoed');
  assert.ok(aggregator.running && (await fetch(`${url}/healthz`)).status === 200, 'still up and healthy');
  const index = `logs-ci_audit.*-${namespace}`;
  await es.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
  assert.equal((await es.count({ index, allow_no_indices: true, ignore_unavailable: true })).count, 0);
});
