import { test } from 'node:test';
import assert from 'node:assert/strict';
import { genesisHash } from '../../../../core/integrity/chain.ts';
import { AgentChain, implausibleSeqJump } from '../../../../aggregator/verify/continuity.ts';
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

void test('a seq more than 2^40 beyond the highest known is a seq_jump; the hole up to it is one range, due and settled as one', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  chain.observe(link(1), 0);
  chain.observe(link(3), 0);
  assert.deepEqual(chain.observe(link(3 + implausibleSeqJump), 0), [], 'up to 2^40 beyond is no finding');
  assert.deepEqual(chain.observe(link(max), 10), [{ kind: 'seq_jump', seq: max, docId: `a:seq:${max}`, headSeq: 3 + implausibleSeqJump }]);
  assert.deepEqual(chain.holes, [
    { first: 2, last: 2, openedAt: 0 },
    { first: 4, last: 2 + implausibleSeqJump, openedAt: 0 },
    { first: 4 + implausibleSeqJump, last: max - 1, openedAt: 10 },
  ]);
  // A record inside the hole splits it; the base follows the records that arrive in order.
  chain.observe(link(2), 20);
  chain.observe(link(5), 20);
  assert.deepEqual(chain.due(10 + grace, grace), [{ first: 4, last: 4 }, { first: 6, last: 2 + implausibleSeqJump }, { first: 4 + implausibleSeqJump, last: max - 1 }]);
  for (const range of chain.due(10 + grace, grace)) chain.settle(range, 10 + grace);
  assert.deepEqual(chain.holes, []);
  assert.deepEqual(chain.base, { seq: max, hash: h(max), docId: `a:seq:${max}` });
  assert.equal(chain.aheadCount, 0);
});

void test('holes follow a plain model through 5,000 records arriving out of order, with holes settled on the way', () => {
  // The model: every seq above base that is neither arrived nor settled, grouped into runs; a run
  // keeps the earliest time any run it overlapped was seen open.
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const chain = new AgentChain({ seq: 0, hash: genesisHash });
  const known = new Set<number>();
  let base = 0;
  let model: { first: number; last: number; openedAt: number }[] = [];
  const remodel = (now: number): void => {
    while (known.has(base + 1)) base++;
    const top = Math.max(base, ...known);
    const holes: typeof model = [];
    for (let seq = base + 1; seq <= top; seq++) {
      if (known.has(seq)) continue;
      const last = holes.at(-1);
      if (last !== undefined && last.last === seq - 1) last.last = seq;
      else holes.push({ first: seq, last: seq, openedAt: now });
    }
    for (const hole of holes) for (const old of model) if (old.first <= hole.last && hole.first <= old.last) hole.openedAt = Math.min(hole.openedAt, old.openedAt);
    model = holes;
  };
  // Records come in windows of 40 shuffled seqs; a tenth of them arrives only much later or never.
  const late: number[] = [];
  for (let now = 1, start = 1; start <= 5000; start += 40, now++) {
    const window = Array.from({ length: 40 }, (_, i) => start + i);
    for (let i = window.length - 1; i > 0; i--) {
      const j = random(i + 1);
      [window[i], window[j]] = [window[j]!, window[i]!];
    }
    for (const seq of window) {
      if (random(10) === 0) {
        late.push(seq);
        continue;
      }
      chain.observe(link(seq), now);
      known.add(seq);
      remodel(now);
      assert.deepEqual(chain.holes, model, `after seq ${seq} at ${now}`);
    }
    if (random(4) === 0 && late.length > 0) {
      const seq = late.splice(random(late.length), 1)[0]!;
      chain.observe(link(seq), now);
      known.add(seq);
      remodel(now);
      assert.deepEqual(chain.holes, model, `after the late seq ${seq}`);
    }
    if (random(8) === 0) {
      // A hole reported missing after the grace: the chain moves past it.
      const due = chain.due(now, 5);
      for (const range of due) {
        chain.settle(range, now);
        for (let seq = range.first; seq <= range.last; seq++) known.add(seq);
        remodel(now);
      }
      assert.deepEqual(chain.holes, model, `after settling ${JSON.stringify(due)}`);
    }
  }
  assert.ok(model.length > 0 && chain.aheadCount > 0, 'the run ends with records waiting beyond holes');
});
