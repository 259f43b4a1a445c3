// A batch the aggregator rejects as malformed (400) is set aside durably in <state_dir>/rejected,
// acknowledged once a chained gap record (reason `rejected`) declares its sequence numbers, and
// shipping goes on: with a real HTTP receiver, the real chain, the real disk buffer and real files.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DiskBuffer } from '../../../../agent/buffer/disk-buffer.ts';
import { ChainProcessor } from '../../../../agent/chain/chain-processor.ts';
import { chainStatePath, ChainStateWriter, readChainState } from '../../../../agent/chain/chain-state.ts';
import { AuditBatchProcessor } from '../../../../agent/pipeline/audit-batch-processor.ts';
import { Pipeline, type PipelineOptions } from '../../../../agent/pipeline/pipeline.ts';
import { setAsideRejected } from '../../../../agent/pipeline/set-aside.ts';
import { listRejected, RejectedStore } from '../../../../agent/rejected/rejected-store.ts';
import { agentResource } from '../../../../agent/resource.ts';
import { OtlpHttpLogExporter } from '../../../../agent/sinks/otlp-http-exporter.ts';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { decodeProtobufLogs } from '../../../../aggregator/receiver/otlp-decode.ts';
import { genesisHash } from '../../../../core/integrity/chain.ts';
import { chainAttr, chainGapAttr, recordAttr } from '../../../../core/wire.ts';
import { assertChain, isChained, scratch, seqOf } from '../chain/capture.ts';
import { captureLogger, waitFor } from '../helpers.ts';
import { refuseBodies, startRejectingReceiver, type RejectingReceiver } from './rejecting-receiver.ts';

const agentId = 'set-aside-agent';

interface Setup {
  dir: string;
  pipeline: Pipeline;
  chain: ChainProcessor;
  store: RejectedStore;
  lines: Record<string, unknown>[];
  acked: string[];
  write: (body: string) => Promise<void>;
}

/** A chained pipeline sending to `receiver`, setting rejected batches aside in `<dir>/rejected`. */
async function setUp(
  t: TestContext,
  receiver: RejectingReceiver,
  options: { dir?: string; maxBytes?: number; disk?: boolean; batch?: Partial<PipelineOptions> } = {},
): Promise<Setup> {
  const { dir, cleanup } = options.dir === undefined ? await scratch(t) : { dir: options.dir, cleanup: (close: () => Promise<unknown>) => t.after(() => close().catch(() => undefined)) };
  const { logger, lines } = captureLogger();
  const file = chainStatePath(dir);
  const state = await readChainState(file, agentId, 'k');
  const chain = new ChainProcessor({ agentId, state, writer: new ChainStateWriter(file, state), keyId: 'k', reserveBlock: 64, logger });
  cleanup(() => chain.close());
  const store = await RejectedStore.open({ dir: join(dir, 'rejected'), maxBytes: options.maxBytes ?? 1024 * 1024, logger });
  const diskBuffer =
    options.disk === true
      ? await DiskBuffer.open({ dir: join(dir, 'buffer'), maxBytes: 1024 * 1024, segmentBytes: 64 * 1024, fsync: 'always', fsyncIntervalMs: 1000, overflow: 'block', logger })
      : undefined;
  const pipeline: Pipeline = new Pipeline({
    resource: agentResource({ agentId }),
    exporter: new OtlpHttpLogExporter({ url: receiver.url, timeoutMs: 5000, logger }),
    logger,
    maxBatchRecords: 5,
    maxDelayMs: 10_000,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    chain,
    diskBuffer,
    onRejected: setAsideRejected({ store, logger, emit: (record, ack) => pipeline.emitAgentRecord(record, ack) }),
    ...options.batch,
  });
  cleanup(() => pipeline.shutdown());
  const acked: string[] = [];
  const write = async (body: string): Promise<void> => {
    const written = pipeline.sink.write({ body, attributes: { [recordAttr.dataset]: 'ci', [recordAttr.recordId]: `r-${body.slice(0, 12)}` }, observedAt: Date.now(), ack: () => acked.push(body) });
    if (written !== true) await written;
  };
  return { dir, pipeline, chain, store, lines, acked, write };
}

/** The body of a record the agent sent: always a string here. */
function text(r: DecodedLogRecord): string {
  return typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
}

function bodies(records: readonly DecodedLogRecord[]): string[] {
  return records.map(text);
}

function gapsOf(records: readonly DecodedLogRecord[], reason: string): DecodedLogRecord[] {
  return records.filter((r) => r.attributes[chainGapAttr.reason] === reason);
}

/** Every seq of the chain up to `head` arrived or was declared by a gap record, never both. */
function assertArrivedOrDeclared(accepted: readonly DecodedLogRecord[], head: number): void {
  const arrived = new Set(accepted.filter(isChained).map(seqOf));
  const declared = new Set<number>();
  for (const gap of accepted.filter((r) => r.attributes[chainGapAttr.firstSeq] !== undefined)) {
    for (let seq = Number(gap.attributes[chainGapAttr.firstSeq]); seq <= Number(gap.attributes[chainGapAttr.lastSeq]); seq++) declared.add(seq);
  }
  for (let seq = 1; seq <= head; seq++) assert.ok(arrived.has(seq) !== declared.has(seq), `seq ${seq} arrived or is declared, not both or neither`);
}

/** The hash the agent sent for `seq` (in any attempt, refused ones included). */
function sentHash(receiver: RejectingReceiver, seq: number): string {
  return receiver.attempts.flat().find((r) => isChained(r) && seqOf(r) === seq)!.attributes[chainAttr.hash] as string;
}

const good = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `good-${from + i}`);
const bad = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `bad-${from + i}`);

void test('a batch refused with 400 is set aside durably, declared as a rejected gap, acknowledged, and later lines still go', async (t) => {
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-', 'record 2: body is not an audit line'));
  const s = await setUp(t, receiver);
  for (const body of [...good(0, 5), ...bad(0, 5), ...good(5, 5)]) await s.write(body);
  await s.pipeline.flush();

  // Shipping went on past the rejected batch, which was sent once and never again.
  assert.deepEqual(bodies(receiver.accepted.filter((r) => r.attributes[recordAttr.dataset] === 'ci')), good(0, 10));
  assert.equal(receiver.attempts.filter((a) => bodies(a).includes('bad-0')).length, 1, 'the rejected batch is not retried');
  // Every source ack ran: the rejected lines' too, so their files' checkpoints move past them.
  assert.deepEqual([...s.acked].sort(), [...good(0, 10), ...bad(0, 5)].sort());

  // Its chain numbers (6..10: after good-0..4) are declared by one chained gap record naming the file.
  const [gap, ...more] = gapsOf(receiver.accepted, 'rejected');
  assert.equal(more.length, 0);
  assert.ok(gap !== undefined && isChained(gap), 'a chained rejected gap record arrived');
  assert.equal(gap.attributes[chainGapAttr.firstSeq], 6);
  assert.equal(gap.attributes[chainGapAttr.lastSeq], 10);
  assert.equal(gap.attributes[recordAttr.gap], true);
  assert.equal(gap.attributes[recordAttr.dataset], 'agent');
  const [entry] = await listRejected(s.store.dir);
  assert.ok(entry !== undefined);
  assert.match(text(gap), new RegExp(`${entry.id} in ${s.store.dir}`));
  assert.match(text(gap), /record 2: body is not an audit line/);
  assertArrivedOrDeclared(receiver.accepted, s.chain.head.seq);
  // The chain runs on unbroken on either side of the declared numbers.
  assertChain(receiver.accepted.filter((r) => isChained(r) && seqOf(r) <= 5), agentId);
  assertChain(receiver.accepted.filter((r) => isChained(r) && seqOf(r) > 10), agentId, { seq: 10, hash: sentHash(receiver, 10) });

  // The set-aside copy: metadata, and the request as it was sent, records with their chain attributes.
  assert.equal(entry.status, 400);
  assert.equal(entry.records, 5);
  assert.deepEqual(entry.seq_ranges, [{ first: 6, last: 10 }]);
  assert.match(entry.message, /HTTP 400: record 2: body is not an audit line/);
  const saved = decodeProtobufLogs(gunzipSync(await readFile(join(s.store.dir, entry.data_file))));
  assert.deepEqual(bodies(saved), bad(0, 5));
  const sent = receiver.attempts.find((a) => bodies(a).includes('bad-0'))!;
  assert.deepEqual(saved.map((r) => r.attributes), sent.map((r) => r.attributes), 'the set-aside records are those sent, chain attributes included');
  assert.deepEqual((await readdir(s.store.dir)).sort(), [entry.data_file, `${entry.id}.json`].sort(), 'no temp files left');

  const warning = s.lines.find((l) => l.code === 'CIA_ERR_SHIP_REJECTED');
  assert.equal(warning?.level, 40);
  assert.equal(warning?.id, entry.id);
  assert.ok(s.pipeline.processor instanceof AuditBatchProcessor);
  assert.deepEqual(s.pipeline.processor.setAside, { batches: 1, records: 5 });

  await s.pipeline.shutdown();
  assert.deepEqual(await s.chain.close(), { clean: true }, 'every chained seq committed: the restart declares no unclean stop');
});

void test('with the disk buffer: the rejected batch leaves the buffer, and a restart does not send it again', async (t) => {
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-'));
  const { dir } = await scratch(t);
  const first = await setUp(t, receiver, { dir, disk: true });
  for (const body of [...good(0, 5), ...bad(0, 5), ...good(5, 5)]) await first.write(body);
  await first.pipeline.flush();
  await first.pipeline.shutdown();
  assert.deepEqual(await first.chain.close(), { clean: true });
  assert.deepEqual(bodies(receiver.accepted.filter((r) => r.attributes[recordAttr.dataset] === 'ci')), good(0, 10));
  assert.equal(gapsOf(receiver.accepted, 'rejected').length, 1);
  assert.equal((await listRejected(join(dir, 'rejected'))).length, 1);
  const sentBefore = receiver.attempts.length;

  // The restart: the buffer holds nothing unacknowledged, and only the new line is sent.
  const second = await setUp(t, receiver, { dir, disk: true });
  await second.write('good-after');
  await second.pipeline.flush();
  const resent = receiver.attempts.slice(sentBefore).flat();
  assert.deepEqual(bodies(resent.filter((r) => r.attributes[recordAttr.dataset] === 'ci')), ['good-after']);
  assert.equal(resent.filter((r) => text(r).startsWith('bad-')).length, 0, 'the rejected batch is not sent again');
  assert.equal((await listRejected(join(dir, 'rejected'))).length, 1, 'and not set aside twice');
  await second.pipeline.shutdown();
  assert.deepEqual(await second.chain.close(), { clean: true });
  assertArrivedOrDeclared(receiver.accepted, second.chain.head.seq);
});

void test('output.rejected.max_bytes holds: the oldest set-aside batches are deleted with a warning, their gaps declared all the same', async (t) => {
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-'));
  // Random bodies, so that gzip cannot shrink a batch below ~2 KB: 5000 bytes hold two at most.
  const maxBytes = 5000;
  const s = await setUp(t, receiver, { maxBytes });
  const batches = 6;
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < 5; i++) await s.write(`bad-${b}-${i} ${randomBytes(200).toString('hex')}`);
    // One batch each: the declarations travel in the same queue and would shift the batches.
    await s.pipeline.flush();
  }

  const entries = await listRejected(s.store.dir);
  let held = 0;
  for (const name of await readdir(s.store.dir)) held += (await stat(join(s.store.dir, name))).size;
  assert.ok(held <= maxBytes, `${held} bytes held, at most ${maxBytes}`);
  assert.ok(entries.length >= 1 && entries.length < batches, `${entries.length} of ${batches} kept`);
  const evicted = s.lines.filter((l) => l.code === 'CIA_ERR_REJECTED_EVICTED');
  assert.equal(evicted.length, batches - entries.length, `one warning per deleted batch: ${JSON.stringify(evicted)}`);
  assert.deepEqual(entries.map((e) => e.id), [...entries.map((e) => e.id)].sort(), 'listed oldest first');
  // The newest are kept: the last batch's seqs are among them.
  const lastSeqs = (await listRejected(s.store.dir)).at(-1)?.seq_ranges;
  const declared = gapsOf(receiver.accepted, 'rejected');
  assert.equal(declared.length, batches, 'each rejected batch declared, deleted or not');
  assert.deepEqual(lastSeqs, [{ first: declared.at(-1)!.attributes[chainGapAttr.firstSeq], last: declared.at(-1)!.attributes[chainGapAttr.lastSeq] }]);
  assertArrivedOrDeclared(receiver.accepted, s.chain.head.seq);
  assert.equal(s.store.count, entries.length);
});

void test('a set-aside that cannot be written holds the batch unacknowledged and retries; shipping waits, then goes on', async (t) => {
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-'));
  const s = await setUp(t, receiver);
  // A file where the folder should be: every write into it fails.
  await writeFile(s.store.dir, 'not a folder');
  for (const body of [...good(0, 5), ...bad(0, 5), ...good(5, 5)]) await s.write(body);
  await waitFor(() => s.lines.some((l) => l.code === 'CIA_ERR_REJECTED_IO'), 5000, 'the failed set-aside');
  assert.ok(!s.acked.some((b) => b.startsWith('bad-')), 'nothing of the rejected batch is acknowledged');
  assert.deepEqual(bodies(receiver.accepted), good(0, 5), 'later batches wait: acknowledging past the batch would lose it');
  const error = s.lines.find((l) => l.code === 'CIA_ERR_REJECTED_IO');
  assert.equal(error?.level, 50);
  assert.match(String(error?.err), /check the folder's permissions and free space/);

  await rm(s.store.dir);
  await s.pipeline.flush();
  assert.deepEqual(bodies(receiver.accepted.filter((r) => r.attributes[recordAttr.dataset] === 'ci')), good(0, 10));
  assert.deepEqual([...s.acked].sort(), [...good(0, 10), ...bad(0, 5)].sort());
  assert.equal((await listRejected(s.store.dir)).length, 1);
  assert.equal(s.lines.filter((l) => l.code === 'CIA_ERR_REJECTED_IO').length, 1, 'the failure is logged once, not per retry');
});

void test('a rejected batch holding an earlier gap declaration declares that gap again, as rejected', async (t) => {
  // The chain resumes after an unclean stop: its first record declares the numbers left behind.
  // The aggregator refuses the batch that carries it; the range must still be declared.
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-'));
  const { dir } = await scratch(t);
  // As after a crash: seqs 1..64 reserved, none committed, not clean.
  const state = { version: 1, agent: agentId, committed: { seq: 0, hash: genesisHash }, reserved: 64, clean: false, key: 'k' };
  await writeFile(chainStatePath(dir), JSON.stringify(state));
  const s = await setUp(t, receiver, { dir });
  const resume = receiver.attempts.length;
  for (const body of bad(0, 4)) await s.write(body);
  await s.pipeline.flush();
  const sent = receiver.attempts.slice(resume).flat();
  const unclean = gapsOf(sent, 'unclean_stop')[0];
  assert.ok(unclean !== undefined, 'the resume record was sent in the rejected batch');
  assert.ok(!receiver.accepted.includes(unclean));
  const again = gapsOf(receiver.accepted, 'rejected').filter((g) => g.attributes[chainGapAttr.firstSeq] === unclean.attributes[chainGapAttr.firstSeq]);
  assert.equal(again.length, 1, 'the unclean-stop range is declared again');
  assert.equal(again[0]!.attributes[chainGapAttr.lastSeq], unclean.attributes[chainGapAttr.lastSeq]);
  assert.match(text(again[0]!), /declared again: .*\(unclean_stop\)/);
});

void test('without a chain: the batch is set aside and a notice names it; nothing claims a gap', async (t) => {
  const receiver = await startRejectingReceiver(t, refuseBodies('bad-'));
  const { dir } = await scratch(t);
  const { logger } = captureLogger();
  const store = await RejectedStore.open({ dir: join(dir, 'rejected'), maxBytes: 1024 * 1024, logger });
  const pipeline: Pipeline = new Pipeline({
    resource: agentResource({ agentId }),
    exporter: new OtlpHttpLogExporter({ url: receiver.url, timeoutMs: 5000, logger }),
    logger,
    maxBatchRecords: 5,
    maxDelayMs: 10_000,
    onRejected: setAsideRejected({ store, logger, emit: (record, ack) => pipeline.emitAgentRecord(record, ack) }),
  });
  t.after(() => pipeline.shutdown());
  const acked: string[] = [];
  for (const body of [...bad(0, 5), ...good(0, 5)]) {
    const written = pipeline.sink.write({ body, attributes: { [recordAttr.dataset]: 'ci' }, observedAt: Date.now(), ack: () => acked.push(body) });
    if (written !== true) await written;
  }
  await pipeline.flush();
  assert.deepEqual([...acked].sort(), [...bad(0, 5), ...good(0, 5)].sort());
  const [entry] = await listRejected(store.dir);
  assert.deepEqual(entry?.seq_ranges, []);
  const notices = receiver.accepted.filter((r) => r.attributes[recordAttr.dataset] === 'agent');
  assert.equal(notices.length, 1);
  assert.match(text(notices[0]!), new RegExp(`refused 5 records .*set aside as ${entry.id}`));
  assert.equal(notices[0]!.attributes[recordAttr.gap], undefined);
  assert.equal(notices[0]!.attributes[chainGapAttr.reason], undefined);
});
