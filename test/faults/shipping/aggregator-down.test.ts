// The aggregator lost under a running agent, with real processes and the real Elasticsearch: SIGKILLed
// mid-stream and restarted on the same port, and down for the whole time a job writes 100,000
// lines. Every line must end up in Elasticsearch exactly once (one document per record id).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { scanEntries } from '../../../agent/buffer/segment-format.ts';
import { cleanupNamespace, esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import {
  appendSlowly,
  assertEveryLineOnce,
  freePort,
  indexedLines,
  numberedLines,
  sigkill,
  startAgent,
  startAggregator,
  untilIndexed,
  writeAgentConfig,
  workspace,
  writeAggregatorConfig,
} from './end-to-end.ts';

async function setUp(t: TestContext, prefix: string): Promise<{ dir: string; es: ReturnType<typeof esClient>; esUrl: string; namespace: string; port: number }> {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace(prefix);
  const dir = await workspace(t, prefix, async () => {
    await cleanupNamespace(es, namespace).catch(() => {});
    await es.close();
  });
  return { dir, es, esUrl, namespace, port: await freePort() };
}

/** Records the agent's disk buffer holds in its segment files (a read-only look). */
function bufferedRecords(stateDir: string): number {
  const dir = join(stateDir, 'buffer');
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.startsWith('segment-'));
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      n += scanEntries(readFileSync(join(dir, name)), { final: false }).payloads.length;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}

void test('aggregator SIGKILLed mid-stream and restarted on its port while the job keeps writing: every line in Elasticsearch exactly once', async (t) => {
  const { dir, es, esUrl, namespace, port } = await setUp(t, 'aggkill');
  const aggregatorConfig = await writeAggregatorConfig({ dir, port, namespace });
  let aggregator = await startAggregator(t, aggregatorConfig, esUrl);
  const log = join(dir, 'job.log');
  writeFileSync(log, '');
  await startAgent(t, await writeAgentConfig({ dir, url: `http://127.0.0.1:${port}`, log, buffer: 'disk' }));

  const written = numberedLines('aggkill', 0, 30_000);
  // About 10,000 lines a second, for three seconds.
  const writing = appendSlowly(log, written, 500, 50);
  await untilIndexed(es, namespace, 2_000, 60_000);
  // No shutdown hook runs: bulk requests in flight and unanswered agent requests are cut off.
  await sigkill(aggregator);
  await new Promise((r) => setTimeout(r, 1_000));
  aggregator = await startAggregator(t, aggregatorConfig, esUrl);
  await writing;

  await untilIndexed(es, namespace, written.length, 120_000);
  const indexed = await indexedLines(es, namespace);
  // No agent crashed: a batch re-sent because its answer was lost is a conflict on its _id, not a second document.
  assertEveryLineOnce(indexed, written, { noDuplicates: true });
  assert.ok(aggregator.running, 'the restarted aggregator still runs');
});

void test('aggregator down while 100,000 lines are written: the disk buffer holds them and every line reaches Elasticsearch exactly once when it returns', async (t) => {
  const { dir, es, esUrl, namespace, port } = await setUp(t, 'aggdown');
  const log = join(dir, 'job.log');
  writeFileSync(log, '');
  const agent = await startAgent(t, await writeAgentConfig({ dir, url: `http://127.0.0.1:${port}`, log, buffer: 'disk' }));

  const written = numberedLines('aggdown', 0, 100_000);
  const started = Date.now();
  await appendSlowly(log, written, 10_000, 100);
  // Taken from the file and made durable by the agent while nothing listens on the port.
  const deadline = Date.now() + 120_000;
  while (bufferedRecords(join(dir, 'state')) < written.length) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${written.length} records in the disk buffer (${bufferedRecords(join(dir, 'state'))} there)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(
    agent.lines.some((l) => l.code === 'CIA_ERR_SHIP_UNAVAILABLE'),
    'the agent reports that it cannot deliver',
  );

  const buffered = Date.now();
  await startAggregator(t, await writeAggregatorConfig({ dir, port, namespace }), esUrl);
  const returned = Date.now();
  await untilIndexed(es, namespace, 1, 60_000);
  const first = Date.now();
  await untilIndexed(es, namespace, written.length, 180_000);
  t.diagnostic(`buffered in ${buffered - started} ms; aggregator up ${returned - buffered} ms later; first document ${first - returned} ms later; all ${Date.now() - first} ms later`);
  assertEveryLineOnce(await indexedLines(es, namespace), written, { noDuplicates: true });
  assert.ok(agent.running, 'the agent still runs');
});
