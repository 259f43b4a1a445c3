// The writer against a small fake of Elasticsearch's HTTP API, for what a real cluster will not do
// on demand: reject items with 429, fail, come back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { hasErrorCode } from '../../../core/errors.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import { buildTemplatePlan } from '../../../aggregator/index/templates.ts';
import type { MappedRecord } from '../../../aggregator/map/ecs.ts';
import type { ChainConflict } from '../../../aggregator/verify/stage.ts';

type BulkItemReply = { status: number; _index?: string; error?: { type: string; reason: string } };

interface FakeEs {
  url: string;
  bulkBodies: string[][];
  /** Status per item of each bulk call, in order; default 201 for all. */
  /** `reset` drops the connection instead of answering. */
  bulkReplies: Array<(actions: string[]) => BulkItemReply[] | 'reset'>;
  templatePuts: number;
  templates: Map<string, Record<string, unknown>>;
  authorization: string[];
  /** The `docs` of each `_mget` call, in order. */
  mgetDocs: Array<Array<{ _index: string; _id: string }>>;
  /** The `docs` of each `_mget` reply, in order; default: not found. */
  mgetReplies: Array<(docs: Array<{ _index: string; _id: string }>) => unknown[]>;
}

async function fakeElasticsearch(t: { after: (fn: () => Promise<void>) => void }): Promise<FakeEs> {
  const fake: FakeEs = { url: '', bulkBodies: [], bulkReplies: [], templatePuts: 0, templates: new Map(), authorization: [], mgetDocs: [], mgetReplies: [] };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunksIn: Buffer[] = [];
    req.on('data', (c: Buffer) => chunksIn.push(c));
    req.on('end', () => {
      fake.authorization.push(String(req.headers.authorization));
      const path = (req.url ?? '').split('?')[0];
      // Templates: remembers what was put, answers 404 before.
      const template = /^\/_(index|component)_template\/([^/]+)$/.exec(path ?? '');
      if (template !== null) {
        const [, kind, name] = template;
        const key = `${kind}/${name}`;
        if (req.method === 'PUT') {
          fake.templatePuts++;
          fake.templates.set(key, JSON.parse(Buffer.concat(chunksIn).toString()) as Record<string, unknown>);
          return send(res, 200, { acknowledged: true });
        }
        const body = fake.templates.get(key);
        const listKey = kind === 'index' ? 'index_templates' : 'component_templates';
        if (body === undefined) return send(res, 404, { [listKey]: [] });
        return send(res, 200, { [listKey]: [{ name, [kind === 'index' ? 'index_template' : 'component_template']: body }] });
      }
      if (path === '/_bulk') {
        const lines = Buffer.concat(chunksIn).toString().split('\n').filter((l) => l !== '');
        const actions = lines.filter((_, i) => i % 2 === 0);
        fake.bulkBodies.push(lines);
        const reply = (fake.bulkReplies.shift() ?? ((a: string[]) => a.map(() => ({ status: 201 }))))(actions);
        if (reply === 'reset') return req.socket.destroy();
        const items = reply.map((item) => ({ create: item }));
        return send(res, 200, { errors: items.some((i) => i.create.status >= 300), items });
      }
      if (path === '/_mget') {
        const { docs } = JSON.parse(Buffer.concat(chunksIn).toString()) as { docs: Array<{ _index: string; _id: string }> };
        fake.mgetDocs.push(docs);
        const reply = fake.mgetReplies.shift() ?? ((d: Array<{ _index: string; _id: string }>) => d.map((doc) => ({ ...doc, found: false })));
        return send(res, 200, { docs: reply(docs) });
      }
      return send(res, 404, { error: `fake has no ${req.method ?? ''} ${path ?? ''}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  fake.url = `http://writer:pa%24%24word@127.0.0.1:${(server.address() as { port: number }).port}`;
  return fake;
}

function mapped(n: number): MappedRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    dataStream: 'logs-ci_audit.auth-default',
    id: `a:${i}`,
    document: { '@timestamp': '2026-11-26T09:00:00.000000001Z', message: `line ${i}` },
    issues: [],
  }));
}

function writerFor(fake: FakeEs, t: { after: (fn: () => Promise<void>) => void }, extra: Partial<ConstructorParameters<typeof ElasticsearchWriter>[0]> = {}) {
  const writer = new ElasticsearchWriter({
    elasticsearch: { url: fake.url, namespace: 'default', request_timeout_ms: 2000 },
    logger: pino({ level: 'silent' }),
    retryDelayMs: 1,
    ...extra,
  });
  t.after(() => writer.close());
  return writer;
}

void test('start installs the template, credentials from the URL become basic auth', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t);
  assert.equal(writer.ready, false);
  writer.start();
  await writer.whenReady();
  assert.equal(writer.state, 'ready');
  const plan = buildTemplatePlan();
  assert.equal(fake.templatePuts, plan.componentTemplates.length + plan.indexTemplates.length);
  assert.equal(fake.authorization[0], `Basic ${Buffer.from('writer:pa$$word').toString('base64')}`);
  assert.equal(writer.url, fake.url.replace('writer:pa%24%24word@', '') + '/');
});

void test('items answered 429 are retried alone until created; 409 counts as duplicate', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t);
  writer.start();
  await writer.whenReady();
  fake.bulkReplies.push(
    () => [
      { status: 201 },
      { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'rejected execution' } },
      { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'document already exists' } },
      { status: 400, error: { type: 'document_parsing_exception', reason: 'failed to parse' } },
    ],
    () => [{ status: 201 }],
  );
  const result = await writer.write(mapped(4));
  assert.deepEqual(result, {
    created: 2,
    duplicates: 1,
    rejected: [],
    deadLettered: [{ index: 3, status: 400, error: 'document_parsing_exception: failed to parse' }],
  });
  // Third request: the refused item's dead letter, with the same _id, holding the original document.
  assert.equal(fake.bulkBodies.length, 3);
  assert.equal(fake.bulkBodies[2]![0], JSON.stringify({ create: { _index: 'logs-ci_audit.deadletter-default', _id: 'a:3' } }));
  const letter = JSON.parse(fake.bulkBodies[2]![1]!) as { ci_audit: { deadletter: { document: string; data_stream: string; error: { status: number; type: string } } } };
  assert.deepEqual(JSON.parse(letter.ci_audit.deadletter.document), mapped(4)[3]!.document);
  assert.equal(letter.ci_audit.deadletter.data_stream, 'logs-ci_audit.auth-default');
  assert.deepEqual([letter.ci_audit.deadletter.error.status, letter.ci_audit.deadletter.error.type], [400, 'document_parsing_exception']);
  assert.deepEqual(fake.bulkBodies[0]!.filter((_, i) => i % 2 === 0).map((a) => (JSON.parse(a) as { create: { _id: string } }).create._id), ['a:0', 'a:1', 'a:2', 'a:3']);
  assert.deepEqual(fake.bulkBodies[1], [
    JSON.stringify({ create: { _index: 'logs-ci_audit.auth-default', _id: 'a:1' } }),
    JSON.stringify({ '@timestamp': '2026-11-26T09:00:00.000000001Z', message: 'line 1' }),
  ]);
});

void test('items still failing after the last attempt fail the write with CIA_ERR_ES_UNAVAILABLE', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t, { maxAttempts: 2 });
  writer.start();
  await writer.whenReady();
  const busy = (a: string[]) => a.map(() => ({ status: 503, error: { type: 'unavailable_shards_exception', reason: 'primary shard is not active' } }));
  fake.bulkReplies.push(busy, busy);
  await assert.rejects(writer.write(mapped(2)), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE'));
    assert.match(err.message, /did not accept 2 of 2 documents after 2 attempts \(first: HTTP 503 unavailable_shards_exception: primary shard is not active\)/);
    return true;
  });
  // Overload is not unreachability: still ready.
  assert.equal(writer.ready, true);
});

void test('large writes are split into several bulk requests', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t, { maxBulkItems: 3 });
  writer.start();
  await writer.whenReady();
  const result = await writer.write(mapped(7));
  assert.equal(result.created, 7);
  assert.deepEqual(fake.bulkBodies.map((b) => b.length / 2), [3, 3, 1]);
});

void test('when Elasticsearch goes away, writes fail as unavailable and readiness is probed again', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t, { probeInitialDelayMs: 10 });
  writer.start();
  await writer.whenReady();
  // The next bulk request finds the connection reset.
  fake.bulkReplies.push(() => 'reset');
  await assert.rejects(writer.write(mapped(1)), (err: unknown) => hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE'));
  assert.equal(writer.ready, false);
  assert.equal(writer.state, 'unavailable');
  await writer.whenReady();
  assert.equal((await writer.write(mapped(1))).created, 1);
});

void test('close is safe to call twice and ends the readiness loop', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t);
  await writer.close();
  await writer.close();
  assert.equal(writer.state, 'closed');
  await assert.rejects(writer.write(mapped(1)), (err: unknown) => hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE'));
});

void test('a refused item whose dead letter is refused too is returned as rejected, never dropped silently', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t);
  writer.start();
  await writer.whenReady();
  const refuse = (a: string[]) => a.map(() => ({ status: 400, error: { type: 'mapper_parsing_exception', reason: 'broken' } }));
  fake.bulkReplies.push(refuse, refuse);
  const result = await writer.write(mapped(2));
  assert.equal(result.deadLettered.length, 0);
  assert.deepEqual(result.rejected.map((r) => r.index), [0, 1]);
  assert.match(result.rejected[0]!.error, /^mapper_parsing_exception: broken; the dead letter was refused too: HTTP 400 mapper_parsing_exception: broken$/);
});

void test('bulk requests of concurrent writes stay within the concurrency limit', async (t) => {
  const fake = await fakeElasticsearch(t);
  const writer = writerFor(fake, t, { maxConcurrentBulks: 2, maxBulkItems: 1 });
  writer.start();
  await writer.whenReady();
  let inFlight = 0;
  let most = 0;
  const releases: Array<() => void> = [];
  // The fake answers synchronously, so count in the writer's own view: wrap the client's transport.
  const transport = writer.client.transport;
  const request = transport.request.bind(transport);
  (transport as unknown as { request: typeof request }).request = (async (...args: Parameters<typeof request>) => {
    if (args[0].path !== '/_bulk') return request(...args);
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise<void>((resolve) => releases.push(resolve));
    try {
      return await request(...args);
    } finally {
      inFlight--;
    }
  }) as typeof request;
  const writes = Promise.all([writer.write(mapped(3)), writer.write(mapped(3))]);
  while (fake.bulkBodies.length < 6) {
    await new Promise((r) => setTimeout(r, 5));
    releases.splice(0).forEach((release) => release());
  }
  const results = await writes;
  assert.equal(most, 2);
  assert.deepEqual(results.map((r) => r.created), [3, 3]);
});

/** Chained record `seq` of agent `a` as mapped, with `hash`; its `_id` is `a:seq:<seq>`. */
function chainedRecord(seq: number, hash: string): MappedRecord {
  return {
    dataStream: 'logs-ci_audit.auth-default',
    id: `a:seq:${seq}`,
    document: { '@timestamp': '2026-11-26T09:00:00.000000001Z', message: `line ${seq}`, agent: { id: 'a' }, ci_audit: { chain: { seq, hash, prev_hash: '0'.repeat(64), record: `{"seq":${seq}}` } } },
    issues: [],
  };
}

const conflict409 = { status: 409, _index: '.ds-logs-ci_audit.auth-default-000001', error: { type: 'version_conflict_engine_exception', reason: 'document already exists' } };

void test('a 409 on a chained record is a quiet duplicate only when the stored document holds its hash; else a conflict', async (t) => {
  const fake = await fakeElasticsearch(t);
  const conflicts: ChainConflict[] = [];
  const writer = writerFor(fake, t, {
    onChainConflicts: (found) => {
      conflicts.push(...found);
      return Promise.resolve();
    },
  });
  writer.start();
  await writer.whenReady();
  const [same, other, none, gone] = ['aa', 'bb', 'cc', 'dd'].map((h) => h.repeat(32));
  fake.bulkReplies.push((actions) => actions.map(() => conflict409));
  fake.mgetReplies.push((docs) => [
    { ...docs[0], found: true, _source: { ci_audit: { chain: { hash: same } } } },
    { ...docs[1], found: true, _source: { ci_audit: { chain: { hash: 'ee'.repeat(32) } } } },
    // An unchained record (or any document) that took the chained record's `_id`: no chain hash.
    { ...docs[2], found: true, _source: {} },
    { ...docs[3], found: false },
  ]);
  const result = await writer.write([chainedRecord(1, same!), chainedRecord(2, other!), chainedRecord(3, none!), chainedRecord(4, gone!)]);
  // Acknowledged (Elasticsearch holds the _id, retrying cannot help) but never silently: each is reported.
  assert.deepEqual(result, { created: 0, duplicates: 4, rejected: [], deadLettered: [] });
  assert.deepEqual(fake.mgetDocs, [[1, 2, 3, 4].map((n) => ({ _index: '.ds-logs-ci_audit.auth-default-000001', _id: `a:seq:${n}` }))]);
  assert.deepEqual(conflicts, [
    { agentId: 'a', seq: 2, docId: 'a:seq:2', receivedHash: other, storedHash: 'ee'.repeat(32), receivedRecord: '{"seq":2}' },
    { agentId: 'a', seq: 3, docId: 'a:seq:3', receivedHash: none, stored: 'not_chained', receivedRecord: '{"seq":3}' },
    { agentId: 'a', seq: 4, docId: 'a:seq:4', receivedHash: gone, stored: 'not_found', receivedRecord: '{"seq":4}' },
  ]);
});

void test('a chained record the writer may not read back is skipped with a warning; one it cannot read for another reason fails the write', async (t) => {
  const fake = await fakeElasticsearch(t);
  const conflicts: ChainConflict[] = [];
  const writer = writerFor(fake, t, {
    onChainConflicts: (found) => {
      conflicts.push(...found);
      return Promise.resolve();
    },
  });
  writer.start();
  await writer.whenReady();
  fake.bulkReplies.push((actions) => actions.map(() => conflict409));
  fake.mgetReplies.push((docs) => [{ ...docs[0], error: { type: 'security_exception', reason: 'action [indices:data/read/mget[shard]] is unauthorized' } }]);
  assert.deepEqual(await writer.write([chainedRecord(1, 'aa'.repeat(32))]), { created: 0, duplicates: 1, rejected: [], deadLettered: [] });
  assert.deepEqual(conflicts, []);

  fake.bulkReplies.push((actions) => actions.map(() => conflict409));
  fake.mgetReplies.push((docs) => [{ ...docs[0], error: { type: 'no_shard_available_action_exception', reason: 'No shard available' } }]);
  await assert.rejects(writer.write([chainedRecord(2, 'bb'.repeat(32))]), (err) => hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE') && /a:seq:2.*no_shard_available_action_exception/.test((err as Error).message));
  assert.deepEqual(conflicts, []);
});
