// The scheduled retention run on a cluster that cannot say, for now, whether it enforces retention
// itself: the run is skipped with a warning, never turned into ci-audit's own rollovers and deletions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../../config/schema.ts';
import { startRetentionSchedule } from '../../../../aggregator/retention/schedule.ts';
import { fakeElasticsearch } from './fake-es.ts';

void test('a 503 while detecting lifecycle/ILM skips the run with a warning; nothing is listed, rolled over or deleted', async (t) => {
  const { client, url, seen } = await fakeElasticsearch(t, [
    { method: 'GET', path: /^\/(_data_stream\/_lifecycle\/stats|_ilm\/status)$/, answer: () => ({ status: 503, body: { error: { type: 'master_not_discovered_exception', reason: null }, status: 503 } }) },
  ]);
  const lines: Array<{ level: number; msg: string; code?: string }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    }),
  );
  const config = aggregatorConfigSchema.parse({ elasticsearch: { url, namespace: 'default' }, retention: { interval: '1s' } });
  const schedule = startRetentionSchedule({ config, client, url, ready: () => true, logger });
  t.after(() => schedule.stop());
  const deadline = Date.now() + 10_000;
  while (!lines.some((l) => l.code === 'CIA_ERR_RETENTION_UNDETERMINED') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  await schedule.stop();
  const warning = lines.find((l) => l.code === 'CIA_ERR_RETENTION_UNDETERMINED');
  assert.ok(warning, `no warning logged: ${JSON.stringify(lines)}`);
  assert.equal(warning.level, 40, 'logged as a warning');
  assert.match(warning.msg, /retention run skipped: cannot tell/);
  const others = seen.filter((r) => !/^\/(_data_stream\/_lifecycle\/stats|_ilm\/status)$/.test(r.path));
  assert.deepEqual(others.map((r) => `${r.method} ${r.path}`), [], 'the run went on to enforce');
});
