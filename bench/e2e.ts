// End-to-end benchmark into the real Elasticsearch: events/s of ci-audit (a file followed by
// `ci-audit agent run`, sent to `ci-audit aggregator run`, indexed) against a plain bulk loader
// writing the same documents into the same cluster, and the ratio (target >= 0.9).
//
// ci-audit: the agent and aggregator run with their default settings (disk buffer with fsync
// always, batches of 512, bulk concurrency 2); the clock starts when the lines are appended to the
// followed file and stops when all of them are searchable (count after a refresh, polled every
// 250 ms). The plain loader: the documents ci-audit indexed, read back, then written by the
// Elasticsearch client's bulk helper (`create`, 5 MB bulks, concurrency 2) into a data stream of
// another namespace (same templates); the clock stops when all are searchable the same way. Both
// share the machine with Elasticsearch, as on a single-host installation.
// Usage: node bench/e2e.ts [lines] [max_records] (default 200,000 lines; `output.batch.max_records`
// of the agent, default its default, 512). ES_URL: that cluster, else one is started.
import { appendFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dataStreamName } from '../core/wire.ts';
import { cleanupNamespace } from '../test/helpers/elasticsearch.ts';
import { authLine, cluster, cpuSeconds, startPipeline, until } from './lib/pipeline.ts';

const total = Number(process.argv[2] ?? 200_000);
const maxRecords = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const c = await cluster();
try {
  const lines = Array.from({ length: total }, (_, i) => authLine(i));
  const p = await startPipeline(c, 'e2e', maxRecords === undefined ? {} : { output: { batch: { max_records: maxRecords } } });
  let ciAuditSeconds: number;
  try {
    const cpuAtStart = { agent: cpuSeconds(p.agent.child.pid!), aggregator: cpuSeconds(p.aggregator.child.pid!) };
    const start = performance.now();
    for (let i = 0; i < total; i += 10_000) await appendFile(p.log, lines.slice(i, i + 10_000).join('\n') + '\n');
    await until(async () => (await p.count(true)) >= total, 250, 600_000, `${total} documents from ci-audit`);
    ciAuditSeconds = (performance.now() - start) / 1000;
    const cpu = { agent: cpuSeconds(p.agent.child.pid!) - cpuAtStart.agent, aggregator: cpuSeconds(p.aggregator.child.pid!) - cpuAtStart.aggregator };
    if ((await p.count(true)) !== total) throw new Error(`accounting: ${await p.count(true)} documents for ${total} lines`);

    // The same documents, as ci-audit wrote them, for the plain loader.
    const documents: Record<string, unknown>[] = [];
    for await (const hit of c.es.helpers.scrollDocuments<Record<string, unknown>>({ index: dataStreamName('ci', p.namespace), size: 10_000, query: { match_all: {} } })) {
      documents.push(hit);
    }
    if (documents.length !== total) throw new Error(`read back ${documents.length} of ${total} documents`);

    const namespace = `bench_bulk_${randomBytes(3).toString('hex')}`;
    const index = dataStreamName('ci', namespace);
    try {
      const bulkStart = performance.now();
      const result = await c.es.helpers.bulk({
        datasource: documents.map((d) => ({ ...d, data_stream: { type: 'logs', dataset: 'ci_audit.ci', namespace } })),
        onDocument: () => ({ create: { _index: index } }),
        flushBytes: 5 * 1024 * 1024,
        concurrency: 2,
      });
      if (result.successful !== total) throw new Error(`plain loader: ${result.successful} of ${total} documents indexed (${result.failed} failed)`);
      await until(async () => (await c.es.indices.refresh({ index }), (await c.es.count({ index })).count >= total), 250, 600_000, `${total} documents from the plain loader`);
      const bulkSeconds = (performance.now() - bulkStart) / 1000;

      const ciAudit = total / ciAuditSeconds;
      const plain = total / bulkSeconds;
      console.log(`${c.origin}; ${total.toLocaleString('en')} lines of ~${lines[0]!.length} bytes`);
      console.log(`ci-audit agent + aggregator : batches of ${maxRecords ?? 512} records, ${Math.round(ciAudit).toLocaleString('en')} events/s (${ciAuditSeconds.toFixed(1)} s from append to searchable)`);
      console.log(`  CPU: agent ${cpu.agent.toFixed(1)} s, aggregator ${cpu.aggregator.toFixed(1)} s (${Math.round((1e6 * (cpu.agent + cpu.aggregator)) / total)} µs a line)`);
      console.log(`plain bulk loader           : ${Math.round(plain).toLocaleString('en')} events/s (${bulkSeconds.toFixed(1)} s)`);
      console.log(`ratio ${(ciAudit / plain).toFixed(2)} (target >= 0.9)`);
    } finally {
      await cleanupNamespace(c.es, namespace).catch(() => {});
    }
  } finally {
    await p.close();
  }
} finally {
  await c.close();
}
