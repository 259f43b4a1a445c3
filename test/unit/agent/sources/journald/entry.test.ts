// The pure parts of the journald source, on lines as journalctl 252 prints them with --output=json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { journalctlArgs } from '../../../../../agent/sources/journald/journald-source.ts';
import { keepEntry, parseJournalLine, sameEntry, validCursor } from '../../../../../agent/sources/journald/entry.ts';

const cursor = 's=373a852a18ca48549d0fe1da94a2d0d7;i=2;b=0123456789abcdef0123456789abcdef;m=2;t=60a24181e4002;x=b8b9c96938fe7a56';

void test('field values: strings, byte arrays (flagged when not UTF-8), repeated fields joined, null left out', () => {
  const line = JSON.stringify({ __CURSOR: cursor, MESSAGE: [97, 98, 255], SYSLOG_IDENTIFIER: ['sudo', [115, 117]], _PID: null, _UID: '0' });
  const parsed = parseJournalLine(line);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.entry.fields, { __CURSOR: cursor, MESSAGE: 'ab\uFFFD', SYSLOG_IDENTIFIER: 'sudo\nsu', _UID: '0' });
  assert.deepEqual(parsed.entry.invalidUtf8, ['MESSAGE']);
});

void test('lines that are not entries come back with a reason, never a throw', () => {
  const bad = parseJournalLine('Failed to seek');
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.reason, /not JSON/);
  assert.equal(parseJournalLine('[1,2]').ok, false);
  assert.equal(parseJournalLine('{"MESSAGE":"no cursor"}').ok, false);
});

void test('cursors: same entry by seqnum id and number; malformed cursors are recognised', () => {
  assert.ok(sameEntry(cursor, cursor.replace(/;x=[0-9a-f]+$/, ';x=00')));
  assert.ok(!sameEntry(cursor, cursor.replace(';i=2;', ';i=3;')));
  assert.ok(validCursor(cursor));
  assert.ok(!validCursor('garbage'));
  assert.ok(!validCursor('b=0123'));
});

void test('filter: units or identifiers, either one keeps the entry; no filter keeps all', () => {
  const entry = (fields: Record<string, string>) => ({ cursor, fields, invalidUtf8: [] });
  const filter = { units: ['ssh.service'], identifiers: ['sudo'] };
  assert.ok(keepEntry(entry({ SYSLOG_IDENTIFIER: 'sudo' }), filter));
  assert.ok(keepEntry(entry({ _SYSTEMD_UNIT: 'ssh.service', SYSLOG_IDENTIFIER: 'sshd' }), filter));
  assert.ok(!keepEntry(entry({ SYSLOG_IDENTIFIER: 'cron' }), filter));
  assert.ok(keepEntry(entry({}), { units: [], identifiers: [] }));
});

void test('journalctl resumes at the saved cursor inclusively (never --after-cursor), or from the start position', () => {
  const resumed = journalctlArgs({ directory: '/j', start_at: 'beginning' }, cursor);
  assert.ok(resumed.includes(`--cursor=${cursor}`));
  assert.ok(resumed.includes('--directory=/j'));
  assert.ok(!resumed.some((a) => a.startsWith('--after-cursor')));
  assert.ok(journalctlArgs({ directory: undefined, start_at: 'end' }, undefined).includes('--lines=0'));
  assert.ok(journalctlArgs({ directory: undefined, start_at: 'beginning' }, undefined).includes('--lines=all'));
});
