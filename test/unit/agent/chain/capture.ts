// A real OTLP/HTTP endpoint for the chain tests (test/helpers/otlp-receiver.ts) that keeps the
// records of every attempt, so that a test recomputes the chain from exactly what the agent's
// exporter put on the wire.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';
import { chainHash, genesisHash, type ChainHead } from '../../../../core/integrity/chain.ts';
import { canonicalRecord } from '../../../../core/integrity/record.ts';
import { chainAttr, checkpointAttr } from '../../../../core/wire.ts';
import { accept, startOtlpReceiver } from '../../../helpers/otlp-receiver.ts';

export interface Capture {
  url: string;
  /** Records of accepted requests, in arrival order. */
  accepted: DecodedLogRecord[];
  /** Records of every request, refused ones included. */
  attempts: DecodedLogRecord[][];
  /** Requests still to refuse with 503. */
  refuse: number;
  /** Refuse every request while true. */
  down: boolean;
}

export async function startCapture(t: TestContext): Promise<Capture> {
  const capture: Capture = { url: '', accepted: [], attempts: [], refuse: 0, down: false };
  capture.url = await startOtlpReceiver(t, (records, res) => {
    capture.attempts.push(records);
    if (capture.down || capture.refuse > 0) {
      if (capture.refuse > 0) capture.refuse--;
      res.writeHead(503).end();
      return;
    }
    capture.accepted.push(...records);
    accept(res);
  });
  return capture;
}

export function isChained(r: DecodedLogRecord): boolean {
  return r.attributes[chainAttr.seq] !== undefined;
}

export function isCheckpoint(r: DecodedLogRecord): boolean {
  return r.attributes[checkpointAttr.type] !== undefined;
}

export function seqOf(r: DecodedLogRecord): number {
  return Number(r.attributes[chainAttr.seq]);
}

/** hash_seq recomputed from the decoded record, as the aggregator does. */
export function recomputedHash(r: DecodedLogRecord, agent: string): string {
  const text = canonicalRecord({
    agent,
    seq: seqOf(r),
    timeUnixNano: r.timeUnixNano,
    observedTimeUnixNano: r.observedTimeUnixNano,
    severityNumber: r.severityNumber,
    body: r.body,
    attributes: r.attributes,
    resource: r.resource,
  });
  return chainHash(r.attributes[chainAttr.prevHash] as string, text);
}

/**
 * Asserts that the chained records (duplicates of a seq must be identical) run from `from.seq + 1`
 * without a hole, each linking to the previous hash and carrying the hash recomputed from what was
 * decoded. Returns the records by seq and the last head.
 */
export function assertChain(records: readonly DecodedLogRecord[], agent: string, from: ChainHead = { seq: 0, hash: genesisHash }): { bySeq: Map<number, DecodedLogRecord>; head: ChainHead } {
  const bySeq = new Map<number, DecodedLogRecord>();
  for (const r of records.filter(isChained)) {
    const seq = seqOf(r);
    const seen = bySeq.get(seq);
    if (seen !== undefined) {
      assert.equal(r.attributes[chainAttr.hash], seen.attributes[chainAttr.hash], `seq ${seq} sent twice with different hashes`);
      continue;
    }
    bySeq.set(seq, r);
  }
  let head = from;
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  for (const [i, seq] of seqs.entries()) {
    assert.equal(seq, from.seq + 1 + i, `hole in the chain before seq ${seq}`);
    const r = bySeq.get(seq)!;
    assert.equal(r.attributes[chainAttr.prevHash], head.hash, `seq ${seq} links to the previous hash`);
    const hash = recomputedHash(r, agent);
    assert.equal(r.attributes[chainAttr.hash], hash, `seq ${seq}: hash recomputed from the decoded record`);
    head = { seq, hash };
  }
  return { bySeq, head };
}

/**
 * A temporary folder, removed after the test once everything registered with `cleanup` (pipelines,
 * chains that may still be writing into it) was closed, newest first.
 */
export async function scratch(t: TestContext): Promise<{ dir: string; cleanup: (close: () => Promise<unknown>) => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-chain-test-'));
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, cleanup: (close) => void closers.push(close) };
}
