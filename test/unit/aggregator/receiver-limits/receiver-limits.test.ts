// The receiver's limits through Fastify's inject (no socket): 429 with Retry-After for rates and
// in-flight work, 400 for records over their bounds or wire types that do not fit, 405/404/411.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import type { WriterState } from '../../../../aggregator/index/document-writer.ts';
import type { Ingest, IngestResult } from '../../../../aggregator/ingest.ts';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { RpcStatus } from '../../../../aggregator/receiver/otlp-proto.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import type { ReceiverOptions } from '../../../../aggregator/receiver/server.ts';
import { emitRecords, jsonBody, protobufBody } from '../otlp-fixtures.ts';

const silent = pino({ level: 'silent' });
const base = { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 256 * 1024 };

/** Holds every ingest until `open()` is called, to keep requests in flight. */
class GatedIngest implements Ingest {
  ready = true;
  state: WriterState = 'ready';
  stored = 0;
  #open: (() => void)[] = [];
  #isOpen = false;
  retryAfterSeconds(): number {
    return 5;
  }
  async ingest(records: DecodedLogRecord[]): Promise<IngestResult> {
    if (!this.#isOpen) await new Promise<void>((resolve) => this.#open.push(resolve));
    this.stored += records.length;
    return { received: records.length, created: records.length, duplicates: 0, rejected: 0 };
  }
  open(): void {
    this.#isOpen = true;
    for (const resolve of this.#open.splice(0)) resolve();
  }
}

function receiver(t: { after: (fn: () => Promise<void>) => void }, ingest: Ingest, limits: Partial<ReceiverOptions['limits']>) {
  const app = createReceiver({ ingest, limits: { ...base, ...limits }, logger: silent });
  t.after(() => app.close());
  return app;
}

async function records(n: number): Promise<Buffer> {
  return jsonBody(await emitRecords({ resource: { 'host.name': 'h' }, records: Array.from({ length: n }, (_, i) => ({ body: `line ${i}` })) }));
}

const json = { 'content-type': 'application/json' };

void test('a sender over its request rate gets 429 with Retry-After; another address is not affected', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  const app = receiver(t, ingest, { rate: { requestsPerSecond: 2, recordsPerSecond: 0, burstSeconds: 1 } });
  const payload = await records(1);
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload }));
  assert.deepEqual(answers.map((r) => r.statusCode), [200, 200, 429]);
  assert.equal(answers[2]!.headers['retry-after'], '1');
  const status = answers[2]!.json<{ code: number; message: string }>();
  assert.equal(status.code, 8);
  assert.match(status.message, /CIA_ERR_RECEIVER_RATE_LIMITED: sender address 127\.0\.0\.1 exceeds limits\.rate\.requests_per_second \(2\)/);
  const other = await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload, remoteAddress: '10.1.2.3' });
  assert.equal(other.statusCode, 200);
  assert.equal(ingest.stored, 3);
});

void test('a sender over its record rate gets 429 and nothing of that request is stored', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  const app = receiver(t, ingest, { rate: { requestsPerSecond: 0, recordsPerSecond: 10, burstSeconds: 1 } });
  assert.equal((await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload: await records(10) })).statusCode, 200);
  const res = await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload: await records(5) });
  assert.equal(res.statusCode, 429);
  assert.match(res.json<{ message: string }>().message, /records_per_second \(10\)/);
  assert.equal(ingest.stored, 10);
});

void test('beyond max_in_flight_requests the receiver answers 429 at once; capacity returns when requests finish', async (t) => {
  const ingest = new GatedIngest();
  const app = receiver(t, ingest, { inFlight: { maxRequests: 2, maxRecords: 1000, maxBytes: 1 << 20 } });
  const payload = await records(1);
  const held = [app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload }), app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload })];
  // Let both reach the ingest stage.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const refused = await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload });
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.headers['retry-after'], '1');
  assert.match(refused.json<{ message: string }>().message, /CIA_ERR_RECEIVER_OVERLOADED: .*limits\.max_in_flight_requests 2/);
  ingest.open();
  assert.deepEqual((await Promise.all(held)).map((r) => r.statusCode), [200, 200]);
  assert.equal((await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload })).statusCode, 200);
});

void test('beyond max_in_flight_records the receiver answers 429 instead of queueing decoded records', async (t) => {
  const ingest = new GatedIngest();
  const app = receiver(t, ingest, { inFlight: { maxRequests: 10, maxRecords: 15, maxBytes: 1 << 20 } });
  const held = app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload: await records(10) });
  await new Promise((resolve) => setTimeout(resolve, 50));
  const refused = await app.inject({ method: 'POST', url: '/v1/logs', headers: json, payload: await records(10) });
  assert.equal(refused.statusCode, 429);
  assert.match(refused.json<{ message: string }>().message, /10 records waiting for Elasticsearch \(limits\.max_in_flight_records 15\)/);
  ingest.open();
  assert.equal((await held).statusCode, 200);
  assert.equal(ingest.stored, 10);
});

/** A varint, as protobuf writes lengths. */
function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
  out.push(n);
  return out;
}

/** resource_logs { scope_logs { `count` empty log_records, then `after` } }: 2 bytes of protobuf a record. */
function emptyRecords(count: number, after: number[] = []): Buffer {
  const scopeLogs = Buffer.concat([Buffer.alloc(count * 2), Buffer.from(after)]);
  for (let i = 0; i < count; i++) scopeLogs[2 * i] = 0x12;
  const resourceLogs = Buffer.concat([Buffer.from([0x12, ...varint(scopeLogs.byteLength)]), scopeLogs]);
  return Buffer.concat([Buffer.from([0x0a, ...varint(resourceLogs.byteLength)]), resourceLogs]);
}

void test('a request with more records than max_in_flight_records gets 413 naming the limit, decoded no further; nothing is stored', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  // Over HTTP, as the aggregator runs; limits large enough that only the record count can refuse.
  const app = createReceiver({
    ingest,
    logger: silent,
    limits: { maxBodyBytes: 4 * 1024 * 1024, maxDecompressedBytes: 32 * 1024 * 1024, inFlight: { maxRequests: 8, maxRecords: 1000, maxBytes: 256 * 1024 * 1024 } },
  });
  t.after(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const send = async (contentType: string, body: Buffer): Promise<{ status: number; message: string }> => {
    const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': contentType, 'content-encoding': 'gzip' }, body: gzipSync(body) });
    const payload = Buffer.from(await res.arrayBuffer());
    const status = (contentType === 'application/json' ? JSON.parse(payload.toString('utf8')) : RpcStatus.toObject(RpcStatus.decode(payload))) as { message: string };
    return { status: res.status, message: status.message };
  };
  const refusal = /request holds more than limits\.max_in_flight_records \(1000\) log records: decoding stopped at record 1001; send smaller batches/;
  // 2 million empty records: 4 MB decompressed, 4 KB gzipped, some 400 MB of heap had they been decoded.
  const bomb = await send('application/x-protobuf', emptyRecords(2_000_000));
  assert.equal(bomb.status, 413);
  assert.match(bomb.message, refusal);
  // The record beyond the limit is not decoded: malformed (5 bytes long, 1 there), it would have been a 400.
  const stopped = await send('application/x-protobuf', emptyRecords(1000, [0x12, 0x05, 0xff]));
  assert.equal(stopped.status, 413);
  assert.match(stopped.message, refusal);
  const many = (n: number, last = '{}'): Buffer => Buffer.from(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[${[...Array<string>(n - 1).fill('{}'), last].join(',')}]}]}]}`);
  const json = await send('application/json', many(1001, '{"timeUnixNano":"soon"}'));
  assert.equal(json.status, 413);
  assert.match(json.message, refusal);
  assert.equal(ingest.stored, 0);
  // At the limit, both formats are stored whole.
  assert.equal((await send('application/x-protobuf', emptyRecords(1000))).status, 200);
  assert.equal((await send('application/json', many(1000))).status, 200);
  assert.equal(ingest.stored, 2000);
});

void test('a record over max_attributes_per_record gets 400 naming the record; nothing is stored', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  const app = receiver(t, ingest, { record: { maxAttributes: 5, maxValueBytes: 1000 } });
  const attributes = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
  const payload = protobufBody(await emitRecords({ resource: {}, records: [{ body: 'x', attributes }] }));
  const res = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/x-protobuf' }, payload });
  assert.equal(res.statusCode, 400);
  assert.equal(ingest.stored, 0);
});

void test('405 with Allow for other methods on /v1/logs, 404 naming the routes elsewhere, 411 without a length, 400 for an empty body', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  const app = receiver(t, ingest, {});
  const get = await app.inject({ method: 'GET', url: '/v1/logs' });
  assert.equal(get.statusCode, 405);
  assert.equal(get.headers.allow, 'POST');
  assert.match(get.json<{ message: string }>().message, /method GET not allowed on \/v1\/logs; use POST/);
  const missing = await app.inject({ method: 'POST', url: '/v1/traces', headers: json, payload: '{}' });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json<{ message: string }>().message, /no route POST \/v1\/traces: logs go to POST \/v1\/logs/);
  // inject sends no Content-Length for an absent body: the framing an HTTP/1.0 client without a length has.
  const unframed = await app.inject({ method: 'POST', url: '/v1/logs', headers: json });
  assert.equal(unframed.statusCode, 411);
  assert.match(unframed.json<{ message: string }>().message, /Content-Length required/);
  const empty = await app.inject({ method: 'POST', url: '/v1/logs', headers: { ...json, 'content-length': '0' }, payload: '' });
  assert.equal(empty.statusCode, 400);
  assert.match(empty.json<{ message: string }>().message, /empty body/);
  assert.equal(ingest.stored, 0);
});

void test('a protobuf body whose known field has the wrong wire type gets 400 naming the field', async (t) => {
  const ingest = new GatedIngest();
  ingest.open();
  const app = receiver(t, ingest, {});
  // Field 1 (resource_logs, a message) sent as a varint.
  const res = await app.inject({ method: 'POST', url: '/v1/logs', headers: { 'content-type': 'application/x-protobuf' }, payload: Buffer.from([0x08, 0x05]) });
  assert.equal(res.statusCode, 400);
  assert.equal(ingest.stored, 0);
});
