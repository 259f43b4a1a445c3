// Tail benchmark: lines/s and CPU seconds per million lines from a file in the page cache to an
// OpenTelemetry log record, through the real file source, the real pipeline (logs SDK + audit
// batch processor) and an exporter that acknowledges at once; plus peak RSS. 200-byte lines.
// Usage: node bench/tail.ts [lines]   (default 1,000,000). Targets: >= 300,000 lines/s, <= 80 MB RSS.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import pino from 'pino';
import { Pipeline } from '../agent/pipeline/pipeline.ts';
import { agentResource } from '../agent/resource.ts';
import { FileSource } from '../agent/sources/file/file-source.ts';
import { agentConfigSchema, type FileSourceConfig } from '../config/schema.ts';

const total = Number(process.argv[2] ?? 1_000_000);
const dir = await mkdtemp(join(tmpdir(), 'ci-audit-bench-'));
try {
  const file = join(dir, 'bench.log');
  const handle = await open(file, 'w');
  const line = 'x'.repeat(199) + '\n';
  const block = line.repeat(5000);
  for (let i = 0; i < total; i += 5000) await handle.write(block);
  await handle.close();

  let exported = 0;
  const exporter: LogRecordExporter = {
    export(records, done) {
      exported += records.length;
      done({ code: ExportResultCode.SUCCESS });
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const logger = pino({ level: 'warn' });
  const pipeline = new Pipeline({ resource: agentResource({ agentId: 'bench' }), exporter, logger, maxBatchRecords: 512, maxDelayMs: 1000 });
  const config = agentConfigSchema.parse({ sources: [{ type: 'file', id: 'bench', include: [file], dataset: 'ci' }], output: { url: 'http://127.0.0.1:1' } }).sources[0] as FileSourceConfig;
  const source = new FileSource({ config, agentId: 'bench', stateDir: join(dir, 'state'), logger, pollIntervalMs: 100 });

  // RSS once every module is loaded and before the first line is read: Node 24 with the OpenTelemetry
  // SDK, chokidar, zod and pino already takes most of the budget; peak minus this is what tailing adds.
  const baseRss = process.memoryUsage.rss();
  let peakRss = baseRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await source.start(pipeline.sink);
  while (exported < total) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  await source.stop();
  await pipeline.shutdown();
  await source.close();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify({
      bench: 'tail',
      lines: total,
      line_bytes: 200,
      seconds: +seconds.toFixed(3),
      lines_per_second: Math.round(total / seconds),
      cpu_seconds_per_million_lines: +((cpuSeconds * 1e6) / total).toFixed(3),
      peak_rss_mb: +(peakRss / 1024 / 1024).toFixed(1),
      rss_before_reading_mb: +(baseRss / 1024 / 1024).toFixed(1),
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
