import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvField, csvFormatter, fieldValue, jsonlFormatter, printable, tableFormatter } from '../../../admin/search/format.ts';

const hits = [
  { _index: 'logs-ci_audit.auth-x', _id: '1', _source: { '@timestamp': '2026-03-05T09:00:01.123456000Z', user: { name: 'alice' }, source: { ip: '198.51.100.7' }, event: { category: ['authentication', 'session'] } } },
  { _index: 'logs-ci_audit.auth-x', _id: '2', _source: { '@timestamp': '2026-03-05T09:00:02.000000000Z', user: { name: 'bob, "the builder"' }, message: 'line1\nline2', ci_audit: { attributes: { 'a.b': 'dotted' } } } },
];

test('fields by dotted path, nested objects and dotted keys alike', () => {
  assert.equal(fieldValue(hits[0]!._source, 'user.name'), 'alice');
  assert.equal(fieldValue(hits[1]!._source, 'ci_audit.attributes.a.b'), 'dotted');
  assert.equal(fieldValue(hits[0]!._source, 'user.id'), undefined);
});

test('table: header, aligned columns, arrays joined, control characters shown', () => {
  const lines = tableFormatter(['@timestamp', 'user.name', 'event.category', 'message']).page(hits);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^@timestamp +user\.name +event\.category +message$/);
  const col = lines[0]!.indexOf('user.name');
  assert.equal(lines[1]!.slice(col, col + 5), 'alice');
  assert.equal(lines[2]!.slice(col, col + 3), 'bob');
  assert.match(lines[1]!, /authentication,session/);
  assert.match(lines[2]!, /line1\\x0aline2$/);
  assert.equal(printable('\u001b[31mred'), '\\x1b[31mred');
});

test('jsonl: one parseable object per hit with _index and _id', () => {
  const lines = jsonlFormatter().page(hits);
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(first._id, '1');
  assert.deepEqual(first.user, { name: 'alice' });
  assert.equal((JSON.parse(lines[1]!) as { message: string }).message, 'line1\nline2');
});

test('csv: RFC 4180 quoting, header once across pages', () => {
  const f = csvFormatter(['user.name', 'message', 'source.ip']);
  assert.deepEqual(f.page([hits[0]!]), ['user.name,message,source.ip', 'alice,,198.51.100.7']);
  assert.deepEqual(f.page([hits[1]!]), ['"bob, ""the builder""","line1\nline2",']);
  assert.equal(csvField(' x'), '" x"');
  assert.equal(csvField('plain'), 'plain');
});
