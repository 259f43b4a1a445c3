// The disk buffer's own gap records are chained like any record, and a drop_oldest gap declares
// the chain numbers of the records it dropped (reason buffer_dropped): every number of the chain
// either arrives, with its hash recomputed from the decoded export, or is declared by a gap.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { DiskBuffer } from '../../../../agent/buffer/disk-buffer.ts';
import { ChainProcessor } from '../../../../agent/chain/chain-processor.ts';
import { chainStatePath, ChainStateWriter, readChainState } from '../../../../agent/chain/chain-state.ts';
import { Pipeline } from '../../../../agent/pipeline/pipeline.ts';
import { agentResource } from '../../../../agent/resource.ts';
import { OtlpHttpLogExporter } from '../../../../agent/sinks/otlp-http-exporter.ts';
import { createLogger } from '../../../../core/logger.ts';
import { chainAttr, chainGapAttr, recordAttr } from '../../../../core/wire.ts';
import { assertChain, isChained, scratch, seqOf, startCapture } from './capture.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const agentId = 'gap-agent';

void test('drop_oldest with the aggregator down: each drop is a chained gap record declaring the dropped seqs (buffer_dropped); every seq arrives or is declared', async (t) => {
  const { dir, cleanup } = await scratch(t);
  const capture = await startCapture(t);
  capture.down = true;
  const file = chainStatePath(dir);
  const state = await readChainState(file, agentId, 'k');
  const chain = new ChainProcessor({ agentId, state, writer: new ChainStateWriter(file, state), keyId: 'k', reserveBlock: 64, logger });
  cleanup(() => chain.close());
  const opened = await DiskBuffer.open({ dir: join(dir, 'buffer'), maxBytes: 16_384, segmentBytes: 4096, fsync: 'always', fsyncIntervalMs: 1000, overflow: 'drop_oldest', logger });
  const pipeline = new Pipeline({
    resource: agentResource({ agentId }),
    exporter: new OtlpHttpLogExporter({ url: capture.url, timeoutMs: 5000, logger }),
    logger,
    maxBatchRecords: 10,
    maxDelayMs: 10,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    diskBuffer: opened,
    chain,
  });
  cleanup(() => pipeline.shutdown());
  const total = 600;
  for (let n = 0; n < total; n++) {
    const written = pipeline.sink.write({ body: `line ${n} `.padEnd(120, 'x'), attributes: { [recordAttr.dataset]: 'ci', [recordAttr.recordId]: `r-${n}` }, observedAt: Date.now(), ack: () => undefined });
    if (written !== true) await written;
  }
  await opened.buffer.flushed();
  capture.down = false;
  await pipeline.flush();
  await pipeline.shutdown();
  await chain.close();

  const gaps = capture.accepted.filter((r) => r.attributes[chainGapAttr.reason] === 'buffer_dropped');
  assert.ok(gaps.length > 0, 'the buffer overflowed and dropped');
  const arrived = new Set(capture.accepted.filter(isChained).map(seqOf));
  const declared = new Set<number>();
  for (const gap of gaps) {
    assert.ok(isChained(gap), 'the gap record is chained');
    assert.equal(gap.attributes[recordAttr.gap], true);
    const first = Number(gap.attributes[chainGapAttr.firstSeq]);
    const last = Number(gap.attributes[chainGapAttr.lastSeq]);
    assert.ok(first <= last && last < seqOf(gap), `gap ${seqOf(gap)} declares earlier seqs ${first}..${last}`);
    for (let seq = first; seq <= last; seq++) {
      assert.ok(!arrived.has(seq), `declared seq ${seq} did not arrive`);
      declared.add(seq);
    }
  }
  const head = chain.head.seq;
  for (let seq = 1; seq <= head; seq++) assert.ok(arrived.has(seq) !== declared.has(seq), `seq ${seq} arrived or is declared, not both or neither`);
  assert.equal(head, total + gaps.length, 'each record and each gap record has one seq');
  // Every record that arrived carries the hash recomputed from its decoded export, linked to its predecessor.
  const received = capture.accepted.filter(isChained);
  const bySeq = new Map(received.map((r) => [seqOf(r), r]));
  for (const r of received) {
    const prev = bySeq.get(seqOf(r) - 1);
    if (prev !== undefined) assert.equal(r.attributes[chainAttr.prevHash], prev.attributes[chainAttr.hash]);
    assertChain([r], agentId, { seq: seqOf(r) - 1, hash: r.attributes[chainAttr.prevHash] as string });
  }
});
