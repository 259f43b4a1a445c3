import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentRateLimiter } from '../../../../aggregator/limits/agent-rate-limiter.ts';

void test('each sender has its own request and record buckets; the refusal names the option and the wait', () => {
  let now = 0;
  const limiter = new AgentRateLimiter({ requestsPerSecond: 2, recordsPerSecond: 100, burstSeconds: 1 }, () => now);
  assert.equal(limiter.takeRequest('agent-a').ok, true);
  assert.equal(limiter.takeRequest('agent-a').ok, true);
  const refused = limiter.takeRequest('agent-a');
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.limit === 'requests' && refused.retryAfterSeconds === 1);
  assert.match(!refused.ok ? refused.message : '', /agent-a exceeds limits\.rate\.requests_per_second \(2\)/);
  // Another agent is not slowed by agent-a.
  assert.equal(limiter.takeRequest('agent-b').ok, true);
  assert.equal(limiter.takeRecords('agent-a', 100).ok, true);
  const records = limiter.takeRecords('agent-a', 50);
  assert.ok(!records.ok && records.limit === 'records');
  assert.match(!records.ok ? records.message : '', /limits\.rate\.records_per_second \(100\)/);
  now = 1000;
  assert.equal(limiter.takeRecords('agent-a', 50).ok, true);
  assert.equal(limiter.takeRequest('agent-a').ok, true);
});

void test('a rate of 0 turns that limit off', () => {
  const limiter = new AgentRateLimiter({ requestsPerSecond: 0, recordsPerSecond: 0, burstSeconds: 1 }, () => 0);
  for (let i = 0; i < 1000; i++) assert.equal(limiter.takeRequest('x').ok, true);
  assert.equal(limiter.takeRecords('x', 1e9).ok, true);
  assert.equal(limiter.trackedKeys, 0);
});

void test('memory stays bounded with many senders: idle ones are forgotten first', () => {
  let now = 0;
  const limiter = new AgentRateLimiter({ requestsPerSecond: 1, recordsPerSecond: 0, burstSeconds: 1 }, () => now);
  for (let i = 0; i < 25_000; i++) {
    now = i * 10;
    limiter.takeRequest(`address 10.0.${i >> 8}.${i & 255}`);
  }
  assert.ok(limiter.trackedKeys <= 10_000, `tracked ${limiter.trackedKeys}`);
});
