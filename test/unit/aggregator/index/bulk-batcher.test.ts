import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchSize, BulkBatcher, flushReason, lineBytes } from '../../../../aggregator/index/bulk-batcher.ts';
import type { BatchLine, ItemResult } from '../../../../aggregator/index/bulk-batcher.ts';
import { CiAuditError } from '../../../../core/errors.ts';

const limits = { maxItems: 3, maxBytes: 100, maxDelayMs: 50 };

void test('flushReason: whichever limit comes first, and nothing while empty or young', () => {
  assert.equal(flushReason({ items: 0, bytes: 0, oldestAgeMs: 1e9 }, limits), undefined);
  assert.equal(flushReason({ items: 1, bytes: 10, oldestAgeMs: 49 }, limits), undefined);
  assert.equal(flushReason({ items: 1, bytes: 10, oldestAgeMs: 50 }, limits), 'delay');
  assert.equal(flushReason({ items: 3, bytes: 10, oldestAgeMs: 0 }, limits), 'items');
  assert.equal(flushReason({ items: 2, bytes: 100, oldestAgeMs: 0 }, limits), 'bytes');
  assert.equal(flushReason({ items: 1, bytes: 1, oldestAgeMs: 0 }, limits, true), 'closing');
  // maxDelayMs 0: every item leaves at once (given a free slot).
  assert.equal(flushReason({ items: 1, bytes: 1, oldestAgeMs: 0 }, { ...limits, maxDelayMs: 0 }), 'delay');
});

void test('batchSize respects both the byte and the item limit, and an oversized item travels alone', () => {
  assert.equal(batchSize([10, 10, 10], { maxItems: 100, maxBytes: 19 }), 1);
  assert.equal(batchSize([10, 10, 10], { maxItems: 100, maxBytes: 20 }), 2);
  assert.equal(batchSize([500, 1], { maxItems: 100, maxBytes: 10 }), 1);
  assert.equal(batchSize([1, 1, 1], { maxItems: 2, maxBytes: 1000 }), 2);
  assert.equal(batchSize([], { maxItems: 2, maxBytes: 1000 }), 0);
  assert.equal(lineBytes({ action: 'ab', document: 'é' }), 2 + 2 + 2);
});

function line(id: string): BatchLine {
  return { action: JSON.stringify({ create: { _id: id } }), document: '{}' };
}

/** A send that records each batch's ids and answers from `answer` (default: created). */
function recordingSend(answer: (id: string) => ItemResult | 'fail' = () => ({ kind: 'created' })) {
  const batches: string[][] = [];
  const send = async (lines: readonly BatchLine[]): Promise<ItemResult[]> => {
    const ids = lines.map((l) => (JSON.parse(l.action) as { create: { _id: string } }).create._id);
    batches.push(ids);
    await new Promise((r) => setImmediate(r));
    const results = ids.map(answer);
    if (results.includes('fail')) throw new CiAuditError('CIA_ERR_ES_UNAVAILABLE', 'Elasticsearch did not accept the batch; retry later');
    return results as ItemResult[];
  };
  return { batches, send };
}

void test('records of concurrent submissions share one bulk request; each gets its own results in order', async () => {
  const { batches, send } = recordingSend((id) => (id === 'b2' ? { kind: 'rejected', status: 400, error: 'mapper_parsing_exception: x' } : id === 'a1' ? { kind: 'duplicate' } : { kind: 'created' }));
  const batcher = new BulkBatcher({ maxItems: 100, maxBytes: 1e6, maxDelayMs: 20, concurrency: 2, send });
  const [a, b] = await Promise.all([batcher.submit([line('a1'), line('a2')]), batcher.submit([line('b1'), line('b2'), line('b3')])]);
  assert.deepEqual(batches, [['a1', 'a2', 'b1', 'b2', 'b3']]);
  assert.deepEqual(a, [{ kind: 'duplicate' }, { kind: 'created' }]);
  assert.deepEqual(b, [{ kind: 'created' }, { kind: 'rejected', status: 400, error: 'mapper_parsing_exception: x' }, { kind: 'created' }]);
});

void test('a full batch leaves without waiting for the delay; a submission split over batches resolves once all are done', async () => {
  const { batches, send } = recordingSend();
  // A delay far longer than the test: only the item limit (or close) can send these.
  const batcher = new BulkBatcher({ maxItems: 2, maxBytes: 1e6, maxDelayMs: 3_600_000, concurrency: 4, send });
  const first = batcher.submit([line('a1'), line('a2'), line('a3')]);
  const second = batcher.submit([line('b1')]);
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.length, 3);
  assert.equal(b.length, 1);
  assert.deepEqual(batches, [['a1', 'a2'], ['a3', 'b1']]);
  await batcher.close();
});

void test('close sends what is queued at once', async () => {
  const { batches, send } = recordingSend();
  const batcher = new BulkBatcher({ maxItems: 100, maxBytes: 1e6, maxDelayMs: 3_600_000, concurrency: 1, send });
  const pending = batcher.submit([line('a1')]);
  assert.equal(batcher.queued, 1);
  await batcher.close();
  assert.deepEqual(await pending, [{ kind: 'created' }]);
  assert.deepEqual(batches, [['a1']]);
});

void test('never more batches in flight than the concurrency; items queue meanwhile and leave together', async () => {
  const releases: Array<() => void> = [];
  const batches: number[] = [];
  let inFlight = 0;
  let most = 0;
  const send = async (lines: readonly BatchLine[]): Promise<ItemResult[]> => {
    batches.push(lines.length);
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => releases.push(resolve));
    inFlight--;
    return lines.map(() => ({ kind: 'created' as const }));
  };
  const batcher = new BulkBatcher({ maxItems: 1000, maxBytes: 1e6, maxDelayMs: 0, concurrency: 1, send });
  const all = Promise.all(Array.from({ length: 5 }, (_, i) => batcher.submit([line(`r${i}`)])));
  while (batches.reduce((a, b) => a + b, 0) < 5) {
    await new Promise((r) => setImmediate(r));
    releases.splice(0).forEach((release) => release());
  }
  const results = await all;
  assert.equal(most, 1);
  // The first request leaves alone; the four that arrived while it was in flight share the next one.
  assert.deepEqual(batches, [1, 4]);
  assert.equal(results.flat().length, 5);
});

void test('a failed batch fails every submission with an item in it, and only those', async () => {
  const { batches, send } = recordingSend((id) => (id === 'b1' ? 'fail' : { kind: 'created' }));
  const batcher = new BulkBatcher({ maxItems: 2, maxBytes: 1e6, maxDelayMs: 0, concurrency: 1, send });
  const a = batcher.submit([line('a1')]);
  const b = batcher.submit([line('b1'), line('c0')]);
  const c = batcher.submit([line('c1')]);
  assert.deepEqual(await a, [{ kind: 'created' }]);
  await assert.rejects(b, (err: CiAuditError) => err.code === 'CIA_ERR_ES_UNAVAILABLE');
  assert.deepEqual(await c, [{ kind: 'created' }]);
  assert.deepEqual(batches, [['a1'], ['b1', 'c0'], ['c1']]);
});
