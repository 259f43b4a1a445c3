import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bsdTime, rfc3339Time, timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

test('turn of the year: a December line read in January is last year\'s', () => {
  const observed = Date.UTC(2025, 0, 1, 0, 5);
  assert.equal(iso(bsdTime('Dec', 31, 23, 59, 58, 0, observed, timeZoneResolver('UTC'))?.ms), '2024-12-31T23:59:58.000Z');
  assert.equal(iso(bsdTime('Jan', 1, 0, 0, 1, 0, observed, timeZoneResolver('UTC'))?.ms), '2025-01-01T00:00:01.000Z');
});

test('a line slightly ahead of the reader\'s clock stays in this year; far ahead goes back a year', () => {
  const observed = Date.UTC(2025, 5, 15, 12);
  assert.equal(iso(bsdTime('Jun', 16, 10, 0, 0, 0, observed, timeZoneResolver('UTC'))?.ms), '2025-06-16T10:00:00.000Z');
  assert.equal(iso(bsdTime('Aug', 1, 10, 0, 0, 0, observed, timeZoneResolver('UTC'))?.ms), '2024-08-01T10:00:00.000Z');
});

test('Feb 29 only exists in leap years', () => {
  const observed = Date.UTC(2025, 2, 1);
  assert.equal(iso(bsdTime('Feb', 29, 8, 0, 0, 0, observed, timeZoneResolver('UTC'))?.ms), '2024-02-29T08:00:00.000Z');
});

test('the configured zone applies to traditional stamps, with DST', () => {
  const observed = Date.UTC(2025, 6, 2);
  const berlin = timeZoneResolver('Europe/Berlin');
  const summer = bsdTime('Jul', 1, 12, 0, 0, 0, observed, berlin);
  assert.equal(iso(summer?.ms), '2025-07-01T10:00:00.000Z');
  assert.equal(summer?.timezone, '+02:00');
  const winter = bsdTime('Jan', 15, 12, 0, 0, 0, observed, berlin);
  assert.equal(iso(winter?.ms), '2025-01-15T11:00:00.000Z');
  assert.equal(winter?.timezone, '+01:00');
  assert.equal(iso(bsdTime('Jul', 1, 12, 0, 0, 0, observed, timeZoneResolver('-05:30'))?.ms), '2025-07-01T17:30:00.000Z');
});

test('an unknown zone is refused; bad stamps give undefined', () => {
  assert.throws(() => timeZoneResolver('Mars/Olympus_Mons'), RangeError);
  assert.equal(bsdTime('Foo', 1, 0, 0, 0, 0, 0, timeZoneResolver('UTC')), undefined);
  assert.equal(bsdTime('Jan', 1, 25, 0, 0, 0, 0, timeZoneResolver('UTC')), undefined);
  assert.equal(rfc3339Time('2025-13-45T99:00:00Z'), undefined);
});

test('RFC 3339 keeps nanoseconds and the offset', () => {
  const t = rfc3339Time('2025-03-04T09:15:02.123456789-07:00');
  assert.equal(iso(t?.ms), '2025-03-04T16:15:02.123Z');
  assert.equal(t?.subMsNanos, 456_789);
  assert.equal(t?.timezone, '-07:00');
});

test('RFC 3339: every length of fraction, none, lower case, and zones that change from one stamp to the next', () => {
  const cases: [string, string, number, string][] = [
    ['2025-03-04T09:15:02.1Z', '2025-03-04T09:15:02.100Z', 0, '+00:00'],
    ['2025-03-04T09:15:02.12+01:00', '2025-03-04T08:15:02.120Z', 0, '+01:00'],
    ['2025-03-04T09:15:02.1234Z', '2025-03-04T09:15:02.123Z', 400_000, '+00:00'],
    ['2025-03-04T09:15:02.123456-0500', '2025-03-04T14:15:02.123Z', 456_000, '-05:00'],
    ['2025-03-04T09:15:02.12345678-05:00', '2025-03-04T14:15:02.123Z', 456_780, '-05:00'],
    ['2025-03-04 09:15:02.000000001z', '2025-03-04T09:15:02.000Z', 1, '+00:00'],
    ['2025-03-04t09:15:03+05:30', '2025-03-04T03:45:03.000Z', 0, '+05:30'],
    ['2025-03-04t09:15:03.5+05:30', '2025-03-04T03:45:03.500Z', 0, '+05:30'],
    ['2025-03-04T09:15:03.5+05:30', '2025-03-04T03:45:03.500Z', 0, '+05:30'],
    ['2025-03-04T09:15:03.5Z', '2025-03-04T09:15:03.500Z', 0, '+00:00'],
  ];
  for (const [text, at, subMsNanos, timezone] of cases) {
    const t = rfc3339Time(text);
    assert.deepEqual([iso(t?.ms), t?.subMsNanos, t?.timezone], [at, subMsNanos, timezone], text);
  }
  for (const bad of ['2025-03-04T09:15:02.Z', '2025-03-04T09:15:02.1234567890Z', '2025-03-04T09:15:02', '2025-03-04T09:15:02.5+5:30', ' 2025-03-04T09:15:02Z']) {
    assert.equal(rfc3339Time(bad), undefined, bad);
  }
});

test('RFC 3339: a day the month does not have is refused, not rolled into the next month', () => {
  assert.equal(rfc3339Time('2024-02-30T10:00:00Z'), undefined);
  assert.equal(rfc3339Time('2025-02-29T10:00:00Z'), undefined);
  assert.equal(rfc3339Time('2025-04-31T10:00:00+02:00'), undefined);
  assert.equal(iso(rfc3339Time('2024-02-29T10:00:00Z')?.ms), '2024-02-29T10:00:00.000Z');
  assert.equal(iso(rfc3339Time('2025-04-30T10:00:00Z')?.ms), '2025-04-30T10:00:00.000Z');
});
