// Lossless writing against the real Elasticsearch: a record that conflicts with the mapping lands in
// the dead-letter stream with the original document and the error; a bulk with mixed item results
// (created, duplicate, refused) is handled item by item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { dataStreamName } from '../../../core/wire.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import type { MappedRecord } from '../../../aggregator/map/ecs.ts';
import { esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

interface DeadLetter {
  '@timestamp': string;
  ci_audit: { deadletter: { data_stream: string; id: string; document: string; error: { status: number; type: string; reason: string } } };
}

void test('a record that conflicts with the mapping goes to the dead-letter stream with its error; the others are stored', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace('dlq');
  const writer = new ElasticsearchWriter({ elasticsearch: { url, namespace, request_timeout_ms: 30_000 }, logger: pino({ level: 'silent' }) });
  t.after(async () => {
    await writer.close();
    await es.close();
  });
  writer.start();
  await writer.whenReady();
  const stream = dataStreamName('auth', namespace);
  const record = (id: string, document: Record<string, unknown>): MappedRecord => ({ dataStream: stream, id, document, issues: [] });
  const good = record('a:1', { '@timestamp': '2026-11-26T09:00:00.000000001Z', message: 'sshd accepted' });
  // source.ip is mapped `ip`: this value is a real mapping conflict.
  const conflicting = record('a:2', { '@timestamp': '2026-11-26T09:00:01Z', message: 'login from a host name', source: { ip: 'runner-07.internal' } });
  const badDate = record('a:3', { '@timestamp': 'yesterday', message: 'no date' });

  const first = await writer.write([good, conflicting, badDate]);
  assert.equal(first.created, 1);
  assert.deepEqual(first.rejected, []);
  assert.deepEqual(first.deadLettered.map((d) => [d.index, d.status]), [[1, 400], [2, 400]]);

  // Mixed results in one bulk: a duplicate, a new record, a refused one already dead-lettered (a re-send).
  const good2 = record('a:4', { '@timestamp': '2026-11-26T09:00:02Z', message: 'sudo' });
  const second = await writer.write([good, good2, conflicting]);
  assert.equal(second.created, 1);
  assert.equal(second.duplicates, 1);
  assert.deepEqual(second.deadLettered.map((d) => d.index), [2]);
  assert.deepEqual(second.rejected, []);

  await es.indices.refresh({ index: [stream, dataStreamName('deadletter', namespace)] });
  const stored = await es.search({ index: stream, sort: [{ '@timestamp': 'asc' }] });
  assert.deepEqual(stored.hits.hits.map((h) => h._id), ['a:1', 'a:4']);
  const letters = await es.search<DeadLetter>({ index: dataStreamName('deadletter', namespace), sort: [{ 'ci_audit.deadletter.id': 'asc' }] });
  // One dead letter per refused record, also when it was sent twice.
  assert.deepEqual(letters.hits.hits.map((h) => h._id), ['a:2', 'a:3']);
  const letter = letters.hits.hits[0]!._source!.ci_audit.deadletter;
  assert.equal(letter.data_stream, stream);
  assert.equal(letter.id, 'a:2');
  assert.deepEqual(JSON.parse(letter.document), conflicting.document);
  assert.equal(letter.error.status, 400);
  assert.equal(letter.error.type, 'document_parsing_exception');
  assert.match(letter.error.reason, /failed to parse field \[source\.ip\] of type \[ip\]/);
  assert.match(letters.hits.hits[1]!._source!.ci_audit.deadletter.error.reason, /@timestamp/);
});
