// The agent's hash chain through the real Pipeline, the real OTLP/HTTP exporter and a real HTTP
// endpoint that decodes with the aggregator's decoder: every hash is recomputed from what arrived
// on the wire (core/integrity/record.ts), so agent and aggregator provably agree on the text.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { DiskBuffer } from '../../../../agent/buffer/disk-buffer.ts';
import { ChainProcessor } from '../../../../agent/chain/chain-processor.ts';
import { chainStatePath, ChainStateWriter, readChainState } from '../../../../agent/chain/chain-state.ts';
import { Pipeline } from '../../../../agent/pipeline/pipeline.ts';
import { agentResource } from '../../../../agent/resource.ts';
import { OtlpHttpLogExporter } from '../../../../agent/sinks/otlp-http-exporter.ts';
import type { SourceRecord } from '../../../../agent/sources/source.ts';
import { hasErrorCode } from '../../../../core/errors.ts';
import { createLogger } from '../../../../core/logger.ts';
import { chainAttr, chainGapAttr, recordAttr } from '../../../../core/wire.ts';
import { waitFor } from '../helpers.ts';
import { assertChain, isChained, scratch, seqOf, startCapture, type Capture } from './capture.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const agentId = 'chain-agent';

let cleanup: (close: () => Promise<unknown>) => void;

async function tempDir(t: TestContext): Promise<string> {
  const made = await scratch(t);
  cleanup = made.cleanup;
  return made.dir;
}

async function openChain(dir: string, reserveBlock = 16): Promise<ChainProcessor> {
  const file = chainStatePath(dir);
  const state = await readChainState(file, agentId, 'key-1');
  const chain = new ChainProcessor({ agentId, state, writer: new ChainStateWriter(file, state), keyId: 'key-1', reserveBlock, logger });
  cleanup(() => chain.close());
  return chain;
}

async function openPipeline(t: TestContext, dir: string, capture: Capture, chain: ChainProcessor, disk: boolean, shutdownTimeoutMs = 5000): Promise<Pipeline> {
  const diskBuffer = disk
    ? await DiskBuffer.open({ dir: join(dir, 'buffer'), maxBytes: 1 << 20, segmentBytes: 1 << 16, fsync: 'always', fsyncIntervalMs: 1000, overflow: 'block', logger })
    : undefined;
  const pipeline = new Pipeline({
    resource: agentResource({ agentId, hostName: 'runner-1', labels: { team: 'ci' } }),
    exporter: new OtlpHttpLogExporter({ url: capture.url, timeoutMs: 5000, logger }),
    logger,
    maxBatchRecords: 7,
    maxDelayMs: 5,
    initialBackoffMs: 5,
    shutdownTimeoutMs,
    diskBuffer,
    chain,
  });
  cleanup(() => pipeline.shutdown());
  return pipeline;
}

/** A record of source `source` with attributes of every type a source or parser sets. */
function sourceRecord(source: number, n: number, acks: Set<string>): SourceRecord {
  const id = `s${source}-${n}`;
  return {
    body: `line ${n} of source ${source} ünïcode ✓`,
    attributes: {
      [recordAttr.dataset]: 'ci',
      [recordAttr.recordId]: id,
      [recordAttr.logOffset]: n * 100,
      'test.double': n + 0.25,
      'test.wide': 2 ** 60 + n * 1024,
      'test.flag': n % 2 === 0,
      'test.list': ['a', `b${n}`],
      'test.nan': Number.NaN,
      'test.inf': Number.NEGATIVE_INFINITY,
    },
    observedAt: Date.now(),
    timestamp: [1_700_000_000 + n, 123_456_789],
    ...(n % 3 === 0 ? { severityNumber: 9 } : {}),
    ack: () => void acks.add(id),
  };
}

/** Writes `count` records from each of three sources, interleaved. */
async function writeFromSources(pipeline: Pipeline, count: number, acks: Set<string>, offset = 0): Promise<void> {
  for (let n = offset; n < offset + count; n++) {
    for (let source = 0; source < 3; source++) {
      const written = pipeline.sink.write(sourceRecord(source, n, acks));
      if (written !== true) await written;
    }
  }
}

for (const disk of [false, true]) {
  const mode = disk ? 'disk buffer' : 'memory buffer';

  void test(`${mode}: three sources, small batches: seqs 1..n without holes, each hash recomputed from the decoded OTLP export`, async (t) => {
    const dir = await tempDir(t);
    const capture = await startCapture(t);
    const chain = await openChain(dir);
    const pipeline = await openPipeline(t, dir, capture, chain, disk);
    const acks = new Set<string>();
    await writeFromSources(pipeline, 40, acks);
    await pipeline.flush();
    await pipeline.shutdown();
    const { head, bySeq } = assertChain(capture.accepted, agentId);
    assert.equal(head.seq, 120, 'every record chained once');
    assert.equal(bySeq.get(1)!.attributes['test.wide'], 2n ** 60n, 'a wide integer travelled as int64');
    assert.equal(bySeq.get(1)!.timeUnixNano, 1_700_000_000_123_456_789n, 'nanoseconds kept');
    assert.equal(acks.size, 120);
    assert.deepEqual(chain.committed, head, 'committed up to the last record');
    const { clean } = await chain.close();
    assert.equal(clean, true);
    const saved = JSON.parse(await readFile(chainStatePath(dir), 'utf8')) as { committed: unknown; reserved: number; clean: boolean };
    assert.deepEqual(saved.committed, head);
    assert.equal(saved.reserved, 120);
    assert.equal(saved.clean, true);
  });

  void test(`${mode}: graceful restart continues the chain at n+1 linked to hash n, without a gap record`, async (t) => {
    const dir = await tempDir(t);
    const capture = await startCapture(t);
    const acks = new Set<string>();
    let chain = await openChain(dir);
    let pipeline = await openPipeline(t, dir, capture, chain, disk);
    await writeFromSources(pipeline, 10, acks);
    // With the disk buffer, records may still wait in it: they are committed and sent after the restart.
    await pipeline.shutdown();
    assert.equal((await chain.close()).clean, true);
    const before = chain.head;
    assert.equal(before.seq, 30);

    chain = await openChain(dir);
    assert.equal(chain.resume, undefined, 'a clean stop: nothing to declare');
    assert.deepEqual(chain.head, before);
    pipeline = await openPipeline(t, dir, capture, chain, disk);
    await writeFromSources(pipeline, 10, acks, 10);
    await pipeline.flush();
    await pipeline.shutdown();
    await chain.close();
    const { head, bySeq } = assertChain(capture.accepted, agentId);
    assert.equal(head.seq, 60);
    assert.equal(bySeq.get(31)!.attributes[chainAttr.prevHash], before.hash, 'seq 31 links to hash 30');
    assert.equal(bySeq.get(31)!.attributes[recordAttr.recordId], 's0-10', 'the first record after the restart is a line, not a gap record');
    assert.ok(capture.accepted.every((r) => r.attributes[recordAttr.gap] === undefined), 'no gap record');
  });
}

void test('an export that fails once is retried with the same seq, hash and prev_hash', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  capture.refuse = 1;
  const chain = await openChain(dir);
  const pipeline = await openPipeline(t, dir, capture, chain, false);
  const acks = new Set<string>();
  await writeFromSources(pipeline, 3, acks);
  await pipeline.flush();
  await pipeline.shutdown();
  const [refused, ...rest] = capture.attempts;
  assert.ok(refused !== undefined && refused.length > 0);
  const retried = rest.flat();
  for (const r of refused) {
    const again = retried.find((x) => x.attributes[recordAttr.recordId] === r.attributes[recordAttr.recordId]);
    assert.ok(again !== undefined, 'sent again');
    for (const key of [chainAttr.seq, chainAttr.hash, chainAttr.prevHash]) assert.equal(again.attributes[key], r.attributes[key], `${key} unchanged on retry`);
  }
  assertChain([...refused, ...capture.accepted], agentId);
  assert.equal(acks.size, 9);
});

void test('a stop with records the aggregator never took: the next start declares committed+1..reserved as unclean_stop, linked to the committed head', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const acks = new Set<string>();
  let chain = await openChain(dir, 8);
  let pipeline = await openPipeline(t, dir, capture, chain, false, 200);
  await writeFromSources(pipeline, 4, acks);
  await pipeline.flush();
  const committed = chain.committed;
  assert.equal(committed.seq, 12);
  capture.down = true;
  await writeFromSources(pipeline, 2, acks, 4);
  await waitFor(() => capture.attempts.some((a) => a.some((r) => seqOf(r) === 18)), 5000, 'an attempt to send seq 18');
  // A stop that cannot deliver: a short shutdown timeout, then the chain is saved as not clean.
  const stopped = pipeline.shutdown();
  await stopped;
  assert.equal((await chain.close()).clean, false);
  const saved = await readChainState(chainStatePath(dir), agentId, 'key-1');
  assert.deepEqual(saved.committed, committed);
  assert.ok(saved.reserved >= 18);

  capture.down = false;
  chain = await openChain(dir, 8);
  pipeline = await openPipeline(t, dir, capture, chain, false);
  await writeFromSources(pipeline, 2, acks, 4);
  await pipeline.flush();
  await pipeline.shutdown();
  await chain.close();
  const resume = capture.accepted.find((r) => r.attributes[chainGapAttr.reason] === 'unclean_stop');
  assert.ok(resume !== undefined, 'the resume record');
  assert.equal(seqOf(resume), saved.reserved + 1);
  assert.equal(resume.attributes[chainAttr.prevHash], committed.hash);
  assert.equal(resume.attributes[chainGapAttr.firstSeq], 13);
  assert.equal(resume.attributes[chainGapAttr.lastSeq], saved.reserved);
  assert.equal(resume.attributes[recordAttr.gap], true);
  const later = capture.accepted.filter((r) => isChained(r) && seqOf(r) >= seqOf(resume));
  assertChain(later, agentId, { seq: saved.reserved, hash: committed.hash });
  assert.equal(later.length, 7, 'the resume record and the six lines read again');
});

void test('a corrupt chain.json is refused with CIA_ERR_INTEGRITY_STATE naming the file', async (t) => {
  const dir = await tempDir(t);
  const file = chainStatePath(dir);
  for (const text of ['{"version":1,"agent":"chain-agent"', '{"version":1,"agent":"chain-agent","committed":{"seq":5,"hash":"zz"},"reserved":9,"clean":true,"key":"k"}', '{"version":1,"agent":"chain-agent","committed":{"seq":5,"hash":"' + 'a'.repeat(64) + '"},"reserved":4,"clean":true,"key":"k"}']) {
    await writeFile(file, text);
    await assert.rejects(readChainState(file, agentId, 'k'), (err: unknown) => hasErrorCode(err) && err.code === 'CIA_ERR_INTEGRITY_STATE' && err.message.includes(file));
  }
  await writeFile(file, JSON.stringify({ version: 1, agent: 'other', committed: { seq: 0, hash: '0'.repeat(64) }, reserved: 0, clean: true, key: 'k' }));
  await assert.rejects(readChainState(file, agentId, 'k'), /belongs to agent other/);
});

void test('records outrunning the reservation reserve synchronously: chain.json always covers every seq handed out', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const chain = await openChain(dir, 4);
  const pipeline = await openPipeline(t, dir, capture, chain, false);
  const acks = new Set<string>();
  for (let round = 0; round < 5; round++) {
    // Ten records in one turn of the event loop: the background reservation cannot keep up.
    for (let n = 0; n < 10; n++) void pipeline.sink.write(sourceRecord(0, round * 10 + n, acks));
    const maxSeen = chain.head.seq;
    const saved = JSON.parse(await readFile(chainStatePath(dir), 'utf8').catch(() => '{"reserved":0}')) as { reserved: number };
    assert.ok(saved.reserved >= maxSeen, `seq ${maxSeen} handed out with only ${saved.reserved} reserved on disk`);
  }
  await pipeline.flush();
  await pipeline.shutdown();
  await chain.close();
  assertChain(capture.accepted, agentId);
});

void test('unusual values (null and empty values, nested key-value bodies, bytes, wide integers in lists): the hash still matches the decoded export', async (t) => {
  const dir = await tempDir(t);
  const capture = await startCapture(t);
  const chain = await openChain(dir);
  const pipeline = await openPipeline(t, dir, capture, chain, false);
  const acks = new Set<string>();
  const bodies: SourceRecord['body'][] = [
    null,
    { msg: 'kv', nested: { deep: [1, null, undefined, 'x'], empty: undefined, gone: null }, n: 2 ** 60, f: 1.5 },
    new Uint8Array([0, 1, 2, 255]),
    ['a', 2 ** 62, Number.NaN, { k: 'v' }],
    '',
  ];
  for (const [i, body] of bodies.entries()) {
    void pipeline.sink.write({
      body,
      attributes: { [recordAttr.dataset]: 'ci', [recordAttr.recordId]: `odd-${i}`, 'x.null': null, 'x.wide.list': [2 ** 60, 1], 'x.empty': '' },
      observedAt: Date.now(),
      ack: () => void acks.add(`odd-${i}`),
    });
  }
  await pipeline.flush();
  await pipeline.shutdown();
  const { head } = assertChain(capture.accepted, agentId);
  assert.equal(head.seq, bodies.length);
});
