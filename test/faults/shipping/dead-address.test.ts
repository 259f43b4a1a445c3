// The agent started against an address where nothing listens yet (an aggregator installed later, a
// wrong port fixed by starting it there), with `buffer.type: memory`, while a job writes 50 MB of
// lines. Backpressure must bound the agent's memory (sources stop reading while the queue is full;
// nothing is read ahead into memory, nothing dropped), and once an aggregator listens at that
// address every line must be in Elasticsearch exactly once. Real processes, the real Elasticsearch.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanupNamespace, esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { appendSlowly, assertEveryLineOnce, freePort, indexedLines, numberedLines, startAgent, startAggregator, untilIndexed, workspace, writeAgentConfig, writeAggregatorConfig } from './end-to-end.ts';

/** Resident and peak resident memory of a process, in bytes (/proc/<pid>/status). */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const MiB = 1024 * 1024;
/**
 * Growth of the agent's peak RSS allowed while 50 MB of lines wait. With backpressure the queue
 * holds 4 × `output.batch.max_records` records (4 MB of these lines), at most 8 MiB of bodies; the
 * growth measured was 27-38 MiB (V8's heap slack, the reader's buffers). With the sink's wait for
 * room removed, the whole file is read into records and the peak grew by 165 MiB.
 */
const maxGrowthBytes = 80 * MiB;

void test('agent pointed at a dead address while 50 MB of lines are written: memory stays bounded, and every line arrives once an aggregator listens there', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('deadaddr');
  const dir = await workspace(t, 'deadaddr', async () => {
    await cleanupNamespace(es, namespace).catch(() => {});
    await es.close();
  });
  const port = await freePort();
  const log = join(dir, 'job.log');
  writeFileSync(log, '');
  const agent = await startAgent(t, await writeAgentConfig({ dir, url: `http://127.0.0.1:${port}`, log, buffer: 'memory' }));
  const pid = agent.child.pid!;
  const atStart = memory(pid).peak;

  const written = numberedLines('deadaddr', 0, 50_000, 1_000);
  await appendSlowly(log, written, 5_000, 100);
  await agent.waitForLog((l) => l.code === 'CIA_ERR_SHIP_UNAVAILABLE');
  // A while with the whole file there to be read and nowhere to send it.
  let peak = atStart;
  for (let i = 0; i < 50; i++) {
    peak = Math.max(peak, memory(pid).peak);
    await new Promise((r) => setTimeout(r, 100));
  }
  t.diagnostic(`agent peak RSS: ${Math.round(atStart / MiB)} MiB at start, ${Math.round(peak / MiB)} MiB with 50 MB of lines waiting`);
  assert.ok(peak - atStart < maxGrowthBytes, `the agent's peak RSS grew by ${Math.round((peak - atStart) / MiB)} MiB (at most ${maxGrowthBytes / MiB} MiB)`);

  await startAggregator(t, await writeAggregatorConfig({ dir, port, namespace }), esUrl);
  await untilIndexed(es, namespace, written.length, 180_000);
  assertEveryLineOnce(await indexedLines(es, namespace), written, { noDuplicates: true });
  assert.ok(agent.running, 'the agent still runs');
});
