import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chainGapAttr } from '../../../../core/wire.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import { AnchorFile } from '../../../../aggregator/verify/anchor.ts';
import type { IntegrityEvent } from '../../../../aggregator/verify/events.ts';
import type { ChainStore } from '../../../../aggregator/verify/chain-store.ts';
import { missingRanges, VerifyStage } from '../../../../aggregator/verify/stage.ts';
import { ChainBuilder, checkpointRecord, newKey } from './chain-fixtures.ts';

const logger = pino({ level: 'silent' });

async function enrolled(dir: string, agentId: string, publicKey: string): Promise<AgentRegistry> {
  const registry = await AgentRegistry.open(join(dir, 'agents.json'));
  const { token } = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 60 });
  await registry.enroll(token, agentId, publicKey);
  return registry;
}

void test('a clean chain verifies record by record with no events; a changed record is flagged and kept', async () => {
  const stage = new VerifyStage({ logger, gapGraceMs: 1000 });
  const chain = new ChainBuilder('runner-01');
  const records = [chain.next('one'), chain.next('two'), chain.next('three')];
  const clean = await stage.verify(records);
  assert.deepEqual(clean.events, []);
  assert.deepEqual(clean.verdicts.map((v) => v.chain?.verified), [true, true, true]);

  const changed = chain.next('four');
  changed.body = 'four, changed';
  const result = await stage.verify([changed, chain.next('five')]);
  assert.deepEqual(result.verdicts.map((v) => v.chain?.verified), [false, true]);
  assert.deepEqual(result.events.map((e) => [e.action, e.firstSeq, e.docId]), [['chain_hash_mismatch', 4, 'runner-01:seq:4']]);
  assert.match(result.events[0]!.message, /does not hash to the hash it carries/);
  await stage.close();
});

/** A stage with a grace of 1 s on a clock the test sets, whose swept events land in `emitted`. */
function sweepingStage(): { stage: VerifyStage; emitted: IntegrityEvent[]; clock: { now: number } } {
  const clock = { now: 0 };
  const emitted: IntegrityEvent[] = [];
  const stage = new VerifyStage({ logger, gapGraceMs: 1000, now: () => clock.now });
  stage.start((events) => {
    emitted.push(...events);
    return Promise.resolve();
  }, 60_000);
  return { stage, emitted, clock };
}

void test('a batch set aside after a rejection, declared by the agent, is a chain_gap_declared event that says where it went, never a chain_gap', async () => {
  const { stage, emitted, clock } = sweepingStage();
  const chain = new ChainBuilder('runner-rej');
  await stage.verify([chain.next('1'), chain.next('2')]);
  // 3..5 refused by the aggregator and set aside; the agent goes on with 6, then declares them.
  chain.next('3');
  chain.next('4');
  chain.next('5');
  await stage.verify([chain.next('6')]);
  const declaring = chain.next('rejected batch', { attributes: { [chainGapAttr.firstSeq]: 3, [chainGapAttr.lastSeq]: 5, [chainGapAttr.reason]: 'rejected' } });
  const declared = await stage.verify([declaring]);
  assert.deepEqual(declared.events.map((e) => [e.action, e.firstSeq, e.lastSeq, e.details?.reason]), [['chain_gap_declared', 3, 5, 'rejected']]);
  assert.match(declared.events[0]!.message, /rejected: the aggregator refused the batch as malformed; the agent set it aside on its host \(ci-audit agent rejected list\)/);
  clock.now = 5000;
  await stage.sweep();
  assert.deepEqual(emitted, [], 'no chain_gap for the declared numbers');
  await stage.close();
});

void test('a broken link and a declared gap are events at once; a hole becomes chain_gap only after the grace', async () => {
  const { stage, emitted, clock } = sweepingStage();
  const chain = new ChainBuilder('runner-02');
  await stage.verify([chain.next('1'), chain.next('2')]);
  const broken = chain.next('3', { prevHash: 'ee'.repeat(32) });
  const result = await stage.verify([broken]);
  assert.deepEqual(result.events.map((e) => [e.action, e.firstSeq]), [['chain_link_broken', 3]]);
  assert.equal(result.verdicts[0]!.chain?.verified, false);

  // 4 and 5 lost on the way; 6 arrives.
  chain.next('4');
  chain.next('5');
  await stage.verify([chain.next('6')]);
  clock.now = 999;
  await stage.sweep();
  assert.equal(emitted.length, 0);
  clock.now = 1000;
  await stage.sweep();
  assert.deepEqual(emitted.map((e) => [e.action, e.firstSeq, e.lastSeq]), [['chain_gap', 4, 5]]);
  await stage.sweep();
  assert.equal(emitted.length, 1, 'reported once');

  const declaring = chain.next('resumed', { attributes: { [chainGapAttr.firstSeq]: 7, [chainGapAttr.lastSeq]: 9, [chainGapAttr.reason]: 'buffer_dropped' }, seq: 10 });
  const declared = await stage.verify([declaring]);
  assert.deepEqual(declared.events.map((e) => [e.action, e.firstSeq, e.lastSeq, e.details?.reason]), [['chain_gap_declared', 7, 9, 'buffer_dropped']]);
  clock.now = 5000;
  await stage.sweep();
  assert.equal(emitted.length, 1, 'a declared gap is no hole');
  await stage.close();
});

void test('checkpoints: valid ones are anchored, key rotations register the next key in the registry file, unknown keys and bad signatures are events', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'verify-stage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const key = newKey();
  const next = newKey();
  const stranger = newKey();
  const registry = await enrolled(dir, 'runner-03', key.pem);
  const anchor = await AnchorFile.open(join(dir, 'anchors.jsonl'));
  const stage = new VerifyStage({ logger, gapGraceMs: 1000, keys: registry, anchor });
  const chain = new ChainBuilder('runner-03');
  const r1 = chain.next('one');
  const first = await stage.verify([r1, checkpointRecord('runner-03', chain.head, key)]);
  assert.deepEqual(first.events, []);
  assert.equal(first.verdicts[1]!.checkpointVerified, true);

  // Rotation signed by the old key, then a checkpoint signed by the new one, in one request.
  const r2 = chain.next('two');
  const rotated = await stage.verify([r2, checkpointRecord('runner-03', chain.head, key, { type: 'key_rotation', next }), checkpointRecord('runner-03', chain.head, next)]);
  assert.deepEqual(rotated.events, []);
  assert.deepEqual(rotated.verdicts.map((v) => v.checkpointVerified), [undefined, true, true]);
  const reopened = await AgentRegistry.open(join(dir, 'agents.json'));
  assert.deepEqual(await reopened.signingKeys('runner-03'), [key.pem, next.pem]);

  const bad = await stage.verify([checkpointRecord('runner-03', chain.head, next, { signer: stranger }), checkpointRecord('runner-03', chain.head, stranger)]);
  assert.deepEqual(bad.events.map((e) => [e.action, e.details?.key]), [['checkpoint_signature_invalid', next.id], ['checkpoint_key_unknown', stranger.id]]);
  assert.deepEqual(bad.verdicts.map((v) => v.checkpointVerified), [false, false]);
  await anchor.close();
  const lines = (await readFile(join(dir, 'anchors.jsonl'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => [l.type, l.key, l.seq]), [['checkpoint', key.id, 1], ['key_rotation', key.id, 2], ['checkpoint', next.id, 2]]);
  await stage.close();
});

void test('missingRanges: the seqs of a hole that nobody indexed, as ranges', () => {
  assert.deepEqual(missingRanges({ first: 3, last: 9 }, new Set([4, 5, 8])), [{ first: 3, last: 3 }, { first: 6, last: 7 }, { first: 9, last: 9 }]);
  assert.deepEqual(missingRanges({ first: 3, last: 4 }, new Set([3, 4])), []);
});

/** A Set that fails once asked about more seqs than a test's few: missingRanges must not walk the range. */
class CountingSet extends Set<number> {
  calls = 0;
  override has(value: number): boolean {
    if (++this.calls > 1000) throw new Error(`has() called ${this.calls} times: the range is walked seq by seq`);
    return super.has(value);
  }
}

void test('missingRanges: a range up to 2^53 - 1 from its few held seqs or runs, without walking it', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const held = new CountingSet([7, 5, 6, max - 1, 1, max + 1]);
  assert.deepEqual(missingRanges({ first: 2, last: max - 1 }, held), [{ first: 2, last: 4 }, { first: 8, last: max - 2 }]);
  assert.equal(held.calls, 0);
  assert.deepEqual(missingRanges({ first: 2, last: max - 1 }, new CountingSet()), [{ first: 2, last: max - 1 }]);
  // Runs, as a ChainStore gives them, overlapping or not, in any order.
  const runs = [{ first: 100, last: 2 ** 52 }, { first: 1, last: 9 }, { first: 50, last: 120 }];
  assert.deepEqual(missingRanges({ first: 2, last: max - 1 }, runs), [{ first: 10, last: 49 }, { first: 2 ** 52 + 1, last: max - 1 }]);
  assert.deepEqual(missingRanges({ first: 2, last: max - 1 }, [{ first: 1, last: max }]), []);
});

/**
 * The chained records another aggregator instance indexed, as a ChainStore: the stage's view of
 * Elasticsearch (test/integration/storage/least-privilege.test.ts runs ElasticsearchChainStore's
 * queries against a real cluster). Counts the lookups the stage makes.
 */
class HeldSeqs implements ChainStore {
  readonly held: { agentId: string; seq: number }[] = [];
  lookups = 0;
  head(): Promise<undefined> {
    this.lookups++;
    return Promise.resolve(undefined);
  }
  present(agentId: string, range: { first: number; last: number }): Promise<{ first: number; last: number }[]> {
    this.lookups++;
    const seqs = this.held.filter((h) => h.agentId === agentId && h.seq >= range.first && h.seq <= range.last).map((h) => h.seq).sort((a, b) => a - b);
    const runs: { first: number; last: number }[] = [];
    for (const seq of seqs) {
      const run = runs.at(-1);
      if (run !== undefined && seq === run.last + 1) run.last = seq;
      else runs.push({ first: seq, last: seq });
    }
    return Promise.resolve(runs);
  }
}

void test('a hole up to seq 2^53 - 1 is reported as its missing ranges after one lookup; the sweep goes on to the next agent', async () => {
  const max = Number.MAX_SAFE_INTEGER;
  const store = new HeldSeqs();
  const clock = { now: 0 };
  const emitted: IntegrityEvent[] = [];
  const stage = new VerifyStage({ logger, gapGraceMs: 1000, store, now: () => clock.now });
  stage.start((events) => {
    emitted.push(...events);
    return Promise.resolve();
  }, 60_000);
  const far = new ChainBuilder('runner-far');
  await stage.verify([far.next('1')]);
  await stage.verify([far.next('far', { seq: max })]);
  // Meanwhile another aggregator instance indexed 5-7 of the hole.
  store.held.push(...[5, 6, 7].map((seq) => ({ agentId: 'runner-far', seq })));
  const near = new ChainBuilder('runner-near');
  const [n1, n2] = [near.next('1'), near.next('2')];
  near.next('3');
  await stage.verify([n1, n2, near.next('4')]);
  assert.equal(store.lookups, 2, 'one chain head per agent');
  assert.deepEqual(stage.chainOf('runner-far')?.holes.map((x) => [x.first, x.last]), [[2, max - 1]]);
  clock.now = 5000;
  await stage.sweep();
  assert.deepEqual(emitted.map((e) => [e.action, e.agentId, e.firstSeq, e.lastSeq, e.details?.missing_count]), [
    ['chain_gap', 'runner-far', 2, 4, 3],
    ['chain_gap', 'runner-far', 8, max - 1, max - 8],
    ['chain_gap', 'runner-near', 3, 3, 1],
  ]);
  assert.deepEqual([emitted[1]!.details?.hole_first_seq, emitted[1]!.details?.hole_last_seq], [2, max - 1]);
  assert.equal(emitted[1]!.idKey, `8-${max - 1}`);
  assert.equal(store.lookups, 4, 'one lookup per hole');
  assert.deepEqual(stage.chainOf('runner-far')?.base.seq, max);
  assert.deepEqual(stage.chainOf('runner-far')?.holes, []);
  await stage.close();
});

void test('a record far beyond any plausible seq is a chain_seq_jump alert at once, naming the hole it opens; an ordinary gap is none', async () => {
  const { stage } = sweepingStage();
  const chain = new ChainBuilder('runner-jump');
  await stage.verify([chain.next('1'), chain.next('2')]);
  assert.deepEqual((await stage.verify([chain.next('5', { seq: 5 })])).events, [], 'a hole of two');
  const far = 5 + 2 ** 40 + 1;
  const result = await stage.verify([chain.next('far', { seq: far })]);
  assert.deepEqual(result.events.map((e) => [e.action, e.firstSeq, e.lastSeq, e.docId, e.details]), [
    ['chain_seq_jump', far, far, `runner-jump:seq:${far}`, { hole_first_seq: 6, hole_last_seq: far - 1 }],
  ]);
  assert.match(result.events[0]!.message, new RegExp(`Record ${far} of agent runner-jump .* is ${2 ** 40 + 1} seqs beyond the highest one known for the agent \\(5\\)`));
  assert.match(result.events[0]!.message, /Run ci-audit verify for agent runner-jump/);
  assert.equal(result.verdicts[0]!.chain?.verified, true, 'its hash held; its link is unknown');
  await stage.close();
});

void test('a loss the agent found at a source (ci_audit.record.gap) becomes a source_gap event that says why', async () => {
  const stage = new VerifyStage({ logger, gapGraceMs: 1000 });
  const chain = new ChainBuilder('runner-04');
  const before = chain.next('before');
  const gap = chain.next('file gap: /var/log/auth.log.1 disappeared while the agent was stopped', {
    attributes: { 'ci_audit.record.gap': true, 'log.file.path': '/var/log/auth.log.1' },
  });
  const result = await stage.verify([before, gap]);
  assert.deepEqual(result.events.map((e) => [e.action, e.firstSeq, e.docId]), [['source_gap', 2, 'runner-04:seq:2']]);
  assert.match(result.events[0]!.message, /disappeared while the agent was stopped/);
  assert.equal(result.events[0]!.details?.log_file_path, '/var/log/auth.log.1');
  await stage.close();
});

void test('a chained record whose _id another document holds is a chain_fork that says so; a true fork keeps its message', () => {
  const stage = new VerifyStage({ logger, gapGraceMs: 1000 });
  const base = { agentId: 'runner-01', seq: 5, docId: 'runner-01:seq:5', receivedHash: 'aa'.repeat(32), receivedRecord: '{"seq":5}' };
  const taken = stage.forkEvent({ ...base, stored: 'not_chained' });
  assert.deepEqual([taken.action, taken.firstSeq, taken.docId, taken.idKey], ['chain_fork', 5, 'runner-01:seq:5', `5:${'aa'.repeat(32)}`]);
  assert.match(taken.message, /already holds a document at its _id runner-01:seq:5 that is not a chained record/);
  assert.deepEqual(taken.details, { received_hash: 'aa'.repeat(32), stored_hash: undefined, reason: 'not_chained', received_record: '{"seq":5}' });
  const gone = stage.forkEvent({ ...base, stored: 'not_found' });
  assert.match(gone.message, /reading that document back found nothing/);
  assert.equal(gone.details?.reason, 'not_found');
  const fork = stage.forkEvent({ ...base, storedHash: 'bb'.repeat(32) });
  assert.match(fork.message, /already holds record 5 \(runner-01:seq:5\) with hash b{64}: two different histories/);
  assert.deepEqual(fork.details, { received_hash: 'aa'.repeat(32), stored_hash: 'bb'.repeat(32), reason: undefined, received_record: '{"seq":5}' });
});

void test('a key rotation retires the old key by seq, not by arrival: late checkpoints of the old key below it stay valid, beyond it they are events, also after a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'verify-stage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const k0 = newKey();
  const k1 = newKey();
  const evil = newKey();
  const registry = await enrolled(dir, 'runner-05', k0.pem);
  const stage = new VerifyStage({ logger, gapGraceMs: 1000, keys: registry });
  const at = (seq: number) => ({ seq, hash: 'ab'.repeat(32) });
  // The rotation at 5 (with the old key's checkpoint at 5, its own _id now) arrives first...
  const rotated = await stage.verify([checkpointRecord('runner-05', at(5), k0), checkpointRecord('runner-05', at(5), k0, { type: 'key_rotation', next: k1 }), checkpointRecord('runner-05', at(5), k1)]);
  assert.deepEqual(rotated.events, []);
  // ...then a batch that completed later: K0's checkpoint at 3 is within its range.
  const late = await stage.verify([checkpointRecord('runner-05', at(3), k0)]);
  assert.deepEqual(late.events, []);
  assert.equal(late.verdicts[0]!.checkpointVerified, true);
  // Whoever kept K0 signs beyond the rotation: a checkpoint, and a rotation to a key of theirs.
  for (const s of [stage, new VerifyStage({ logger, gapGraceMs: 1000, keys: await AgentRegistry.open(join(dir, 'agents.json')) })]) {
    const forged = await s.verify([checkpointRecord('runner-05', at(100), k0), checkpointRecord('runner-05', at(200), k0, { type: 'key_rotation', next: evil })]);
    assert.deepEqual(forged.verdicts.map((v) => v.checkpointVerified), [false, false]);
    assert.deepEqual(forged.events.map((e) => [e.action, e.firstSeq, e.details?.reason, e.details?.key_valid_until, e.docId]), [
      ['checkpoint_signature_invalid', 100, 'key_out_of_range', 5, `runner-05:checkpoint:${k0.id}:100`],
      ['checkpoint_signature_invalid', 200, 'key_out_of_range', 5, `runner-05:key_rotation:${k0.id}:200`],
    ]);
    assert.match(forged.events[0]!.message, /retired/);
    assert.equal((await s.verify([checkpointRecord('runner-05', at(300), evil)])).events[0]?.action, 'checkpoint_key_unknown');
  }
  assert.deepEqual((await registry.trustedKeys('runner-05')).map((k) => k.rotation), [undefined, { from: k0.id, seq: 5 }]);
  await stage.close();
});
