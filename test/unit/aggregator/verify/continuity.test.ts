import { test } from 'node:test';
import assert from 'node:assert/strict';
import { genesisHash } from '../../../../core/integrity/chain.ts';
import { AgentChain } from '../../../../aggregator/verify/continuity.ts';
import type { ChainLink } from '../../../../aggregator/verify/continuity.ts';

const h = (n: number): string => n.toString(16).padStart(64, '0').replace(/^0/, 'a');
/** Record n of a clean chain: hash h(n), linking to h(n-1) (genesis for 1). */
const link = (n: number, extra: Partial<ChainLink> = {}): ChainLink => ({ seq: n, hash: h(n), prevHash: n === 1 ? genesisHash : h(n - 1), docId: `a:seq:${n}`, ...extra });
const grace = 1000;

void test('records in order: no findings, no holes, the base follows', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  for (let n = 1; n <= 5; n++) assert.deepEqual(chain.observe(link(n), n), []);
  assert.deepEqual(chain.base, { seq: 5, hash: h(5), docId: 'a:seq:5' });
  assert.deepEqual(chain.holes, []);
  assert.equal(chain.aheadCount, 0);
});

void test('a hole filled before the grace ends is never due', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(4), 10);
  assert.deepEqual(chain.holes, [{ first: 2, last: 3, openedAt: 10 }]);
  assert.deepEqual(chain.due(10 + grace - 1, grace), []);
  chain.observe(link(3), 20);
  // The rest of the hole keeps the time it opened.
  assert.deepEqual(chain.holes, [{ first: 2, last: 2, openedAt: 10 }]);
  assert.deepEqual(chain.observe(link(2), 30), []);
  assert.deepEqual(chain.holes, []);
  assert.deepEqual(chain.base.seq, 4);
});

void test('a hole still open after the grace is due; settling it moves the chain past it', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(5), 0);
  chain.observe(link(6), 0);
  assert.deepEqual(chain.due(grace, grace), [{ first: 2, last: 4 }]);
  chain.settle({ first: 2, last: 4 }, grace);
  assert.deepEqual(chain.holes, []);
  assert.deepEqual(chain.base, { seq: 6, hash: h(6), docId: 'a:seq:6' });
  // A late record of the reported hole is no longer followed.
  assert.deepEqual(chain.observe(link(3), grace + 1), []);
});

void test('a broken link is found whichever end arrives first', () => {
  const forward = new AgentChain({ seq: 0, hash: genesisHash });
  forward.observe(link(1), 0);
  const bad = link(2, { prevHash: h(99) });
  assert.deepEqual(forward.observe(bad, 0), [{ kind: 'link_broken', seq: 2, docId: 'a:seq:2', linkSeq: 1, linkDocId: 'a:seq:1', expected: h(1), prevHash: h(99) }]);

  const backward = new AgentChain({ seq: 0, hash: genesisHash });
  backward.observe(link(3, { prevHash: h(98) }), 0);
  assert.deepEqual(backward.observe(link(1), 0), []);
  assert.deepEqual(backward.observe(link(2), 0), [{ kind: 'link_broken', seq: 3, docId: 'a:seq:3', linkSeq: 2, linkDocId: 'a:seq:2', expected: h(2), prevHash: h(98) }]);
});

void test('the first record links to the genesis hash', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  assert.equal(chain.observe(link(1, { prevHash: h(7) }), 0)[0]?.kind, 'link_broken');
});

void test('an unclean_stop record declares its gap and links to the head before it', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(2), 0);
  const declared = { first: 3, last: 4096, reason: 'unclean_stop' };
  const resume = link(4097, { prevHash: h(2), declared });
  assert.deepEqual(chain.observe(resume, 0), [{ kind: 'gap_declared', seq: 4097, docId: 'a:seq:4097', gap: declared }]);
  assert.deepEqual(chain.holes, []);
  assert.equal(chain.base.seq, 4097);
  assert.deepEqual(chain.observe(link(4098), 0), []);

  const forged = new AgentChain({ seq: 2, hash: h(2) });
  const findings = forged.observe(link(4097, { prevHash: h(1), declared }), 0);
  assert.deepEqual(findings.map((f) => f.kind), ['gap_declared', 'link_broken']);
});

void test('an unclean_stop record that arrives before the head it links to is checked when the head arrives', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(10, { prevHash: h(77), declared: { first: 3, last: 9, reason: 'unclean_stop' } }), 0);
  const findings = chain.observe(link(2), 0);
  assert.deepEqual(findings, [{ kind: 'link_broken', seq: 10, docId: 'a:seq:10', linkSeq: 2, linkDocId: 'a:seq:2', expected: h(2), prevHash: h(77) }]);
  assert.equal(chain.base.seq, 10);
});

void test('a buffer_dropped declaration arriving after the records behind the drop closes the hole, without a link alarm', () => {
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(2), 0);
  // 3 and 4 were dropped on the agent; 5 links to 4, which the aggregator never sees.
  assert.deepEqual(chain.observe(link(5), 0), []);
  assert.deepEqual(chain.holes.map((x) => [x.first, x.last]), [[3, 4]]);
  const declared = { first: 3, last: 4, reason: 'buffer_dropped' };
  assert.deepEqual(chain.observe(link(6, { declared }), 0), [{ kind: 'gap_declared', seq: 6, docId: 'a:seq:6', gap: declared }]);
  assert.deepEqual(chain.holes, []);
  assert.equal(chain.base.seq, 6);
});

void test('records at or below the base (re-sends) and repeats are not followed again', () => {
  const chain = new AgentChain({ seq: 10, hash: h(10) });
  assert.deepEqual(chain.observe(link(3, { prevHash: h(55) }), 0), []);
  chain.observe(link(12), 0);
  assert.deepEqual(chain.observe(link(12, { hash: h(66) }), 0), []);
  assert.deepEqual(chain.holes.map((x) => [x.first, x.last]), [[11, 11]]);
});

void test('a chain followed from an unknown head checks no link until it knows one', () => {
  const chain = new AgentChain({ seq: 0, hash: undefined });
  assert.deepEqual(chain.observe(link(1, { prevHash: h(5) }), 0), []);
  assert.equal(chain.observe(link(2, { prevHash: h(5) }), 0)[0]?.kind, 'link_broken');
});
