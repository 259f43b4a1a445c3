// Least privilege, for real: the roles of deploy/elasticsearch/ as file-realm users of the test
// cluster (scripts/test.sh passes test/fixtures/elasticsearch-security.json through
// CI_AUDIT_ES_SECURITY_FILE; this distribution cannot create API keys, so API keys with the same
// role descriptors are documented in docs/storage.md and not tested here).
//   ci_audit_writer: appends (create) and reads chain positions back: overwrite, update, delete refused;
//   ci_audit_retention: runs the own enforcement, but cannot write or remove documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { dataStreamName } from '../../../core/wire.ts';
import { createClient } from '../../../aggregator/index/client.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import { ensureTemplates } from '../../../aggregator/index/setup.ts';
import { backingStates, enforceRetention } from '../../../aggregator/retention/enforce.ts';
import type { ChainConflict } from '../../../aggregator/verify/stage.ts';
import { ElasticsearchChainStore } from '../../../aggregator/verify/chain-store.ts';
import { esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

interface Fixture {
  roles: Record<string, unknown>;
  users: Array<{ username: string; password: string; roles: string[] }>;
}

const fixture = JSON.parse(await readFile(new URL('../../fixtures/elasticsearch-security.json', import.meta.url), 'utf8')) as Fixture;

function userConfig(url: string, username: string) {
  const user = fixture.users.find((u) => u.username === username)!;
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  return { url: bare.toString(), username, password: user.password, request_timeout_ms: 30_000 };
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (err) {
    return (err as { meta?: { statusCode?: number } }).meta?.statusCode ?? -1;
  }
}

async function seqOf(admin: ReturnType<typeof esClient>, index: string, id: string): Promise<{ if_seq_no: number; if_primary_term: number }> {
  await admin.indices.refresh({ index });
  const hit = (await admin.search({ index, query: { ids: { values: [id] } }, seq_no_primary_term: true })).hits.hits[0]!;
  return { if_seq_no: hit._seq_no!, if_primary_term: hit._primary_term! };
}

void test('the deploy/ roles are the ones the test cluster runs with', async () => {
  for (const name of ['writer', 'retention', 'admin']) {
    const role = JSON.parse(await readFile(new URL(`../../../deploy/elasticsearch/role-ci-audit-${name}.json`, import.meta.url), 'utf8')) as unknown;
    assert.deepEqual(fixture.roles[`ci_audit_${name}`], role, `test/fixtures/elasticsearch-security.json is out of step with role-ci-audit-${name}.json`);
  }
  const es = esClient(requireEsUrl());
  try {
    const { client } = createClient(userConfig(requireEsUrl(), 'ci_audit_writer'));
    const who = await client.security.authenticate().catch((err: unknown) => {
      throw new Error(`the cluster has no file-realm user ci_audit_writer: start it with CI_AUDIT_ES_SECURITY_FILE=test/fixtures/elasticsearch-security.json (scripts/test.sh does) (${String(err)})`);
    });
    assert.deepEqual(who.roles, ['ci_audit_writer']);
    await client.close();
  } finally {
    await es.close();
  }
});

void test('the aggregator key appends and reads; overwriting, updating and deleting are refused', async (t) => {
  const url = requireEsUrl();
  const admin = esClient(url);
  await ensureTemplates(admin, url); // `ci-audit setup`, run by an operator
  const namespace = uniqueNamespace('lp');
  const stream = dataStreamName('auth', namespace);
  const writer = new ElasticsearchWriter({ elasticsearch: { ...userConfig(url, 'ci_audit_writer'), namespace }, logger: pino({ level: 'silent' }), installTemplates: false });
  const { client: asWriter } = createClient(userConfig(url, 'ci_audit_writer'));
  t.after(async () => {
    await writer.close();
    await asWriter.close();
    await admin.close();
  });
  writer.start();
  await writer.whenReady();
  const record = { dataStream: stream, id: 'lp:1', document: { '@timestamp': new Date().toISOString(), message: 'Accepted publickey for deploy' }, issues: [] };
  assert.deepEqual(await writer.write([record]), { created: 1, duplicates: 0, rejected: [], deadLettered: [] });
  assert.deepEqual(await writer.write([record]), { created: 0, duplicates: 1, rejected: [], deadLettered: [] });
  // A refused record still reaches the dead-letter stream with this key.
  const bad = { ...record, id: 'lp:2', document: { '@timestamp': 'not a date' } };
  assert.equal((await writer.write([bad])).deadLettered.length, 1);

  const [backing] = (await backingStates(admin, url, stream)).map((s) => s.index);
  const doc = { '@timestamp': new Date().toISOString(), message: 'rewritten' };
  // An overwrite the way a superuser can do it on a backing index (tests of `verify` use this): with seq_no and term.
  const seq = await seqOf(admin, stream, 'lp:1');
  assert.equal(await statusOf(asWriter.index({ index: backing!, id: 'lp:1', document: doc, ...seq })), 403, 'overwrite');
  assert.equal(await statusOf(asWriter.update({ index: backing!, id: 'lp:1', doc })), 403, 'update');
  assert.equal(await statusOf(asWriter.delete({ index: backing!, id: 'lp:1' })), 403, 'delete');
  // Read is granted: the verify stage reads chain positions back (docs/storage.md, "Least privilege").
  assert.equal(await statusOf(asWriter.search({ index: stream })), 200, 'read');
  assert.equal(await statusOf(asWriter.indices.delete({ index: backing! })), 403, 'delete index');
  assert.equal(await statusOf(asWriter.indices.rollover({ alias: stream })), 403, 'rollover');
  assert.equal(await statusOf(asWriter.indices.putIndexTemplate({ name: 'ci-audit-logs', index_patterns: ['x-*'] })), 403, 'templates');
  await admin.indices.refresh({ index: stream });
  const kept = await admin.search<{ message: string }>({ index: stream });
  assert.deepEqual(kept.hits.hits.map((h) => h._source!.message), ['Accepted publickey for deploy']);
});

void test('the aggregator key appends a chained record and reads it back on a conflict, but cannot overwrite or delete it', async (t) => {
  const url = requireEsUrl();
  const admin = esClient(url);
  await ensureTemplates(admin, url);
  const namespace = uniqueNamespace('lpc');
  const stream = dataStreamName('auth', namespace);
  const conflicts: ChainConflict[] = [];
  const writer = new ElasticsearchWriter({
    elasticsearch: { ...userConfig(url, 'ci_audit_writer'), namespace },
    logger: pino({ level: 'silent' }),
    installTemplates: false,
    onChainConflicts: (found) => {
      conflicts.push(...found);
      return Promise.resolve();
    },
  });
  const { client: asWriter } = createClient(userConfig(url, 'ci_audit_writer'));
  t.after(async () => {
    await writer.close();
    await asWriter.close();
    await admin.close();
  });
  writer.start();
  await writer.whenReady();
  const chained = (hash: string, message: string) => ({
    dataStream: stream,
    id: 'lp-agent:seq:1',
    document: { '@timestamp': new Date().toISOString(), message, agent: { id: 'lp-agent' }, ci_audit: { chain: { seq: 1, hash, prev_hash: '0'.repeat(64), record: `{"seq":1,"m":"${message}"}` } } },
    issues: [],
  });
  const stored = 'aa'.repeat(32);
  assert.equal((await writer.write([chained(stored, 'Accepted publickey for deploy')])).created, 1);
  assert.equal((await writer.write([chained(stored, 'Accepted publickey for deploy')])).duplicates, 1);
  assert.deepEqual(conflicts, [], 'a re-send with the same hash is a quiet duplicate');
  assert.equal((await writer.write([chained('bb'.repeat(32), 'Accepted publickey for root')])).duplicates, 1);
  assert.deepEqual(conflicts, [
    { agentId: 'lp-agent', seq: 1, docId: 'lp-agent:seq:1', receivedHash: 'bb'.repeat(32), storedHash: stored, receivedRecord: '{"seq":1,"m":"Accepted publickey for root"}' },
  ]);
  // The chain head as a restarted aggregator reads it with this key.
  const store = new ElasticsearchChainStore({ client: asWriter, url, namespace });
  assert.deepEqual(await store.head('lp-agent'), { seq: 1, hash: stored, docId: 'lp-agent:seq:1' });
  // The seqs of a hole another instance indexed: one range query up to 2^53 - 1, paged by search_after
  // on the seq (a page of one hit here, so the second search carries search_after). The searches
  // follow the documents held, not the hole's width (it was one per 10,000 seqs: 9 * 10^11 here).
  let searches = 0;
  const counting = new Proxy(asWriter, {
    get(target, key, receiver): unknown {
      if (key !== 'search') return Reflect.get(target, key, receiver) as unknown;
      return (...args: Parameters<typeof target.search>) => {
        searches++;
        return target.search(...args);
      };
    },
  });
  const paged = new ElasticsearchChainStore({ client: counting, url, namespace, pageSize: 1 });
  assert.deepEqual(await paged.present('lp-agent', { first: 1, last: Number.MAX_SAFE_INTEGER }), [{ first: 1, last: 1 }]);
  assert.equal(searches, 2, 'a full page of one hit, then an empty one after it');
  assert.deepEqual(await paged.present('lp-agent', { first: 2, last: Number.MAX_SAFE_INTEGER }), []);
  assert.equal(searches, 3, 'one search for a hole of 2^53 - 2 seqs that holds nothing');

  const [backing] = (await backingStates(admin, url, stream)).map((s) => s.index);
  const forged = chained('bb'.repeat(32), 'Accepted publickey for root').document;
  assert.equal(await statusOf(asWriter.index({ index: backing!, id: 'lp-agent:seq:1', document: forged, ...(await seqOf(admin, stream, 'lp-agent:seq:1')) })), 403, 'overwrite (index op)');
  // Without seq_no and term, data streams refuse an overwrite to everyone (400), superusers included.
  assert.equal(await statusOf(asWriter.index({ index: backing!, id: 'lp-agent:seq:1', document: forged })), 400, 'overwrite (index op without version)');
  assert.equal(await statusOf(asWriter.index({ index: stream, id: 'lp-agent:seq:1', document: forged })), 400, 'overwrite through the data stream');
  assert.equal(await statusOf(asWriter.update({ index: backing!, id: 'lp-agent:seq:1', doc: { message: 'x' } })), 403, 'update');
  assert.equal(await statusOf(asWriter.delete({ index: backing!, id: 'lp-agent:seq:1' })), 403, 'delete');
  const kept = await admin.get<{ message: string; ci_audit: { chain: { hash: string } } }>({ index: backing!, id: 'lp-agent:seq:1' });
  assert.equal(kept._source!.ci_audit.chain.hash, stored);
  assert.equal(kept._source!.message, 'Accepted publickey for deploy');
});

void test('the retention key enforces retention but cannot write, overwrite or delete documents', async (t) => {
  const url = requireEsUrl();
  const admin = esClient(url);
  await ensureTemplates(admin, url);
  const { client: asRetention } = createClient(userConfig(url, 'ci_audit_retention'));
  t.after(async () => {
    await asRetention.close();
    await admin.close();
  });
  const namespace = uniqueNamespace('lpr');
  const stream = dataStreamName('ci', namespace);
  await admin.create({ index: stream, id: 'old', document: { '@timestamp': new Date(Date.now() - 3 * 3_600_000).toISOString(), message: 'old' }, refresh: 'true' });
  await admin.indices.rollover({ alias: stream });
  await admin.create({ index: stream, id: 'new', document: { '@timestamp': new Date().toISOString(), message: 'new' }, refresh: 'true' });
  const before = await backingStates(admin, url, stream);

  const report = await enforceRetention({
    client: asRetention,
    url,
    namespace,
    policies: new Map([['ci', { dataset: 'ci', maxAge: '1h', maxAgeMs: 3_600_000, compliance: false }]]),
    fallback: { dataset: '', maxAge: '400d', maxAgeMs: 400 * 86_400_000, compliance: false },
    rolloverMaxAgeMs: 86_400_000,
    logger: pino({ level: 'silent' }),
  });
  assert.deepEqual(report.deleted.map((d) => d.index), [before[0]!.index]);

  const writeIndex = before[1]!.index;
  const doc = { '@timestamp': new Date().toISOString(), message: 'forged' };
  assert.equal(await statusOf(asRetention.create({ index: stream, id: 'forged', document: doc })), 403, 'append');
  assert.equal(await statusOf(asRetention.index({ index: writeIndex, id: 'new', document: doc, ...(await seqOf(admin, stream, 'new')) })), 403, 'overwrite');
  assert.equal(await statusOf(asRetention.delete({ index: writeIndex, id: 'new' })), 403, 'delete a document');
  assert.equal(await statusOf(asRetention.indices.putIndexTemplate({ name: 'ci-audit-logs', index_patterns: ['x-*'] })), 403, 'templates');
  // Integrity events are the one thing it appends, and it cannot rewrite them.
  const integrity = await admin.search({ index: dataStreamName('integrity', namespace) });
  assert.equal(integrity.hits.hits.length, 1);
  const event = integrity.hits.hits[0]!;
  assert.equal(await statusOf(asRetention.index({ index: event._index, id: event._id!, document: doc, ...(await seqOf(admin, event._index, event._id!)) })), 403, 'overwrite an integrity event');
});
