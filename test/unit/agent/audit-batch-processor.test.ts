import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { CiAuditError } from '../../../core/errors.ts';
import { Pipeline, type PipelineOptions } from '../../../agent/pipeline/pipeline.ts';
import { agentResource } from '../../../agent/resource.ts';
import type { SourceRecord } from '../../../agent/sources/source.ts';
import { captureLogger, waitFor } from './helpers.ts';

type Respond = (batch: ReadableLogRecord[], call: number) => ExportResult | Promise<ExportResult>;

/** An exporter whose answers the test decides; it records every call. */
class ScriptedExporter implements LogRecordExporter {
  calls: { bodies: unknown[]; at: number }[] = [];
  respond: Respond;
  shutdowns = 0;
  constructor(respond: Respond = () => ({ code: ExportResultCode.SUCCESS })) {
    this.respond = respond;
  }
  export(logs: ReadableLogRecord[], done: (r: ExportResult) => void): void {
    this.calls.push({ bodies: logs.map((l) => l.body), at: performance.now() });
    void Promise.resolve(this.respond(logs, this.calls.length - 1)).then(done);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    this.shutdowns++;
    return Promise.resolve();
  }
}

const ok: ExportResult = { code: ExportResultCode.SUCCESS };
const unavailable = (retryAfterMs?: number): ExportResult => ({
  code: ExportResultCode.FAILED,
  error: new CiAuditError('CIA_ERR_SHIP_UNAVAILABLE', 'aggregator unavailable: HTTP 503', {
    details: retryAfterMs === undefined ? {} : { retryAfterMs },
  }),
});
const rejected: ExportResult = {
  code: ExportResultCode.FAILED,
  error: new CiAuditError('CIA_ERR_SHIP_REJECTED', 'aggregator rejected 2 records: HTTP 400: bad', { details: { status: 400 } }),
};

function setup(t: TestContext, exporter: LogRecordExporter, options: Partial<PipelineOptions> = {}) {
  const { logger, lines } = captureLogger();
  const pipeline = new Pipeline({
    resource: agentResource({ agentId: 'a1', hostName: 'h' }),
    exporter,
    logger,
    maxBatchRecords: 3,
    maxDelayMs: 10_000,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    shutdownTimeoutMs: 500,
    ...options,
  });
  t.after(() => pipeline.shutdown());
  const acked: string[] = [];
  const record = (body: string): SourceRecord => ({
    body,
    attributes: { 'ci_audit.dataset': 'ci' },
    observedAt: Date.now(),
    ack: () => acked.push(body),
  });
  return { pipeline, acked, record, lines };
}

void test('batches by count: a full batch goes at once, in order, one export at a time', async (t) => {
  // Each export waits until the test answers it, so that the pipe is never idle here.
  const answers: ((r: ExportResult) => void)[] = [];
  const exporter = new ScriptedExporter(() => new Promise<ExportResult>((resolve) => answers.push(resolve)));
  const { pipeline, acked, record } = setup(t, exporter);
  for (const b of ['1', '2', '3', '4', '5', '6', '7']) await pipeline.sink.write(record(b));
  await waitFor(() => exporter.calls.length === 1, 2000, 'the first full batch');
  answers[0]!(ok);
  await waitFor(() => exporter.calls.length === 2, 2000, 'the second full batch');
  assert.deepEqual(exporter.calls.map((c) => c.bodies), [['1', '2', '3'], ['4', '5', '6']]);
  await waitFor(() => acked.length === 3, 2000, 'acks');
  // While a batch is exported, the seventh waits for its batch to fill (max_delay_ms is long here).
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(exporter.calls.length, 2);
  const flushed = pipeline.flush();
  answers[1]!(ok);
  await waitFor(() => exporter.calls.length === 3, 2000, 'the flushed batch');
  answers[2]!(ok);
  await flushed;
  assert.deepEqual(exporter.calls.at(-1)?.bodies, ['7']);
  assert.deepEqual(acked, ['1', '2', '3', '4', '5', '6', '7']);
});

void test('an idle pipe sends at once: the records emitted together leave together, without waiting for max_delay_ms', async (t) => {
  const answers: ((r: ExportResult) => void)[] = [];
  const exporter = new ScriptedExporter(() => new Promise<ExportResult>((resolve) => answers.push(resolve)));
  const { pipeline, acked, record } = setup(t, exporter, { maxBatchRecords: 100, maxDelayMs: 3_600_000 });
  for (const b of ['a', 'b', 'c']) assert.equal(pipeline.sink.write(record(b)), true);
  await waitFor(() => exporter.calls.length === 1, 2000, 'the partial batch of an idle pipe');
  assert.deepEqual(exporter.calls[0]?.bodies, ['a', 'b', 'c']);
  // While it is answered, the next records gather; they leave as one batch once it is.
  for (const b of ['d', 'e']) assert.equal(pipeline.sink.write(record(b)), true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(exporter.calls.length, 1, 'a second batch while the first is exported');
  answers[0]!(ok);
  await waitFor(() => exporter.calls.length === 2, 2000, 'the batch gathered meanwhile');
  assert.deepEqual(exporter.calls[1]?.bodies, ['d', 'e']);
  answers[1]!(ok);
  await waitFor(() => acked.length === 5, 2000, 'acks');
  assert.deepEqual(acked, ['a', 'b', 'c', 'd', 'e']);
});

void test('batches by time: while a batch is exported, a partial batch goes after max_delay_ms', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const exporter = new ScriptedExporter(async (_batch, call) => {
    if (call === 0) await gate;
    return ok;
  });
  const { pipeline, acked, record } = setup(t, exporter, { maxBatchRecords: 100, maxDelayMs: 60, maxInFlight: 2 });
  t.after(() => release());
  await pipeline.sink.write(record('held'));
  await waitFor(() => exporter.calls.length === 1, 2000, 'the first batch');
  const start = performance.now();
  await pipeline.sink.write(record('a'));
  await pipeline.sink.write(record('b'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(exporter.calls.length, 1);
  await waitFor(() => acked.length === 2, 2000, 'timed batch');
  assert.deepEqual(exporter.calls[1]?.bodies, ['a', 'b']);
  assert.ok(exporter.calls[1].at - start >= 55, `exported after ${exporter.calls[1].at - start} ms`);
  release();
  await pipeline.flush();
  assert.deepEqual(acked, ['a', 'b', 'held']);
});

void test('backpressure: write() waits while the queue is full and resumes when a batch is acknowledged', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const exporter = new ScriptedExporter(async () => {
    await gate;
    return ok;
  });
  const { pipeline, acked, record } = setup(t, exporter, { maxBatchRecords: 2, maxQueueRecords: 4, maxDelayMs: 5 });
  for (const b of ['1', '2', '3']) await pipeline.sink.write(record(b));
  let resumed = false;
  const room = pipeline.sink.write(record('4'));
  assert.notEqual(room, true, 'write() reported room while 4 records were held');
  const fourth = Promise.resolve(room).then(() => (resumed = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(resumed, false, 'write() resolved while 4 records were held');
  assert.equal(pipeline.processor.queued, 4);
  // Nothing is acknowledged before the aggregator accepted it.
  assert.deepEqual(acked, []);
  release();
  await fourth;
  assert.equal(resumed, true);
  await pipeline.flush();
  assert.deepEqual(acked, ['1', '2', '3', '4']);
});

void test('backpressure by bytes: a few huge records fill the queue although their count is low', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const exporter = new ScriptedExporter(async () => {
    await gate;
    return ok;
  });
  const { pipeline, acked, record } = setup(t, exporter, { maxBatchRecords: 100, maxQueueBytes: 1.5 * 1024 * 1024, maxDelayMs: 5 });
  const huge = (n: number): string => String(n).padEnd(1024 * 1024, 'x');
  // A record of a 1 MiB ASCII string is a little over 1 MiB encoded: the first fits, the second reaches the limit.
  assert.equal(pipeline.sink.write(record(huge(1))), true);
  const room = pipeline.sink.write(record(huge(2)));
  assert.notEqual(room, true, 'write() reported room with 2 MiB of records held');
  assert.equal(pipeline.processor.queued, 2);
  release();
  await room;
  await pipeline.flush();
  assert.equal(acked.length, 2);
});

void test('a retryable failure is retried with the same records until it succeeds; acks only then', async (t) => {
  const exporter = new ScriptedExporter((_batch, call) => (call < 2 ? unavailable() : ok));
  const { pipeline, acked, record, lines } = setup(t, exporter);
  for (const b of ['x', 'y']) await pipeline.sink.write(record(b));
  await pipeline.flush();
  assert.equal(exporter.calls.length, 3);
  for (const call of exporter.calls) assert.deepEqual(call.bodies, ['x', 'y']);
  assert.deepEqual(acked, ['x', 'y']);
  // The failure is logged once (same reason twice), and the recovery once.
  const warnings = lines.filter((l) => l.code === 'CIA_ERR_SHIP_UNAVAILABLE');
  assert.equal(warnings.length, 1);
  assert.ok(lines.some((l) => l.msg === 'aggregator accepts records again'));
});

void test('Retry-After from the exporter sets the wait before the next attempt', async (t) => {
  const exporter = new ScriptedExporter((_batch, call) => (call === 0 ? unavailable(150) : ok));
  const { pipeline, record } = setup(t, exporter);
  await pipeline.sink.write(record('r'));
  await pipeline.flush();
  assert.equal(exporter.calls.length, 2);
  const gap = exporter.calls[1]!.at - exporter.calls[0]!.at;
  assert.ok(gap >= 140, `retried after ${gap} ms`);
});

void test('a permanent rejection acknowledges nothing, is logged with its code and count, and later batches still go', async (t) => {
  const exporter = new ScriptedExporter((_batch, call) => (call === 0 ? rejected : ok));
  const { pipeline, acked, record, lines } = setup(t, exporter, { maxBatchRecords: 2 });
  for (const b of ['bad1', 'bad2', 'good1', 'good2']) await pipeline.sink.write(record(b));
  await pipeline.flush();
  assert.equal(exporter.calls.length, 2, 'the rejected batch is not retried');
  assert.deepEqual(acked, ['good1', 'good2']);
  assert.equal(pipeline.processor.rejected, 2);
  const error = lines.find((l) => l.code === 'CIA_ERR_SHIP_REJECTED');
  assert.equal(error?.level, 50);
  assert.equal(error?.records, 2);
  assert.match(String(error?.err), /HTTP 400: bad/);
});

void test('shutdown flushes what is queued, is safe to call twice, and shuts the exporter down once', async (t) => {
  const exporter = new ScriptedExporter();
  const { pipeline, acked, record } = setup(t, exporter, { maxBatchRecords: 100 });
  for (const b of ['a', 'b', 'c']) await pipeline.sink.write(record(b));
  await Promise.all([pipeline.shutdown(), pipeline.shutdown()]);
  await pipeline.shutdown();
  assert.deepEqual(acked, ['a', 'b', 'c']);
  assert.equal(exporter.shutdowns, 1);
  // After shutdown a write is not taken (so never acknowledged) and does not block.
  await pipeline.sink.write(record('late'));
  assert.deepEqual(acked, ['a', 'b', 'c']);
});

void test('shutdown gives up after its timeout when the aggregator stays down, acknowledging nothing', async (t) => {
  const exporter = new ScriptedExporter(() => unavailable());
  const { pipeline, acked, record, lines } = setup(t, exporter, { shutdownTimeoutMs: 100 });
  await pipeline.sink.write(record('stuck'));
  const start = performance.now();
  await pipeline.shutdown();
  assert.ok(performance.now() - start < 1000);
  assert.deepEqual(acked, []);
  assert.ok(lines.some((l) => l.records === 1 && /read and sent again after the restart/.test(String(l.msg))));
});

void test('max_in_flight: batches go at once and complete out of order; a flush waits for every earlier batch; while failing only one is retried', async (t) => {
  // Each export waits until the test answers it.
  const answers: ((r: ExportResult) => void)[] = [];
  const exporter = new ScriptedExporter(() => new Promise<ExportResult>((resolve) => answers.push(resolve)));
  const { pipeline, acked, record } = setup(t, exporter, { maxInFlight: 3 });
  for (const b of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']) await pipeline.sink.write(record(b));
  await waitFor(() => exporter.calls.length === 3, 2000, 'three batches in flight');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(exporter.calls.length, 3, 'no fourth batch while three are in flight');
  assert.deepEqual(exporter.calls.map((c) => c.bodies), [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9']]);

  // The second batch is accepted first: its records are acknowledged, but a flush of everything so
  // far waits for the first batch, and the fourth batch takes the free place.
  answers[1]!(ok);
  await waitFor(() => acked.length === 3, 2000, 'the second batch\'s acks');
  assert.deepEqual(acked, ['4', '5', '6']);
  await waitFor(() => exporter.calls.length === 4, 2000, 'the fourth batch');
  let flushed = false;
  const flush = pipeline.flush().then(() => (flushed = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(flushed, false, 'the flush waits for the first batch');

  // The first batch fails: it is retried alone; the others still in flight finish, and no new
  // batch starts until the aggregator accepts again.
  answers[0]!(unavailable());
  answers[2]!(ok);
  answers[3]!(ok);
  await waitFor(() => exporter.calls.length === 5, 2000, 'the retry of the first batch');
  assert.deepEqual(exporter.calls[4]!.bodies, ['1', '2', '3']);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(exporter.calls.length, 5, 'only the failing batch is in flight');
  answers[4]!(ok);
  await flush;
  assert.deepEqual([...acked].sort((a, b) => Number(a) - Number(b)), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
});
