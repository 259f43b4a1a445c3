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
