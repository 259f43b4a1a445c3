import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, parseRetryAfter, retryDelay } from '../../../agent/pipeline/backoff.ts';
import { classifyResponse, maxQuotedMessageLength, responseMessage } from '../../../agent/sinks/otlp-response.ts';
import { encodeExportResponse, encodeStatus } from '../../../aggregator/receiver/otlp-encode.ts';

const empty = new Uint8Array();

/** google.rpc.Status { code = 3, message = text } */
function statusBytes(text: string): Uint8Array {
  const msg = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([0x08, 0x03, 0x12, msg.length]), msg]);
}

/** ExportLogsServiceResponse { partial_success { rejected_log_records, error_message } } */
function partialSuccessBytes(rejected: number, message: string): Uint8Array {
  const msg = Buffer.from(message, 'utf8');
  const inner = Buffer.concat([Buffer.from([0x08, rejected, 0x12, msg.length]), msg]);
  return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
}

void test('2xx is success; an OTLP partial success reports the rejected count and message', () => {
  assert.deepEqual(classifyResponse(200, {}, empty), { kind: 'success', rejected: 0 });
  assert.deepEqual(
    classifyResponse(200, { 'content-type': 'application/x-protobuf' }, partialSuccessBytes(2, 'bad attr')),
    { kind: 'success', rejected: 2, message: 'bad attr' },
  );
  // A garbled body does not undo an acceptance.
  assert.deepEqual(classifyResponse(200, { 'content-type': 'application/x-protobuf' }, Buffer.from([0x0a, 0x7f])), { kind: 'success', rejected: 0 });
});

void test('responses written by a protobuf library (the aggregator\'s encoder) read the same: multi-byte counts, unicode, unknown fields', () => {
  const protobuf = { 'content-type': 'application/x-protobuf' };
  assert.deepEqual(classifyResponse(200, protobuf, encodeExportResponse('protobuf')), { kind: 'success', rejected: 0 });
  for (const rejected of [1, 127, 128, 300, 70_000, 2 ** 31]) {
    const body = encodeExportResponse('protobuf', { rejectedLogRecords: rejected, errorMessage: `record ${rejected}: attribute é 😀 too long` });
    assert.deepEqual(classifyResponse(200, protobuf, body), { kind: 'success', rejected, message: `record ${rejected}: attribute é 😀 too long` });
  }
  // A field a later OTLP version may add (number 9, varint and length-delimited) is skipped.
  const extended = Buffer.concat([Buffer.from([0x48, 0x96, 0x01, 0x4a, 0x02, 0x61, 0x62]), encodeExportResponse('protobuf', { rejectedLogRecords: 3, errorMessage: 'x' })]);
  assert.deepEqual(classifyResponse(200, protobuf, extended), { kind: 'success', rejected: 3, message: 'x' });
  assert.equal(responseMessage('application/x-protobuf', encodeStatus('protobuf', 3, 'no dataset attribute on record 4')), 'no dataset attribute on record 4');
});

void test('408, 429 and 5xx are retryable and carry Retry-After; other 4xx are permanent', () => {
  for (const status of [408, 429, 500, 502, 503, 504]) assert.equal(classifyResponse(status, {}, empty).kind, 'retryable');
  for (const status of [400, 404, 413, 415]) assert.equal(classifyResponse(status, {}, empty).kind, 'permanent');
  // A refused credential is fixed by an operator; the records wait for that rather than being set aside.
  for (const status of [401, 403]) assert.equal(classifyResponse(status, {}, empty).kind, 'retryable');
  assert.deepEqual(classifyResponse(503, { 'retry-after': '7' }, empty), { kind: 'retryable', status: 503, reason: 'HTTP 503', retryAfterMs: 7000 });
});

void test('the message of an error response is quoted from protobuf Status, JSON or text, bounded', () => {
  assert.deepEqual(classifyResponse(400, { 'content-type': 'application/x-protobuf' }, statusBytes('missing dataset')), {
    kind: 'permanent',
    status: 400,
    reason: 'HTTP 400: missing dataset',
  });
  assert.equal(responseMessage('application/json', Buffer.from('{"code":3,"message":"nope"}')), 'nope');
  assert.equal(responseMessage('text/plain', Buffer.from('line one\nline two')), 'line one line two');
  const long = responseMessage('text/plain', Buffer.from('x'.repeat(10_000)));
  assert.equal(long.length, maxQuotedMessageLength + 1);
  assert.ok(long.endsWith('…'));
});

void test('Retry-After is read as seconds or as an HTTP date', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

void test('backoff is exponential with full jitter and a cap', () => {
  assert.equal(backoffDelay(0, {}, () => 0.999), 249);
  assert.equal(backoffDelay(3, {}, () => 0.5), 1000);
  assert.equal(backoffDelay(30, {}, () => 0.999), 29_970);
  assert.equal(backoffDelay(1000, {}, () => 0.5), 15_000);
  assert.equal(backoffDelay(5, {}, () => 0), 0);
});

void test('a Retry-After of 0 or in the past falls back to the backoff; a later one is honoured up to its cap', () => {
  const half = (): number => 0.5;
  // An aggregator whose clock is behind the agent's answers 503 with a date already past: 0.
  const past = parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', Date.parse('2026-01-01T00:00:00Z'));
  assert.equal(retryDelay(3, past, 300_000, {}, half), 1000);
  assert.equal(retryDelay(3, 0, 300_000, {}, half), 1000);
  assert.equal(retryDelay(3, undefined, 300_000, {}, half), 1000);
  assert.equal(retryDelay(3, 7000, 300_000, {}, half), 7000);
  assert.equal(retryDelay(0, 3_600_000, 300_000, {}, half), 300_000);
});
