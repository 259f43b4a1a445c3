// The writer over a real local HTTP server speaking the bulk API: concurrent writes share bulk
// requests, and each write still gets the exact outcome of each of its own records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { ElasticsearchWriter } from '../../../../aggregator/index/elasticsearch-writer.ts';
import type { MappedRecord } from '../../../../aggregator/map/ecs.ts';

interface Action {
  create: { _index: string; _id?: string };
}

/** Answers templates as installed and each bulk item by its _id: `dup-*` 409, `bad-*` 400 (outside the dead-letter stream), else 201. */
async function bulkServer(t: { after: (fn: () => Promise<void>) => void }): Promise<{ url: string; bulks: Action[][] }> {
  const bulks: Action[][] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
        res.end(JSON.stringify(body));
      };
      const path = (req.url ?? '').split('?')[0]!;
      if (path === '/_bulk') {
        const lines = Buffer.concat(chunks).toString().split('\n').filter((l) => l !== '');
        const actions = lines.filter((_, i) => i % 2 === 0).map((l) => JSON.parse(l) as Action);
        bulks.push(actions);
        const items = actions.map(({ create }) => {
          const id = create._id ?? '';
          if (id.startsWith('dup-')) return { create: { status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists` } } };
          if (id.startsWith('bad-') && !create._index.includes('deadletter')) {
            return { create: { status: 400, error: { type: 'document_parsing_exception', reason: 'failed to parse field [source.ip] of type [ip]' } } };
          }
          return { create: { status: 201 } };
        });
        return send(200, { errors: true, items });
      }
      // Templates: every one reads as missing and is accepted.
      if (req.method === 'PUT') return send(200, { acknowledged: true });
      return send(404, { index_templates: [], component_templates: [] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, bulks };
}

const rec = (id: string): MappedRecord => ({ dataStream: 'logs-ci_audit.auth-default', id, document: { '@timestamp': '2026-11-26T09:00:00Z', message: id }, issues: [] });

void test('concurrent writes share one bulk request; each gets its own created / duplicate / dead-lettered outcome', async (t) => {
  const es = await bulkServer(t);
  const writer = new ElasticsearchWriter({ elasticsearch: { url: es.url, namespace: 'default', request_timeout_ms: 2000 }, logger: pino({ level: 'silent' }), maxBulkDelayMs: 50 });
  t.after(() => writer.close());
  writer.start();
  await writer.whenReady();

  const [a, b, c] = await Promise.all([
    writer.write([rec('a-1'), rec('dup-a2'), rec('bad-a3')]),
    writer.write([rec('bad-b1'), rec('b-2')]),
    writer.write([rec('c-1')]),
  ]);
  assert.deepEqual([a.created, a.duplicates, a.deadLettered.map((d) => d.index), a.rejected], [1, 1, [2], []]);
  assert.deepEqual([b.created, b.duplicates, b.deadLettered.map((d) => d.index), b.rejected], [1, 0, [0], []]);
  assert.deepEqual([c.created, c.duplicates, c.deadLettered, c.rejected], [1, 0, [], []]);
  assert.match(a.deadLettered[0]!.error, /^document_parsing_exception: failed to parse field \[source\.ip\]/);
  // One bulk request for the six records of three writes, one for the two dead letters of two writes.
  assert.deepEqual(es.bulks.map((bulk) => bulk.map((x) => x.create._id)), [['a-1', 'dup-a2', 'bad-a3', 'bad-b1', 'b-2', 'c-1'], ['bad-a3', 'bad-b1']]);
  assert.ok(es.bulks[1]!.every((x) => x.create._index === 'logs-ci_audit.deadletter-default'));
});

void test('with max_delay 0 and one slot, records that arrive while a bulk is in flight leave together in the next', async (t) => {
  const es = await bulkServer(t);
  const writer = new ElasticsearchWriter({ elasticsearch: { url: es.url, namespace: 'default', request_timeout_ms: 2000 }, logger: pino({ level: 'silent' }), maxBulkDelayMs: 0, maxConcurrentBulks: 1 });
  t.after(() => writer.close());
  writer.start();
  await writer.whenReady();
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => writer.write([rec(`r-${i}`)])));
  assert.deepEqual(results.map((r) => r.created), [1, 1, 1, 1, 1]);
  assert.deepEqual(es.bulks.map((bulk) => bulk.length), [1, 4]);
});
