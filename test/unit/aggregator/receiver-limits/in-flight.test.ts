import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightGate } from '../../../../aggregator/limits/in-flight.ts';

void test('requests beyond max_in_flight_requests are refused until one is released; release is idempotent', () => {
  const gate = new InFlightGate({ maxRequests: 2, maxRecords: 100, maxBytes: 1000 });
  const a = gate.admitRequest();
  const b = gate.admitRequest();
  const c = gate.admitRequest();
  assert.ok(a.ok && b.ok);
  assert.ok(!c.ok);
  assert.match(!c.ok ? c.message : '', /2 requests in flight \(limits\.max_in_flight_requests 2\)/);
  if (a.ok) {
    a.release();
    a.release();
  }
  assert.equal(gate.usage.requests, 1);
  assert.equal(gate.admitRequest().ok, true);
});

void test('records and bytes are bounded together; a single oversized batch passes only when nothing else is held', () => {
  const gate = new InFlightGate({ maxRequests: 10, maxRecords: 100, maxBytes: 1000 });
  const first = gate.admitRecords(80, 100);
  assert.ok(first.ok);
  const records = gate.admitRecords(30, 100);
  assert.match(!records.ok ? records.message : '', /80 records waiting .*max_in_flight_records 100/);
  const bytes = gate.admitRecords(10, 950);
  assert.match(!bytes.ok ? bytes.message : '', /max_in_flight_bytes 1000/);
  if (first.ok) first.release();
  assert.deepEqual(gate.usage, { requests: 0, records: 0, bytes: 0 });
  const huge = gate.admitRecords(500, 5000);
  assert.equal(huge.ok, true);
  assert.equal(gate.admitRecords(1, 1).ok, false);
});
