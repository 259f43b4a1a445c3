// The circuit breaker's drain on a real spool folder, with a fake inner writer whose writes the test
// answers when it chooses: how many spooled batches share a write, in which order they are deleted,
// that the spool empties while requests keep coming, and what happens to records Elasticsearch
// refuses for good. (With a real Elasticsearch: test/integration/storage/spool*.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import type { FailedItem } from '../../../../aggregator/index/bulk-result.ts';
import type { DocumentWriter, WriteResult, WriterState } from '../../../../aggregator/index/document-writer.ts';
import type { MappedRecord } from '../../../../aggregator/map/ecs.ts';
import { spooledRecords, tempDir } from './fixtures.ts';
import { parseBatch, Spool } from '../../../../aggregator/spool/spool.ts';
import { itemsByBatch, SpoolingWriter } from '../../../../aggregator/spool/spooling-writer.ts';

/** Their message names a secret: the logs must never hold it. */
const records = (from: number, n: number): MappedRecord[] => spooledRecords(from, n, 'secret-token-');

const ids = (rs: readonly MappedRecord[]): string[] => rs.map((r) => r.id!);
const range = (from: number, n: number): string[] => ids(records(from, n));

/** Lets pending I/O and promise reactions run (a few turns of the event loop). */
async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** An inner writer that is always ready; while `hold` is set, its writes wait for release(). */
class FakeWriter implements DocumentWriter {
  readonly ready = true;
  readonly state: WriterState = 'ready';
  readonly calls: MappedRecord[][] = [];
  hold = false;
  /** The outcome of a write; default: every record created. */
  reply: (records: readonly MappedRecord[]) => WriteResult = (rs) => ({ created: rs.length, duplicates: 0, rejected: [], deadLettered: [] });
  /** Runs before a write is answered, as the Elasticsearch writer runs onChainConflicts. */
  during: ((records: readonly MappedRecord[]) => Promise<void>) | undefined;
  #held: Array<() => void> = [];

  retryAfterSeconds(): number {
    return 1;
  }

  async write(rs: readonly MappedRecord[]): Promise<WriteResult> {
    this.calls.push([...rs]);
    await this.during?.(rs);
    if (!this.hold) return this.reply(rs);
    return new Promise((resolve) => this.#held.push(() => resolve(this.reply(rs))));
  }

  /** Answers every write waiting now. */
  release(): void {
    for (const answer of this.#held.splice(0)) answer();
  }

  /** Resolves once `n` writes were made. */
  async calledTimes(n: number): Promise<void> {
    while (this.calls.length < n) await settle(1);
  }
}

function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>>; text: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const logger = pino({ level: 'debug' }, {
    write: (s: string) => {
      text.push(s);
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  return { logger, lines, text };
}

/** Answers whatever the fake still holds (a failed assertion may leave a write waiting), then closes. */
async function closeAll(writer: SpoolingWriter, inner: FakeWriter): Promise<void> {
  inner.hold = false;
  inner.release();
  await writer.close();
}

async function setUp(t: { after: (fn: () => Promise<void>) => void }, batches: number, perBatch: number) {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  for (let b = 0; b < batches; b++) await spool.append(records(b * perBatch, perBatch));
  const inner = new FakeWriter();
  const log = captureLogger();
  return { dir, spool, inner, log };
}

void test('the drain writes many spooled batches in one write, oldest first, and deletes them only once it is settled', async (t) => {
  const { dir, spool, inner, log } = await setUp(t, 30, 2);
  inner.hold = true;
  const writer = new SpoolingWriter({ inner, spool, logger: log.logger, drainIntervalMs: 10 });
  t.after(() => closeAll(writer, inner));
  await inner.calledTimes(1);
  await settle();
  assert.equal(inner.calls.length, 1, 'one write for the 30 batches, not one each');
  assert.deepEqual(ids(inner.calls[0]!), range(0, 60));
  assert.equal((await readdir(dir)).length, 30, 'nothing deleted before Elasticsearch settled the write');
  inner.release();
  await writer.drained();
  assert.equal(inner.calls.length, 1);
  assert.deepEqual(await readdir(dir), []);
  assert.equal(writer.spooled, 0);
});

void test('drainMaxBytes bounds a round: the spool is read a part at a time, every record once and in order', async (t) => {
  const { dir, spool, inner, log } = await setUp(t, 7, 3);
  const batchBytes = spool.bytes / 7;
  const writer = new SpoolingWriter({ inner, spool, logger: log.logger, drainIntervalMs: 10, drainMaxBytes: Math.floor(2.5 * batchBytes) });
  t.after(() => closeAll(writer, inner));
  await writer.drained();
  assert.deepEqual(inner.calls.map((c) => c.length), [6, 6, 6, 3], 'two batches a round, the last one alone');
  assert.deepEqual(inner.calls.flatMap(ids), range(0, 21));
  assert.deepEqual(await readdir(dir), []);
});

void test('a request arriving during the round that takes the whole spool waits for it, then goes straight to Elasticsearch', async (t) => {
  const { dir, spool, inner, log } = await setUp(t, 1, 2);
  inner.hold = true;
  const writer = new SpoolingWriter({ inner, spool, logger: log.logger, drainIntervalMs: 10 });
  t.after(() => closeAll(writer, inner));
  await inner.calledTimes(1);
  const answer = writer.write(records(100, 2));
  await settle();
  assert.equal(inner.calls.length, 1, 'not written before the spooled batch is settled');
  assert.deepEqual(await readdir(dir), ['0000000000000000.batch'], 'not spooled behind it either');
  inner.release();
  await inner.calledTimes(2);
  inner.release();
  const result = await answer;
  assert.equal(result.spooled, undefined);
  assert.equal(result.created, 2);
  assert.deepEqual(inner.calls.map(ids), [range(0, 2), range(100, 2)]);
  assert.deepEqual(await readdir(dir), []);
});

void test('while requests keep coming during every write, the spool empties and the breaker closes', async (t) => {
  const { dir, spool, inner, log } = await setUp(t, 1, 2);
  inner.hold = true;
  const writer = new SpoolingWriter({ inner, spool, logger: log.logger, drainIntervalMs: 10 });
  t.after(() => closeAll(writer, inner));
  const answers: Array<Promise<WriteResult>> = [];
  for (let i = 0; i < 20; i++) {
    await inner.calledTimes(i + 1); // Elasticsearch is busy with a write ...
    answers.push(writer.write(records(100 + 2 * i, 2))); // ... when the next request comes in
    await settle();
    inner.release();
  }
  inner.hold = false;
  inner.release();
  const results = await Promise.all(answers);
  assert.equal(results.filter((r) => r.spooled !== undefined).length, 0, 'no request after the outage was spooled');
  assert.equal(writer.spooled, 0);
  assert.deepEqual(await readdir(dir), []);
  assert.deepEqual(inner.calls.flatMap(ids), [...range(0, 2), ...range(100, 40)], 'the spooled batch first, then the requests in order');
});

void test('a write made from within a round (a fork\'s integrity event) goes straight to Elasticsearch, even with the spool full', { timeout: 20_000 }, async (t) => {
  const dir = await tempDir(t);
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  await spool.append(records(0, 2));
  // Full: the batch spooled while Elasticsearch was down is all the spool takes.
  const full = await Spool.open({ dir, maxBytes: spool.bytes });
  assert.ok(full.full);
  const inner = new FakeWriter();
  const log = captureLogger();
  const writer = new SpoolingWriter({ inner, spool: full, logger: log.logger, drainIntervalMs: 10 });
  t.after(() => closeAll(writer, inner));
  const nested: WriteResult[] = [];
  inner.during = async (rs) => {
    if (rs[0]?.id !== 'a:0') return;
    await settle(1); // as the Elasticsearch writer, after the bulk request's answer
    nested.push(await writer.write(records(50, 1)));
  };
  await writer.drained();
  assert.deepEqual(nested.map((r) => [r.created, r.spooled]), [[1, undefined]], 'written, not spooled behind the round that waits for it');
  assert.deepEqual(inner.calls.map(ids), [range(0, 2), range(50, 1)], 'the round once: it did not fail on its own event');
  assert.deepEqual(await readdir(dir), []);
});

void test('a spooled record refused for good, its dead letter refused too, keeps its batch as .rejected and is logged by id', async (t) => {
  const { dir, spool, inner, log } = await setUp(t, 2, 2);
  // a:1 (first batch) is refused and so is its dead letter; a:3 (second batch) is dead-lettered.
  inner.reply = (rs) => {
    const result: WriteResult = { created: 0, duplicates: 0, rejected: [], deadLettered: [] };
    for (const [index, r] of rs.entries()) {
      if (r.id === 'a:1') result.rejected.push({ index, status: 400, error: 'mapper_parsing_exception: failed to parse; the dead letter was refused too: HTTP 400 x' });
      else if (r.id === 'a:3') result.deadLettered.push({ index, status: 400, error: 'mapper_parsing_exception: failed to parse' });
      else result.created++;
    }
    return result;
  };
  const writer = new SpoolingWriter({ inner, spool, logger: log.logger, drainIntervalMs: 10 });
  t.after(() => closeAll(writer, inner));
  await writer.drained();
  assert.deepEqual(await readdir(dir), ['0000000000000000.rejected'], 'the batch with the lost record is kept; the other one is deleted');
  assert.deepEqual(ids(parseBatch(await readFile(join(dir, '0000000000000000.rejected'), 'utf8'))!), ['a:0', 'a:1']);
  assert.equal(writer.spooled, 0, 'a kept batch is not drained again');
  const refused = log.lines.filter((l) => l.level === 50 && l.id === 'a:1');
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.data_stream, 'logs-ci_audit.auth-default');
  assert.match(String(refused[0]!.error), /mapper_parsing_exception/);
  assert.equal(refused[0]!.kept, join(dir, '0000000000000000.rejected'));
  assert.ok(log.lines.some((l) => l.level === 40 && l.id === 'a:3'), 'the dead-lettered record is logged as on the direct path');
  assert.ok(!log.text.some((s) => s.includes('secret-token')), 'no document content in the log');
  // After a restart the kept file stays, is not drained, and new batches are numbered past it.
  const reopened = await Spool.open({ dir, maxBytes: 1 << 30 });
  assert.equal(reopened.size, 0);
  await reopened.append(records(9, 1));
  assert.deepEqual((await readdir(dir)).sort(), ['0000000000000000.rejected', '0000000000000001.batch']);
});

void test('itemsByBatch: the items of a write of several batches, by batch, with positions within it', () => {
  const item = (index: number): FailedItem => ({ index, status: 400, error: `e${index}` });
  assert.deepEqual(itemsByBatch([2, 0, 3], [item(0), item(2), item(4)]), [[item(0)], [], [{ ...item(2), index: 0 }, { ...item(4), index: 2 }]]);
  assert.deepEqual(itemsByBatch([1, 1], []), [[], []]);
});
