// Acknowledgements in runs: the batch processor acknowledges a batch's records with one call per run
// of neighbouring numbers (the file source's offset tracker) and commits the chain a run of seqs at a
// time. What each layer concludes must be what per-record acks concluded: only contiguous runs
// count, out of order, twice, across compaction, and past the seqs an unclean stop left behind.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord, ReadWriteLogRecord } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { DiskBuffer } from '../../../../agent/buffer/disk-buffer.ts';
import { ChainProcessor } from '../../../../agent/chain/chain-processor.ts';
import { chainStatePath, ChainStateWriter, readChainState, type ChainStateData } from '../../../../agent/chain/chain-state.ts';
import { AuditBatchProcessor, type RecordAck } from '../../../../agent/pipeline/audit-batch-processor.ts';
import { OffsetTracker } from '../../../../agent/sources/file/offset-tracker.ts';
import type { RangeAcker } from '../../../../agent/sources/source.ts';
import { createLogger } from '../../../../core/logger.ts';
import { chainAttr } from '../../../../core/wire.ts';
import { waitFor } from '../helpers.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const resource = resourceFromAttributes({ 'host.name': 'h' });

function logRecord(body: string): ReadableLogRecord & { attributes: Record<string, unknown> } {
  return {
    hrTime: [1795688521, 482113789],
    hrTimeObserved: [1795688521, 482113789],
    body,
    attributes: { 'event.dataset': 'auth' },
    droppedAttributesCount: 0,
    resource,
    instrumentationScope: { name: 'test' },
  };
}

async function openChain(t: TestContext, state?: ChainStateData, reserveBlock = 64): Promise<{ chain: ChainProcessor; hashes: Map<number, string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-ack-runs-'));
  const file = chainStatePath(dir);
  const saved = state ?? (await readChainState(file, 'a1', 'k'));
  const chain = new ChainProcessor({ agentId: 'a1', state: saved, writer: new ChainStateWriter(file, saved), keyId: 'k', reserveBlock, logger });
  // Closed (its last state written) before its folder goes.
  t.after(async () => {
    await chain.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { chain, hashes: new Map() };
}

/** Chains `n` records; returns their seqs (what the batch processor holds) and notes each hash. */
function chainRecords(chain: ChainProcessor, hashes: Map<number, string>, n: number): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) {
    const record = logRecord(`line ${i}`);
    chain.chain(record);
    const seq = chain.takeChained();
    assert.equal(chain.takeChained(), 0, 'a seq is handed out once');
    hashes.set(seq, record.attributes[chainAttr.hash] as string);
    seqs.push(seq);
  }
  return seqs;
}

void test('the chain commits runs of seqs out of order: the head moves only over contiguous runs, with the hash of its record', async (t) => {
  const { chain, hashes } = await openChain(t);
  chainRecords(chain, hashes, 12);
  chain.commitRange(5, 8);
  assert.equal(chain.committed.seq, 0);
  chain.commitRange(1, 3);
  assert.deepEqual(chain.committed, { seq: 3, hash: hashes.get(3) });
  chain.commitRange(10, 12);
  chain.commitRange(4, 4);
  assert.deepEqual(chain.committed, { seq: 8, hash: hashes.get(8) });
  // Twice, or a run that starts below the head: only what is above it counts.
  chain.commitRange(2, 7);
  chain.commitRange(1, 9);
  assert.deepEqual(chain.committed, { seq: 12, hash: hashes.get(12) });
  assert.deepEqual(chain.head, chain.committed);
});

void test('over many records (the hashes kept grow and move down) every commit names the hash of its record', async (t) => {
  const { chain, hashes } = await openChain(t, undefined, 10_000);
  const seqs = chainRecords(chain, hashes, 9000);
  // Batches of 500 that complete in pairs, the second of each pair first.
  for (let b = 0; b < seqs.length; b += 1000) {
    const second = seqs.slice(b + 500, b + 1000);
    if (second.length > 0) chain.commitRange(second[0]!, second.at(-1)!);
    assert.equal(chain.committed.seq, b);
    chain.commitRange(seqs[b]!, seqs[Math.min(b + 499, seqs.length - 1)]!);
    const top = Math.min(b + 1000, seqs.length);
    assert.deepEqual(chain.committed, { seq: top, hash: hashes.get(top) });
  }
  // One at a time, each the head in turn.
  for (const seq of chainRecords(chain, hashes, 3000)) {
    chain.commitRange(seq, seq);
    assert.deepEqual(chain.committed, { seq, hash: hashes.get(seq) });
  }
  assert.equal((await chain.close()).clean, true);
});

void test('after an unclean stop, committing the resume record moves the head past the seqs it declares lost', async (t) => {
  const hash = 'a'.repeat(64);
  const state: ChainStateData = { version: 1, agent: 'a1', committed: { seq: 10, hash }, reserved: 20, clean: false, key: 'k' };
  const { chain, hashes } = await openChain(t, state);
  const [resume, next] = chainRecords(chain, hashes, 2);
  assert.equal(resume, 21);
  chain.commitRange(22, 22);
  assert.deepEqual(chain.committed, { seq: 10, hash });
  chain.commitRange(21, 21);
  assert.deepEqual(chain.committed, { seq: next, hash: hashes.get(next!) });
});

void test('the offset tracker takes runs of line numbers out of order, twice, and after it compacted', () => {
  const moves: number[] = [];
  const tracker = new OffsetTracker(0, (c) => moves.push(c));
  const lines = Array.from({ length: 3000 }, (_, i) => tracker.trackLine(10 * (i + 1)));
  assert.deepEqual(lines.slice(0, 3), [0, 1, 2]);
  tracker.ackRange(5, 9);
  assert.equal(tracker.committed, 0);
  tracker.ackRange(0, 3);
  assert.equal(tracker.committed, 40);
  tracker.ackRange(4, 4);
  assert.equal(tracker.committed, 100);
  // Past the end: lines never handed out are not acknowledged.
  tracker.ackRange(2990, 5000);
  tracker.ackRange(10, 2499); // compacts
  assert.equal(tracker.committed, 25_000);
  tracker.ackRange(0, 2600); // partly twice
  assert.equal(tracker.committed, 26_010);
  tracker.ackRange(2601, 2989);
  assert.equal(tracker.committed, 30_000);
  assert.equal(tracker.outstanding, 0);
  const later = tracker.trackLine(30_010);
  assert.equal(later, 3000);
  tracker.ackRange(later, later);
  assert.equal(tracker.committed, 30_010);
  assert.deepEqual(moves, [40, 100, 25_000, 26_010, 30_000, 30_010]);
});

void test('the batch processor acknowledges a batch in runs: chain commits first, then one call per run of each acker, and each closure', async (t) => {
  const calls: string[] = [];
  const acker = (name: string): RangeAcker => ({ ackRange: (first, last) => calls.push(`${name} ${first}-${last}`) });
  const fileA = acker('a');
  const fileB = acker('b');
  const chain = acker('chain');
  let release!: () => void;
  const answered = new Promise<void>((resolve) => (release = resolve));
  const exporter: LogRecordExporter = {
    export: (_records, done) => void answered.then(() => done({ code: ExportResultCode.SUCCESS })),
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  // What each record is: [acker or closure name, number, chain seq].
  const plan: [string, number, number][] = [
    ['a', 7, 1],
    ['a', 8, 2],
    ['b', 0, 3],
    ['a', 9, 4],
    ['a', 11, 0], // a checkpoint: not chained
    ['fn', 0, 5],
    ['b', 1, 6],
    ['b', 2, 8], // seq 7 went to another batch
  ];
  let next = 0;
  const processor = new AuditBatchProcessor({
    exporter,
    logger,
    maxBatchRecords: plan.length,
    takeAck: (into: RecordAck) => {
      const [who, number, seq] = plan[next++]!;
      if (who === 'fn') into.ack = () => calls.push('fn');
      else into.acker = who === 'a' ? fileA : fileB;
      into.ackNumber = number;
      into.chainSeq = seq;
    },
    chain,
  });
  t.after(() => processor.shutdown());
  for (let i = 0; i < plan.length; i++) processor.onEmit(logRecord(`r${i}`) as unknown as ReadWriteLogRecord);
  await waitFor(() => processor.queued === plan.length, 1000, 'the batch is taken');
  assert.deepEqual(calls, []);
  release();
  await processor.forceFlush();
  // A closure runs as its record comes; a run of an acker once it ends.
  assert.deepEqual(calls, ['chain 1-6', 'chain 8-8', 'a 7-8', 'b 0-0', 'a 9-9', 'fn', 'a 11-11', 'b 1-2']);
});

void test('the disk buffer takes runs of ordinals out of order and twice: a restart reads exactly the entries not acknowledged', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-ack-runs-buffer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const options = { dir, maxBytes: 1 << 20, segmentBytes: 1 << 20, fsync: 'never' as const, fsyncIntervalMs: 50, overflow: 'block' as const, logger };
  const first = await DiskBuffer.open(options);
  for (let i = 0; i < 50; i++) first.buffer.append(Buffer.from(`entry ${i}`));
  await first.buffer.flushed();
  const entries = await first.buffer.read(64);
  assert.equal(entries.length, 50);
  const segment = entries[0]!.segment;
  first.buffer.ackRange(segment, 20, 29);
  first.buffer.ackRange(segment, 0, 9);
  first.buffer.ackRange(segment, 5, 14); // partly twice
  first.buffer.ackRange(segment, 40, 49);
  assert.equal(first.buffer.unacknowledged, 15);
  await first.buffer.close();
  const second = await DiskBuffer.open(options);
  t.after(() => second.buffer.close());
  // The acknowledged prefix (0-14) is skipped; 15-19 and 30-39 come again, and so do 20-29 and
  // 40-49, acknowledged beyond the prefix, as with one ack per entry.
  const again = await second.buffer.read(64);
  assert.deepEqual(
    again.map((e) => e.payload.toString()),
    Array.from({ length: 35 }, (_, i) => `entry ${i + 15}`),
  );
});
