// Latency benchmark: from a line appended to a followed file to that line being searchable in
// Elasticsearch, through `ci-audit agent run` and `ci-audit aggregator run` with their default
// settings, at a steady 5,000 lines/s. Target: p99 <= 2 s.
//
// Lines are appended every 10 ms, as many as keep the rate; each one's append time is kept. A poller
// counts the data stream's searchable documents every 50 ms without forcing a refresh (so the
// index's own refresh, 1 s by default, is part of the latency, as it is for a user searching). Line
// k counts as searchable at the first poll that saw more than k documents: the agent sends in
// order, so documents become visible about in the order the lines were written (batches in flight
// together may complete out of order: a line can be credited with a later line's document, an
// error of at most one round trip). Resolution: the polling period.
// Before timing starts, one line is sent and waited for: it creates the data stream, which
// Elasticsearch takes 1-4 s to do for the first document of a dataset and namespace. That cost is
// paid once per data stream, not per line, so it is printed on its own line ("first line") rather
// than spread over the percentiles as a backlog that the rest of the run drains. CPU seconds of each
// process over the timed part and the load average go with the figures: on a machine shared with
// Elasticsearch the latency is mostly a matter of spare CPU.
// Usage: node bench/latency.ts [seconds] [lines/s] (default 30 s, 5,000). ES_URL: that cluster, else one is started.
import { appendFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import type { Client } from '@elastic/elasticsearch';
import { authLine, cluster, cpuSeconds, startPipeline, until } from './lib/pipeline.ts';

const seconds = Number(process.argv[2] ?? 30);
const rate = Number(process.argv[3] ?? 5000);
const total = seconds * rate;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** CPU seconds the Elasticsearch node has used so far (it may be another machine's: ES_URL). */
async function elasticsearchCpuSeconds(es: Client): Promise<number> {
  const stats = await es.nodes.stats({ node_id: '_local', metric: 'process', filter_path: ['nodes.*.process.cpu.total_in_millis'] });
  return (Object.values(stats.nodes ?? {})[0]?.process?.cpu?.total_in_millis ?? NaN) / 1000;
}

const c = await cluster();
try {
  const p = await startPipeline(c, 'latency');
  try {
    // The first line creates the data stream (see above).
    const coldStart = performance.now();
    await appendFile(p.log, authLine(-1, new Date()) + '\n');
    await until(async () => (await p.count(false)) >= 1, 50, 120_000, 'the first line to be searchable');
    const coldMs = performance.now() - coldStart;
    const warm = 1;

    const cpu = (): Promise<{ agent: number; aggregator: number; elasticsearch: number; bench: number }> =>
      elasticsearchCpuSeconds(c.es).then((elasticsearch) => {
        const own = process.cpuUsage();
        return {
          agent: cpuSeconds(p.agent.child.pid!),
          aggregator: cpuSeconds(p.aggregator.child.pid!),
          elasticsearch,
          bench: (own.user + own.system) / 1e6,
        };
      });
    const cpuAtStart = await cpu();
    const appendedAt = new Float64Array(total);
    const searchableAt = new Float64Array(total);
    let written = 0;
    let seen = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const count = (await p.count(false)) - warm;
        const now = performance.now();
        for (; seen < Math.min(count, written); seen++) searchableAt[seen] = now;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const start = performance.now();
    while (written < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      if (due > written) {
        const batch: string[] = [];
        for (let i = written; i < due; i++) batch.push(authLine(i, new Date()));
        await appendFile(p.log, batch.join('\n') + '\n');
        const now = performance.now();
        for (let i = written; i < due; i++) appendedAt[i] = now;
        written = due;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const achieved = total / ((performance.now() - start) / 1000);
    await until(() => Promise.resolve(seen >= total), 50, 300_000, `${total} searchable documents`);
    polling = false;
    await poller;
    const cpuAtEnd = await cpu();
    const load = loadavg()[0]!;
    if ((await p.count(true)) !== total + warm) throw new Error(`accounting: ${await p.count(true)} documents for ${total + warm} lines`);

    const latencies = Array.from({ length: total }, (_, i) => searchableAt[i]! - appendedAt[i]!).sort((a, b) => a - b);
    console.log(`${c.origin}; ${total.toLocaleString('en')} lines at ${Math.round(achieved).toLocaleString('en')} lines/s for ${seconds} s`);
    console.log(
      `append -> searchable: p50 ${Math.round(percentile(latencies, 50))} ms, p90 ${Math.round(percentile(latencies, 90))} ms, ` +
        `p99 ${Math.round(percentile(latencies, 99))} ms, max ${Math.round(latencies.at(-1)!)} ms (target p99 <= 2000 ms; resolution 50 ms)`,
    );
    console.log(`first line (creates the data stream): ${Math.round(coldMs)} ms`);
    const used = (k: keyof typeof cpuAtEnd): string => `${k} ${(cpuAtEnd[k] - cpuAtStart[k]).toFixed(1)}`;
    console.log(
      `CPU s over the timed part: ${used('agent')}, ${used('aggregator')}, ${used('elasticsearch')}, ${used('bench')}; ` +
        `load average (1 min) at the end ${load.toFixed(2)}`,
    );
  } finally {
    await p.close();
  }
} finally {
  await c.close();
}
