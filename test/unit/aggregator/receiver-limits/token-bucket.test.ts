import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../../../aggregator/limits/token-bucket.ts';

void test('a bucket lets its capacity through at once, then refuses with the seconds until enough tokens return', () => {
  const bucket = new TokenBucket(10, 20, 0);
  for (let i = 0; i < 20; i++) assert.deepEqual(bucket.take(1, 0), { ok: true });
  assert.deepEqual(bucket.take(1, 0), { ok: false, retryAfterSeconds: 1 });
  assert.deepEqual(bucket.take(15, 0), { ok: false, retryAfterSeconds: 2 });
  // 500 ms at 10/s: 5 tokens back.
  assert.deepEqual(bucket.take(5, 500), { ok: true });
  assert.equal(bucket.tokensAt(500), 0);
});

void test('refill never exceeds the capacity, and a clock that goes back refills nothing', () => {
  const bucket = new TokenBucket(100, 50, 1000);
  assert.equal(bucket.tokensAt(1_000_000), 50);
  bucket.take(50, 1_000_000);
  assert.equal(bucket.tokensAt(999_000), 0);
  assert.equal(bucket.isFullAt(1_000_500), true);
});

void test('a take larger than the bucket passes when full and leaves a debt that delays the next', () => {
  const bucket = new TokenBucket(100, 200, 0);
  assert.deepEqual(bucket.take(500, 0), { ok: true });
  assert.equal(bucket.tokensAt(0), -300);
  assert.deepEqual(bucket.take(1, 0), { ok: false, retryAfterSeconds: 4 });
  assert.deepEqual(bucket.take(1, 3010), { ok: true });
});

void test('a bucket needs a positive rate and capacity', () => {
  assert.throws(() => new TokenBucket(0, 10, 0), RangeError);
  assert.throws(() => new TokenBucket(10, Number.NaN, 0), RangeError);
});
