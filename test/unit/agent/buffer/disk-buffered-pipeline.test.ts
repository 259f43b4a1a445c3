// The Pipeline with the disk buffer, on real files, with an exporter the test holds back: source
// acks run once records are durable (before any delivery), and drop_oldest reports each dropped
// segment as a gap record with its count and id range, with exact accounting of every record.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { DiskBuffer } from '../../../../agent/buffer/disk-buffer.ts';
import { Pipeline } from '../../../../agent/pipeline/pipeline.ts';
import { agentResource } from '../../../../agent/resource.ts';
import { createLogger } from '../../../../core/logger.ts';
import { recordAttr } from '../../../../core/wire.ts';

const logger = createLogger({ name: 'test', level: 'silent' });

async function bufferDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-buffered-pipeline-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An exporter that accepts only while `open`; batches sent before wait. */
function gatedExporter(): { exporter: LogRecordExporter; exported: ReadableLogRecord[]; open(): void } {
  const exported: ReadableLogRecord[] = [];
  let waiting: (() => void)[] = [];
  let isOpen = false;
  const exporter: LogRecordExporter = {
    export(records, done: (r: ExportResult) => void) {
      const deliver = (): void => {
        exported.push(...records);
        done({ code: ExportResultCode.SUCCESS });
      };
      if (isOpen) deliver();
      else waiting.push(deliver);
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  return {
    exporter,
    exported,
    open() {
      isOpen = true;
      for (const deliver of waiting) deliver();
      waiting = [];
    },
  };
}

const id = (n: number): string => `r-${String(n).padStart(5, '0')}`;

test('drop_oldest under a stalled aggregator: sources never wait, each drop is a gap record with count and id range, every record accounted for', async (t) => {
  const dir = await bufferDir(t);
  const opened = await DiskBuffer.open({ dir, maxBytes: 16_384, segmentBytes: 4096, fsync: 'always', fsyncIntervalMs: 1000, overflow: 'drop_oldest', logger });
  const gate = gatedExporter();
  const pipeline = new Pipeline({ resource: agentResource({ agentId: 'test' }), exporter: gate.exporter, logger, maxBatchRecords: 10, maxDelayMs: 10, diskBuffer: opened });
  let acked = 0;
  const total = 600;
  for (let n = 0; n < total; n++) {
    const written = pipeline.sink.write({ body: `line ${n} `.padEnd(120, 'x'), attributes: { [recordAttr.dataset]: 'ci', [recordAttr.recordId]: id(n) }, observedAt: Date.now(), ack: () => void acked++ });
    if (written !== true) await written;
  }
  await opened.buffer.flushed();
  assert.equal(acked, total, 'every record acknowledged to its source once durable, none delivered yet');
  gate.open();
  await pipeline.flush();
  await pipeline.shutdown();
  const gaps = gate.exported.filter((r) => r.attributes[recordAttr.gap] === true);
  assert.ok(gaps.length > 0, 'the buffer overflowed and dropped');
  const delivered = new Set(gate.exported.filter((r) => r.attributes[recordAttr.gap] !== true).map((r) => String(r.attributes[recordAttr.recordId])));
  const dropped = new Set<string>();
  for (const gap of gaps) {
    const m = /dropped (\d+) unsent records, ids r-(\d+) to r-(\d+)/.exec(String(gap.body));
    assert.ok(m !== null, `gap body: ${String(gap.body)}`);
    const [first, last] = [Number(m[2]), Number(m[3])];
    assert.equal(last - first + 1, Number(m[1]));
    for (let n = first; n <= last; n++) dropped.add(id(n));
  }
  for (let n = 0; n < total; n++) {
    assert.ok(delivered.has(id(n)) !== dropped.has(id(n)), `${id(n)} is either delivered or inside a reported drop, not both or neither (delivered: ${delivered.has(id(n))})`);
  }
});

test('block: a stalled aggregator makes the sources wait once the buffer is full; all delivered when it returns', async (t) => {
  const dir = await bufferDir(t);
  const opened = await DiskBuffer.open({ dir, maxBytes: 16_384, segmentBytes: 4096, fsync: 'always', fsyncIntervalMs: 1000, overflow: 'block', logger });
  const gate = gatedExporter();
  const pipeline = new Pipeline({ resource: agentResource({ agentId: 'test' }), exporter: gate.exporter, logger, maxBatchRecords: 10, maxDelayMs: 10, diskBuffer: opened });
  let n = 0;
  const record = (i: number) => ({ body: `line ${i} `.padEnd(120, 'x'), attributes: { [recordAttr.dataset]: 'ci', [recordAttr.recordId]: id(i) }, observedAt: Date.now(), ack: () => undefined });
  let blocked: Promise<void> | undefined;
  while (blocked === undefined && n < 10_000) {
    const written = pipeline.sink.write(record(n++));
    if (written !== true) blocked = written;
    else if (n % 20 === 0) await opened.buffer.flushed();
  }
  assert.ok(blocked !== undefined, 'the sink asked the source to wait');
  assert.ok(n < 300, `it did so once about max_bytes was buffered (after ${n} records)`);
  gate.open();
  await blocked;
  for (let i = n; i < n + 50; i++) {
    const written = pipeline.sink.write(record(i));
    if (written !== true) await written;
  }
  await pipeline.flush();
  await pipeline.shutdown();
  const ids = new Set(gate.exported.map((r) => String(r.attributes[recordAttr.recordId])));
  assert.equal(ids.size, n + 50);
  assert.equal(gate.exported.some((r) => r.attributes[recordAttr.gap] === true), false, 'block never drops');
});
