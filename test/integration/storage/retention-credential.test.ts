// The scheduled retention runs with its own, narrower credential (`retention.elasticsearch`): an
// aggregator whose writer may only append (ci_audit_writer) still deletes expired backing indices,
// through the ci_audit_retention user of the test cluster (test/fixtures/elasticsearch-security.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../config/schema.ts';
import { dataStreamName } from '../../../core/wire.ts';
import { createClient } from '../../../aggregator/index/client.ts';
import { ensureTemplates } from '../../../aggregator/index/setup.ts';
import { backingStates } from '../../../aggregator/retention/enforce.ts';
import { retentionConnection } from '../../../aggregator/retention/schedule.ts';
import { startAggregator } from '../../../aggregator/run.ts';
import { esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

interface Fixture {
  users: Array<{ username: string; password: string }>;
}
const fixture = JSON.parse(await readFile(new URL('../../fixtures/elasticsearch-security.json', import.meta.url), 'utf8')) as Fixture;
const passwordOf = (username: string): string => fixture.users.find((u) => u.username === username)!.password;

function bare(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

void test('retentionConnection: the aggregator URL without its user info, with the retention credentials; none configured: shared client', () => {
  const base = { elasticsearch: { url: 'https://writer:secret@es.example:9200', username: 'ci_audit_writer', password: 'w' } };
  assert.equal(retentionConnection(aggregatorConfigSchema.parse(base)), undefined);
  const withKey = retentionConnection(aggregatorConfigSchema.parse({ ...base, retention: { elasticsearch: { api_key: 'aWQ6a2V5' } } }));
  assert.deepEqual(withKey, { url: 'https://es.example:9200/', request_timeout_ms: 30_000, api_key: 'aWQ6a2V5' });
  const withUser = retentionConnection(aggregatorConfigSchema.parse({ ...base, retention: { elasticsearch: { username: 'ci_audit_retention', password: 'r' } } }));
  assert.equal(withUser?.username, 'ci_audit_retention');
  assert.equal(withUser?.password, 'r');
  assert.equal(withUser?.api_key, undefined);
});

void test('a writer-only aggregator enforces retention through the separate retention credential', async (t) => {
  const url = requireEsUrl();
  const admin = esClient(url);
  await ensureTemplates(admin, url);
  const namespace = uniqueNamespace('rcred');
  const stream = dataStreamName('ci', namespace);
  // One backing index whose newest document is 3 hours old, and a young write index.
  await admin.create({ index: stream, id: 'old', document: { '@timestamp': new Date(Date.now() - 3 * 3_600_000).toISOString(), message: 'old' }, refresh: 'true' });
  await admin.indices.rollover({ alias: stream });
  await admin.create({ index: stream, id: 'new', document: { '@timestamp': new Date().toISOString(), message: 'new' }, refresh: 'true' });
  const before = await backingStates(admin, url, stream);
  assert.equal(before.length, 2);

  // The writer alone may not delete an index: the deletion below can only come from the retention user.
  const { client: asWriter } = createClient({ url: bare(url), username: 'ci_audit_writer', password: passwordOf('ci_audit_writer'), request_timeout_ms: 30_000 });
  const refused = await asWriter.indices.delete({ index: before[0]!.index }).then(() => 200, (err: { meta?: { statusCode?: number } }) => err.meta?.statusCode);
  assert.equal(refused, 403);
  await asWriter.close();

  const config = aggregatorConfigSchema.parse({
    listen: { port: 0 },
    elasticsearch: { url: bare(url), namespace, username: 'ci_audit_writer', password: passwordOf('ci_audit_writer'), setup: 'skip' },
    retention: {
      mechanism: 'own',
      interval: '1s',
      datasets: { ci: { max_age: '1h' } },
      elasticsearch: { username: 'ci_audit_retention', password: passwordOf('ci_audit_retention') },
    },
  });
  const aggregator = await startAggregator(config, pino({ level: 'silent' }));
  t.after(async () => {
    await aggregator.close();
    await admin.close();
  });

  // Counted from _resolve/index alone: backingStates could race with the deletion it waits for.
  const backingCount = async (): Promise<number> => ([] as string[]).concat((await admin.indices.resolveIndex({ name: stream })).data_streams[0]?.backing_indices ?? []).length;
  await eventually(async () => (await backingCount()) === 1, 'the expired backing index to be deleted');
  const after = await backingStates(admin, url, stream);
  assert.equal(after[0]!.index, before[1]!.index, 'the write index is kept');
  await admin.indices.refresh({ index: dataStreamName('integrity', namespace) });
  const events = await admin.search<{ ci_audit: { retention: { index: string; docs: number } } }>({ index: dataStreamName('integrity', namespace) });
  assert.deepEqual(events.hits.hits.map((h) => [h._source!.ci_audit.retention.index, h._source!.ci_audit.retention.docs]), [[before[0]!.index, 1]]);
});
