// Latency benchmark: from a line appended to a followed file to that line being searchable in
// Elasticsearch, through `ci-audit agent run` and `ci-audit aggregator run` with their default
// settings, at a steady 5,000 lines/s. Target: p99 <= 2 s.
//
// Lines are appended every 10 ms, as many as keep the rate; each one's append time is kept. A poller
// counts the data stream's searchable documents every 50 ms without forcing a refresh (so the
// index's own refresh, 1 s by default, is part of the latency, as it is for a user searching). Line
// k counts as searchable at the first poll that saw more than k documents: the agent sends in
// order, one batch at a time, so documents become visible in the order the lines were written
// (within a batch's bulk requests). Resolution: the polling period.
// Usage: node bench/latency.ts [seconds] [lines/s] (default 30 s, 5,000). ES_URL: that cluster, else one is started.
import { appendFile } from 'node:fs/promises';
import { authLine, cluster, startPipeline, until } from './lib/pipeline.ts';

const seconds = Number(process.argv[2] ?? 30);
const rate = Number(process.argv[3] ?? 5000);
const total = seconds * rate;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const c = await cluster();
try {
  const p = await startPipeline(c, 'latency');
  try {
    const appendedAt = new Float64Array(total);
    const searchableAt = new Float64Array(total);
    let written = 0;
    let seen = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const count = await p.count(false);
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
    if ((await p.count(true)) !== total) throw new Error(`accounting: ${await p.count(true)} documents for ${total} lines`);

    const latencies = Array.from({ length: total }, (_, i) => searchableAt[i]! - appendedAt[i]!).sort((a, b) => a - b);
    console.log(`${c.origin}; ${total.toLocaleString('en')} lines at ${Math.round(achieved).toLocaleString('en')} lines/s for ${seconds} s`);
    console.log(
      `append -> searchable: p50 ${Math.round(percentile(latencies, 50))} ms, p90 ${Math.round(percentile(latencies, 90))} ms, ` +
        `p99 ${Math.round(percentile(latencies, 99))} ms, max ${Math.round(latencies.at(-1)!)} ms (target p99 <= 2000 ms; resolution 50 ms)`,
    );
  } finally {
    await p.close();
  }
} finally {
  await c.close();
}
