import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyBulkResponse, classifyItem } from '../../../aggregator/index/bulk-result.ts';

// Item bodies as Elasticsearch 9.5 returns them (captured from the integ-test distribution, except
// 429 and the 403 item, whose shapes follow Elasticsearch's documented error bodies).
const created = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'EfstGKIBJYK3c5QfKNzz',
    _version: 1,
    result: 'created',
    _shards: { total: 1, successful: 1, failed: 0 },
    _seq_no: 1,
    _primary_term: 1,
    status: 201,
  },
};
const conflict = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'agent-1:r1',
    status: 409,
    error: {
      type: 'version_conflict_engine_exception',
      reason: '[agent-1:r1]: version conflict, document already exists (current version [1])',
      index_uuid: '-oaxsEHTT_SjTWBrQbtxcQ',
      shard: '0',
      index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    },
  },
};
const documentParsing = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'x2',
    status: 400,
    error: {
      type: 'document_parsing_exception',
      reason: "[1:54] failed to parse field [log.offset] of type [long] in document with id 'x2'. Preview of field's value: 'abc'",
      caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "abc"' },
    },
  },
};
const beforeEpoch = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'FPstGKIBJYK3c5QfO9yU',
    status: 400,
    error: {
      type: 'document_parsing_exception',
      reason:
        "[1:15] failed to parse field [@timestamp] of type [date_nanos] in document with id 'FPstGKIBJYK3c5QfO9yU'. Preview of field's value: '1960-01-01T00:00:00Z'",
      caused_by: {
        type: 'illegal_argument_exception',
        reason: 'date[1960-01-01T00:00:00Z] is before the epoch in 1970 and cannot be stored in nanosecond resolution',
      },
    },
  },
};
const mapperParsing = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'm1',
    status: 400,
    error: {
      type: 'mapper_parsing_exception',
      reason: 'failed to parse field [source.ip] of type [ip]',
      caused_by: { type: 'illegal_argument_exception', reason: "'not-an-ip' is not an IP string literal." },
    },
  },
};
const indexOnDataStream = {
  index: {
    _index: 'logs-ci_audit.auth-smoke',
    _id: null,
    status: 400,
    error: { type: 'illegal_argument_exception', reason: 'only write ops with an op_type of create are allowed in data streams' },
  },
};
const rejectedExecution = {
  create: {
    _index: '.ds-logs-ci_audit.auth-smoke-2026.11.26-000001',
    _id: 'r429',
    status: 429,
    error: {
      type: 'es_rejected_execution_exception',
      reason:
        'rejected execution of org.elasticsearch.action.support.replication.TransportWriteAction$1/WrappedActionListener{...} on ' +
        'EsThreadPoolExecutor[name = node-1/write, queue capacity = 10000, org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor@5d6f9c3b' +
        '[Running, pool size = 8, active threads = 8, queued tasks = 10000, completed tasks = 1234567]]',
    },
  },
};
const unavailableShards = {
  create: {
    _index: 'unalloc-x',
    _id: '1',
    status: 503,
    error: {
      type: 'unavailable_shards_exception',
      reason:
        '[unalloc-x][0] primary shard is not active Timeout: [1s], request: [BulkShardRequest [[unalloc-x][0]] containing [index {[unalloc-x][1], source[{"a":1}]}]]',
    },
  },
};
const forbidden = {
  create: {
    _index: 'logs-ci_audit.auth-default',
    _id: 'f1',
    status: 403,
    error: {
      type: 'security_exception',
      reason: 'action [indices:data/write/bulk[s]] is unauthorized for user [ci-audit-writer] with effective roles [ci_audit_writer] on indices [logs-ci_audit.auth-default]',
    },
  },
};

void test('201 is created and 409 on create is a duplicate: both are success', () => {
  assert.deepEqual(classifyItem(created.create), { kind: 'created' });
  assert.deepEqual(classifyItem(conflict.create), { kind: 'duplicate' });
});

void test('mapping and parsing errors are rejected for good, with type, reason and cause', () => {
  assert.deepEqual(classifyItem(documentParsing.create), {
    kind: 'rejected',
    status: 400,
    error:
      "document_parsing_exception: [1:54] failed to parse field [log.offset] of type [long] in document with id 'x2'. Preview of field's value: 'abc' " +
      '(caused by illegal_argument_exception: For input string: "abc")',
  });
  for (const item of [beforeEpoch.create, mapperParsing.create, indexOnDataStream.index]) {
    const outcome = classifyItem(item);
    assert.equal(outcome.kind, 'rejected');
  }
  assert.match(JSON.stringify(classifyItem(mapperParsing.create)), /mapper_parsing_exception: failed to parse field \[source\.ip\]/);
});

void test('429, 5xx and cluster-side refusals (403) are retried, never dropped', () => {
  assert.deepEqual(classifyItem(rejectedExecution.create).kind, 'retry');
  assert.match(JSON.stringify(classifyItem(rejectedExecution.create)), /es_rejected_execution_exception/);
  assert.deepEqual(classifyItem(unavailableShards.create), {
    kind: 'retry',
    status: 503,
    error: `unavailable_shards_exception: ${unavailableShards.create.error.reason}`,
  });
  assert.equal(classifyItem(forbidden.create).kind, 'retry');
  assert.equal(classifyItem({ status: 404, error: { type: 'index_not_found_exception', reason: 'no such index [logs-ci_audit.auth-default]' } }).kind, 'retry');
  assert.deepEqual(classifyItem(undefined), { kind: 'retry', status: 0, error: 'no result for this item in the bulk response' });
});

void test('a whole bulk response is classified item by item, with positions', () => {
  const response = {
    errors: true,
    took: 3,
    items: [created, conflict, documentParsing, rejectedExecution, created, unavailableShards, beforeEpoch],
  };
  // Eight actions were sent; the response lacks the last one.
  const result = classifyBulkResponse(response, 8);
  assert.equal(result.created, 2);
  assert.equal(result.duplicates, 1);
  assert.deepEqual(result.rejected.map((r) => [r.index, r.status]), [[2, 400], [6, 400]]);
  assert.deepEqual(result.retry.map((r) => [r.index, r.status]), [[3, 429], [5, 503], [7, 0]]);
});

void test('a response without errors counts every item as created', () => {
  // What the writer asks for with filter_path=errors,items.*.status,items.*.error
  const result = classifyBulkResponse({ errors: false, items: [{ create: { status: 201 } }, { create: { status: 201 } }] }, 2);
  assert.deepEqual(result, { created: 2, duplicates: 0, retry: [], rejected: [] });
});
