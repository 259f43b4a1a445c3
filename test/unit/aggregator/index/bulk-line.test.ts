import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bulkLine, createAction } from '../../../../aggregator/index/bulk-line.ts';

const odd = ['logs-ci_audit.auth-default', '', 'a"b\\c', 'line\nbreak\ttab\u0000\u001f', 'é ключ 😀', '\ud800', 'x\udfffy', '\u2028\u2029', '</script>', 'a'.repeat(600)];

void test('the action line is what JSON.stringify writes for { create: { _index, _id } }, for any index and id', () => {
  for (const index of odd) {
    assert.equal(createAction(index, undefined), JSON.stringify({ create: { _index: index } }));
    for (const id of odd) assert.equal(createAction(index, id), JSON.stringify({ create: { _index: index, _id: id } }));
  }
});

void test('bulkLine serializes the action and the document of a mapped record', () => {
  const document = { '@timestamp': '2026-11-26T10:22:01.000000000Z', message: 'a"\ud800', n: 2 ** 60, nested: { list: [1, 'x', null] } };
  assert.deepEqual(bulkLine({ dataStream: 'logs-ci_audit.auth-default', id: 'agent-1:seq:7', document, issues: [] }), {
    action: '{"create":{"_index":"logs-ci_audit.auth-default","_id":"agent-1:seq:7"}}',
    document: JSON.stringify(document),
  });
  assert.equal(bulkLine({ dataStream: 'logs-ci_audit.auth-default', document, issues: [] }).action, '{"create":{"_index":"logs-ci_audit.auth-default"}}');
});
