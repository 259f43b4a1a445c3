// The circuit breaker and the durable spool: while Elasticsearch is unreachable (a writer pointed at
// a closed port: the suite's cluster cannot be stopped by a test) records are accepted into the
// spool; a writer pointed at the real Elasticsearch drains them, oldest batch first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { dataStreamName } from '../../../core/wire.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import type { MappedRecord } from '../../../aggregator/map/ecs.ts';
import { Spool } from '../../../aggregator/spool/spool.ts';
import { SpoolingWriter } from '../../../aggregator/spool/spooling-writer.ts';
import { esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

void test('records accepted while Elasticsearch is unreachable are spooled, then drained when it is back', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-spool-it-'));
  const namespace = uniqueNamespace('spool');
  const stream = dataStreamName('ci', namespace);
  const logger = pino({ level: 'silent' });
  const closers: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const close of closers.reverse()) await close();
    await es.close();
    await rm(dir, { recursive: true, force: true });
  });
  const batch = (from: number, n: number): MappedRecord[] =>
    Array.from({ length: n }, (_, i) => ({ dataStream: stream, id: `s:${from + i}`, document: { '@timestamp': new Date(Date.UTC(2026, 10, 26, 9, 0, from + i)).toISOString(), message: `job ${from + i}` }, issues: [] }));

  // Down: nothing listens on the port.
  const down = new ElasticsearchWriter({ elasticsearch: { url: await closedPortUrl(), namespace, request_timeout_ms: 2000 }, logger, probeInitialDelayMs: 50, probeMaxDelayMs: 200 });
  closers.push(() => down.close());
  down.start();
  const offline = new SpoolingWriter({ inner: down, spool: await Spool.open({ dir, maxBytes: 1 << 20 }), logger, drainIntervalMs: 50 });
  closers.push(() => offline.close());
  assert.equal(offline.ready, true, 'with room in the spool, records are accepted while Elasticsearch is down');
  const results = [await offline.write(batch(0, 3)), await offline.write(batch(3, 2))];
  assert.deepEqual(results.map((r) => [r.created, r.spooled]), [[0, 3], [0, 2]]);
  assert.equal(offline.spooled, 2);
  await offline.close();
  await down.close();
  assert.equal((await readdir(dir)).filter((n) => n.endsWith('.batch')).length, 2, 'the spool survives the writer');

  // Back: a new aggregator process (same spool folder) against the real Elasticsearch.
  const up = new ElasticsearchWriter({ elasticsearch: { url, namespace, request_timeout_ms: 30_000 }, logger });
  closers.push(() => up.close());
  up.start();
  const online = new SpoolingWriter({ inner: up, spool: await Spool.open({ dir, maxBytes: 1 << 20 }), logger, drainIntervalMs: 50 });
  closers.push(() => online.close());
  // A write that arrives while the spool drains queues behind it, so the order holds.
  const late = await online.write(batch(5, 1));
  assert.equal(late.spooled, 1);
  await online.drained();
  assert.deepEqual(await readdir(dir), []);
  await es.indices.refresh({ index: stream });
  const stored = await es.search({ index: stream, size: 100, sort: [{ '@timestamp': 'asc' }] });
  assert.deepEqual(stored.hits.hits.map((h) => h._id), ['s:0', 's:1', 's:2', 's:3', 's:4', 's:5']);
  // Once drained, writes go straight to Elasticsearch again (the breaker is closed).
  const direct = await online.write(batch(6, 1));
  assert.deepEqual([direct.created, direct.spooled], [1, undefined]);
});
