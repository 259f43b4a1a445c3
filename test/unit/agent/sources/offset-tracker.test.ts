import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from '../../../../agent/sources/file/offset-tracker.ts';

void test('the committed offset moves with in-order acks', () => {
  const moves: number[] = [];
  const tracker = new OffsetTracker(10, (c) => moves.push(c));
  const a = tracker.track(20);
  const b = tracker.track(35);
  assert.equal(tracker.outstanding, 2);
  a();
  b();
  assert.equal(tracker.committed, 35);
  assert.deepEqual(moves, [20, 35]);
  assert.equal(tracker.outstanding, 0);
});

void test('out-of-order acks only advance to the highest contiguous acknowledged offset', () => {
  const tracker = new OffsetTracker(0);
  const acks = [10, 20, 30, 40].map((end) => tracker.track(end));
  acks[1]!();
  acks[3]!();
  assert.equal(tracker.committed, 0);
  acks[0]!();
  assert.equal(tracker.committed, 20);
  acks[2]!();
  assert.equal(tracker.committed, 40);
});

void test('a line that is never acknowledged holds the offset back; a second ack is harmless', () => {
  const tracker = new OffsetTracker(0);
  const first = tracker.track(5);
  const held = tracker.track(9);
  const later = tracker.track(12);
  first();
  first();
  later();
  assert.equal(tracker.committed, 5);
  void held;
});

void test('the tracker stays small over many lines', () => {
  const tracker = new OffsetTracker(0);
  for (let i = 1; i <= 10_000; i++) tracker.track(i)();
  assert.equal(tracker.committed, 10_000);
  assert.equal(tracker.outstanding, 0);
});

void test('acks that arrive after the tracker compacted still find their lines, and a repeated one changes nothing', () => {
  const moves: number[] = [];
  const tracker = new OffsetTracker(0, (c) => moves.push(c));
  const acks = Array.from({ length: 3000 }, (_, i) => tracker.track(i + 1));
  // Lines 2500 and 2800 are held back while everything before 2500 is committed (a compaction),
  // then lines come in after it.
  for (let i = 0; i < 2499; i++) acks[i]!();
  for (let i = 2500; i < 3000; i++) if (i !== 2799) acks[i]!();
  assert.equal(tracker.committed, 2499);
  const more = [tracker.track(3001), tracker.track(3002)];
  acks[2499]!();
  assert.equal(tracker.committed, 2799);
  acks[10]!();
  acks[2600]!();
  assert.equal(tracker.committed, 2799);
  more[1]!();
  acks[2799]!();
  assert.equal(tracker.committed, 3000);
  more[0]!();
  assert.equal(tracker.committed, 3002);
  assert.equal(tracker.outstanding, 0);
  assert.deepEqual(moves.slice(-4), [2499, 2799, 3000, 3002]);
});
