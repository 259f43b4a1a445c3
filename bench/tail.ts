// Tail benchmark: lines/s and CPU seconds per million lines from a file in the page cache to an
// OpenTelemetry log record, through the real file source, the real pipeline (logs SDK + audit
// batch processor) and an exporter that acknowledges at once; plus peak RSS. 200-byte lines. The
// run ends when the file source's committed offset (what its checkpoint stores) reaches the end of
// the file, so every line was exported and acknowledged.
// Usage: node bench/tail.ts [lines] [--chain]   (default 1,000,000 lines; --chain chains every
// record and signs checkpoints as the agent does by default). Targets: >= 300,000 lines/s per core
// (<= 3.33 CPU seconds per million lines), <= 80 MB RSS.
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { getCompileCacheDir } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileSourceConfig } from '../config/schema.ts';
import { agentEnvironment, agentNodeOptions, relaunch } from '../bin/relaunch.js';

// Run as bin/ci-audit.js runs the agent: relaunched with its Node.js options, environment and the
// compile cache, every other module imported after that (a static import would be compiled before
// the cache is on).
relaunch(agentNodeOptions, agentEnvironment);
const { ackingExporter } = await import('./lib/acking-exporter.ts');
const { default: pino } = await import('pino');
const { Pipeline } = await import('../agent/pipeline/pipeline.ts');
const { agentResource } = await import('../agent/resource.ts');
const { FileSource } = await import('../agent/sources/file/file-source.ts');
const { agentConfigSchema } = await import('../config/schema.ts');
const { openChain } = await import('../agent/chain/chain-processor.ts');
const { Checkpointer } = await import('../agent/chain/checkpointer.ts');
const { ensureSigningKey } = await import('../agent/chain/signing-key.ts');

const total = Number(process.argv.find((a, i) => i >= 2 && /^\d+$/.test(a)) ?? 1_000_000);
const chained = process.argv.includes('--chain');
const mb = (bytes: number): number => +(bytes / 1024 / 1024).toFixed(1);
const dir = await mkdtemp(join(tmpdir(), 'ci-audit-bench-'));
try {
  const file = join(dir, 'bench.log');
  const handle = await open(file, 'w');
  const line = 'x'.repeat(199) + '\n';
  const block = line.repeat(5000);
  for (let i = 0; i < total; i += 5000) await handle.write(block);
  await handle.close();
  const size = (await stat(file)).size;

  const { exporter } = ackingExporter({ deferred: false });

  const logger = pino({ level: 'warn' });
  const parsed = agentConfigSchema.parse({ sources: [{ type: 'file', id: 'bench', include: [file], dataset: 'ci' }], output: { url: 'http://127.0.0.1:1' } });
  const config = parsed.sources[0] as FileSourceConfig;
  const integrity = parsed.integrity;
  let chain: Awaited<ReturnType<typeof openChain>> | undefined;
  let checkpointer: InstanceType<typeof Checkpointer> | undefined;
  const { key } = await ensureSigningKey(join(dir, 'signing-key.pem'));
  if (chained) {
    // As agent/run.ts opens it, with the default integrity settings.
    chain = await openChain({ stateDir: dir, agentId: 'bench', keyId: key.id, reserveBlock: integrity.reserve_block, everyRecords: integrity.checkpoint_every_records, logger });
  }
  const pipeline = new Pipeline({ resource: agentResource({ agentId: 'bench' }), exporter, logger, maxBatchRecords: 512, maxDelayMs: 1000, chain });
  if (chain !== undefined) {
    const signer = new Checkpointer({ agentId: 'bench', chain, key, emit: (record, ack) => pipeline.emitAgentRecord(record, ack), intervalMs: integrity.checkpoint_interval_ms, logger });
    pipeline.onCheckpointDue = () => signer.checkpoint();
    await signer.start();
    checkpointer = signer;
  }
  const source = new FileSource({ config, agentId: 'bench', stateDir: join(dir, 'state'), logger, pollIntervalMs: 100 });

  // RSS once every module is loaded and before the first line is read: Node.js with the
  // OpenTelemetry SDK, chokidar, valibot and pino already takes most of the budget; peak minus this is
  // what tailing adds. The heap figures are those of the moment the peak was seen.
  const baseRss = process.memoryUsage.rss();
  let peak = { rss: baseRss, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss <= peak.rss) return;
    const m = process.memoryUsage();
    peak = { rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
  };
  const sampler = setInterval(sample, 20);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await source.start(pipeline.sink);
  while ((source.files()[0]?.committed ?? 0) < size) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  sample();
  await source.stop();
  checkpointer?.stop();
  await pipeline.shutdown();
  await source.close();
  await chain?.close();
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify({
      bench: 'tail',
      lines: total,
      line_bytes: 200,
      chain: chained,
      seconds: +seconds.toFixed(3),
      lines_per_second: Math.round(total / seconds),
      cpu_seconds_per_million_lines: +((cpuSeconds * 1e6) / total).toFixed(3),
      lines_per_cpu_second: Math.round(total / cpuSeconds),
      peak_rss_mb: mb(peak.rss),
      rss_before_reading_mb: mb(baseRss),
      heap_used_mb_at_peak: mb(peak.heapUsed),
      heap_total_mb_at_peak: mb(peak.heapTotal),
      external_mb_at_peak: mb(peak.external),
      array_buffers_mb_at_peak: mb(peak.arrayBuffers),
      node_options: process.execArgv.join(' '),
      compile_cache: getCompileCacheDir() !== undefined,
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
