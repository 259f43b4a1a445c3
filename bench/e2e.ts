// End-to-end benchmark into the real Elasticsearch: events/s of ci-audit (a file followed by
// `ci-audit agent run`, sent to `ci-audit aggregator run`, indexed) against a plain bulk loader
// writing the same documents into the same cluster, and the ratio (target >= 0.9).
//
// ci-audit: the agent and aggregator run with their default settings (disk buffer with fsync
// always, batches of 512, 4 in flight, bulk concurrency 2); the clock starts when the lines are
// appended to the followed file and stops when Elasticsearch has accepted all of them (the
// aggregator's /metrics, polled every 250 ms) and, after a refresh, all are searchable. The plain loader: the documents
// ci-audit indexed, read back, then written by the Elasticsearch client's bulk helper (`create`,
// 5 MB bulks, concurrency 2) into a data stream of another namespace (same templates); the clock
// stops when the bulks are done and, after a refresh, all are searchable.
// Each round measures both on new data streams; the loaders run second, on a cluster the round's
// ci-audit run has warmed: the first round after Elasticsearch started cost it two to three times
// the CPU a document of later ones (its JIT warming up, presumably), so the first round favours the
// loader and later rounds are the fair comparison. The loader runs twice: with Elasticsearch's own
// ids, and with the ids ci-audit gave the documents (which make it look each id up first).
// By default all share the machine's CPUs with Elasticsearch, as on a single-host installation.
// --isolate pins Elasticsearch to CPU 0 and ci-audit and the loader to the others (the benchmark's
// own cluster only), as in production, where the cluster has machines of its own: the ratio then
// says whether ci-audit keeps up with what Elasticsearch can index. Both print Elasticsearch's CPU
// seconds under each, which say how close it ran to its CPUs' limit.
// Usage: node bench/e2e.ts [lines] [max_records] [--rounds N] [--isolate] [--agent JSON]
// [--aggregator JSON] [--timeline] (default 200,000 lines; `output.batch.max_records` of the agent,
// default its default, 512; 2 rounds; --agent and --aggregator: settings laid over their configs,
// e.g. --agent '{"output":{"max_in_flight":8}}' --aggregator '{"elasticsearch":{"bulk":{"concurrency":3}}}';
// --timeline: each second of ci-audit's run, the CPU share of the agent, the aggregator and
// Elasticsearch). ES_URL: that cluster, else one is started.
import { appendFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { dataStreamName } from '../core/wire.ts';
import { cleanupNamespace } from '../test/helpers/elasticsearch.ts';
import { pinToCpus, splitCpus } from './lib/cpu-affinity.ts';
import { authLine, cluster, cpuSeconds, overlay, peakRssMiB, startPipeline, until } from './lib/pipeline.ts';
import type { Settings } from './lib/pipeline.ts';

const { values: options, positionals: positional } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '2' },
    isolate: { type: 'boolean', default: false },
    agent: { type: 'string' },
    aggregator: { type: 'string' },
    timeline: { type: 'boolean', default: false },
  },
});
const rounds = Number(options.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a whole number of at least 1');
const isolate = options.isolate;
const total = Number(positional[0] ?? 200_000);
const maxRecords = positional[1] === undefined ? undefined : Number(positional[1]);
/** Settings laid over the agent's or aggregator's config, given as JSON. */
function settings(option: 'agent' | 'aggregator'): Settings {
  const text = options[option];
  if (text === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Settings;
  } catch {
    // reported below
  }
  throw new Error(`--${option} takes a JSON object of config settings, e.g. '{"output":{"max_in_flight":8}}'; got ${text}`);
}
const agentSettings = maxRecords === undefined ? settings('agent') : overlay(settings('agent'), { output: { batch: { max_records: maxRecords } } });
const aggregatorSettings = settings('aggregator');
const batchRecords = Number(((agentSettings.output as Settings | undefined)?.batch as Settings | undefined)?.max_records ?? 512);

const cpus = isolate ? splitCpus() : undefined;
// This process first, so that the agent and aggregator it starts inherit its CPUs (and the cluster
// it starts too, until it is moved to its own).
if (cpus !== undefined) pinToCpus(process.pid, cpus.pipeline);
const c = await cluster();
// The cluster's processes, listed once (a walk of /proc): they live as long as it does.
const esPids = c.pids();
if (cpus !== undefined) {
  if (esPids.length === 0) console.log('ES_URL: the cluster is not this machine\'s to pin; only ci-audit and the loader are');
  for (const pid of esPids) pinToCpus(pid, cpus.elasticsearch);
}

/** Elasticsearch's CPU seconds so far, when it is this benchmark's own cluster. */
function esCpuSeconds(): number | undefined {
  return esPids.length === 0 ? undefined : esPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

/**
 * Each second's CPU of the agent, the aggregator and Elasticsearch, as shares of one CPU: whether
 * a side waited for the other, and when (an average over the round cannot tell).
 */
function cpuTimeline([agentPid, aggregatorPid]: [number, number]): { stop(): string } {
  const read = (): number[] => [cpuSeconds(agentPid), cpuSeconds(aggregatorPid), esCpuSeconds() ?? 0];
  const rows: string[] = [];
  let last = read();
  const timer = setInterval(() => {
    const now = read();
    const share = (i: number): string => `${Math.round(100 * (now[i]! - last[i]!))}%`.padStart(5);
    rows.push(`  ${String(rows.length + 1).padStart(4)} s:${share(0)} ${share(1)} ${share(2)}`);
    last = now;
  }, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      return `\n  each second's CPU, as shares of one CPU: agent, aggregator, Elasticsearch\n${rows.join('\n')}`;
    },
  };
}

function esShare(before: number | undefined, seconds: number): string {
  const after = esCpuSeconds();
  if (before === undefined || after === undefined) return '';
  const used = after - before;
  return `; Elasticsearch ${used.toFixed(1)} CPU s (${Math.round((1e6 * used) / total)} µs a document, ${Math.round((100 * used) / seconds)}% of one CPU)`;
}

/**
 * The plain loader: `documents` written by the client's bulk helper into a new data stream, with
 * Elasticsearch's own ids or, `ids`, with the ids ci-audit gave them. ci-audit gives each record an id
 * so that a batch sent twice is stored once; Elasticsearch then looks each id up before it writes,
 * which it skips for ids of its own making. Returns the seconds until all are searchable.
 */
/** How the documents arrived: Elasticsearch's count of shard bulk requests on the data stream's indices. */
async function bulkShape(index: string): Promise<string> {
  const stats = await c.es.indices.stats({ index, metric: 'bulk' });
  const requests = stats._all.primaries?.bulk?.total_operations ?? 0;
  return requests === 0 ? '' : `\n  ${requests.toLocaleString('en')} bulk requests, ${Math.round(total / requests).toLocaleString('en')} documents each on average`;
}

async function load(documents: { id: string; source: Record<string, unknown> }[], ids: boolean): Promise<number> {
  const namespace = `bench_bulk_${randomBytes(3).toString('hex')}`;
  const index = dataStreamName('ci', namespace);
  try {
    const esAtBulk = esCpuSeconds();
    const bulkStart = performance.now();
    const idOf = new Map<Record<string, unknown>, string>();
    const datasource = documents.map((d) => {
      const source = { ...d.source, data_stream: { type: 'logs', dataset: 'ci_audit.ci', namespace } };
      idOf.set(source, d.id);
      return source;
    });
    const result = await c.es.helpers.bulk({
      datasource,
      onDocument: (d) => ({ create: ids ? { _index: index, _id: idOf.get(d)! } : { _index: index } }),
      flushBytes: 5 * 1024 * 1024,
      concurrency: 2,
    });
    if (result.successful !== total) throw new Error(`plain loader: ${result.successful} of ${total} documents indexed (${result.failed} failed)`);
    await until(async () => (await c.es.indices.refresh({ index }), (await c.es.count({ index })).count >= total), 250, 600_000, `${total} documents from the plain loader`);
    const seconds = (performance.now() - bulkStart) / 1000;
    console.log(`plain bulk loader, ${ids ? "ci-audit's ids" : 'own ids      '} : ${Math.round(total / seconds).toLocaleString('en')} events/s (${seconds.toFixed(1)} s)${esShare(esAtBulk, seconds)}${await bulkShape(index)}`);
    return seconds;
  } finally {
    await cleanupNamespace(c.es, namespace).catch(() => {});
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Ratios {
  /** ci-audit's rate over the loader's, with the loader's documents under Elasticsearch's ids. */
  auto: number;
  /** The same, under the ids ci-audit gave them. */
  ids: number;
}

async function round(lines: string[]): Promise<Ratios> {
  const p = await startPipeline(c, 'e2e', agentSettings, aggregatorSettings);
  try {
    const cpuAtStart = { agent: cpuSeconds(p.agent.child.pid!), aggregator: cpuSeconds(p.aggregator.child.pid!) };
    const gcAtStart = await p.aggregatorGcSeconds();
    const esAtStart = esCpuSeconds();
    const start = performance.now();
    const timeline = options.timeline ? cpuTimeline([p.agent.child.pid!, p.aggregator.child.pid!]) : undefined;
    for (let i = 0; i < total; i += 10_000) await appendFile(p.log, lines.slice(i, i + 10_000).join('\n') + '\n');
    // Both clocks stop the same way: once Elasticsearch has accepted every document, one refresh
    // and a count. (Counting after a forced refresh every 250 ms while the bulks arrive made
    // Elasticsearch write a segment per poll, work the loader's clock did not include.)
    await until(async () => (await p.indexed()) >= total, 250, 600_000, `${total} records accepted by Elasticsearch through ci-audit`);
    await until(async () => (await p.count(true)) >= total, 250, 60_000, `${total} documents from ci-audit searchable`);
    const ciAuditSeconds = (performance.now() - start) / 1000;
    const timelineText = timeline?.stop() ?? '';
    const cpu = { agent: cpuSeconds(p.agent.child.pid!) - cpuAtStart.agent, aggregator: cpuSeconds(p.aggregator.child.pid!) - cpuAtStart.aggregator };
    const gc = Object.entries(await p.aggregatorGcSeconds()).map(([kind, s]) => `${kind} ${(s - (gcAtStart[kind] ?? 0)).toFixed(2)} s`);
    if ((await p.count(true)) !== total) throw new Error(`accounting: ${await p.count(true)} documents for ${total} lines`);
    const ciAuditLine =
      `ci-audit agent + aggregator : batches of ${batchRecords} records, ${Math.round(total / ciAuditSeconds).toLocaleString('en')} events/s (${ciAuditSeconds.toFixed(1)} s from append to searchable)\n` +
      `  CPU: agent ${cpu.agent.toFixed(1)} s, aggregator ${cpu.aggregator.toFixed(1)} s (${Math.round((1e6 * (cpu.agent + cpu.aggregator)) / total)} µs a line)${esShare(esAtStart, ciAuditSeconds)}\n` +
      `  peak RSS: agent ${peakRssMiB(p.agent.child.pid!)} MiB, aggregator ${peakRssMiB(p.aggregator.child.pid!)} MiB; the aggregator's GC: ${gc.join(', ')}` +
      (await bulkShape(dataStreamName('ci', p.namespace))) +
      timelineText;

    // The same documents, as ci-audit wrote them, for the plain loader.
    const documents: { id: string; source: Record<string, unknown> }[] = [];
    for await (const result of c.es.helpers.scrollSearch<Record<string, unknown>>({ index: dataStreamName('ci', p.namespace), size: 10_000, query: { match_all: {} } })) {
      for (const hit of result.body.hits.hits) documents.push({ id: hit._id!, source: hit._source! });
    }
    if (documents.length !== total) throw new Error(`read back ${documents.length} of ${total} documents`);
    console.log(ciAuditLine);
    const ratios: Ratios = { auto: 0, ids: 0 };
    for (const ids of [false, true]) {
      const seconds = await load(documents, ids);
      ratios[ids ? 'ids' : 'auto'] = seconds / ciAuditSeconds;
    }
    return ratios;
  } finally {
    await p.close();
  }
}

try {
  const lines = Array.from({ length: total }, (_, i) => authLine(i));
  console.log(`${c.origin}; ${total.toLocaleString('en')} lines of ~${lines[0]!.length} bytes; ${cpus === undefined ? 'all share the CPUs' : `Elasticsearch on CPU ${cpus.elasticsearch}, ci-audit and the loader on CPU ${cpus.pipeline}`}`);
  const all: Ratios[] = [];
  for (let r = 1; r <= rounds; r++) {
    if (rounds > 1) console.log(`round ${r} of ${rounds}`);
    const ratios = await round(lines);
    all.push(ratios);
    console.log(`ratio ${ratios.auto.toFixed(2)} against the loader with its own ids, ${ratios.ids.toFixed(2)} with ci-audit's (target >= 0.9)`);
  }
  if (rounds > 1) console.log(`ratios by round: ${all.map((r) => `${r.auto.toFixed(2)}/${r.ids.toFixed(2)}`).join(', ')} (own ids/ci-audit's)`);
  // The loader's rate moves by up to half between runs of one cluster; a median of the warm rounds
  // says more than any one of them.
  if (rounds > 2) {
    const warm = all.slice(1);
    console.log(`median of rounds 2-${rounds}: ${median(warm.map((r) => r.auto)).toFixed(2)}/${median(warm.map((r) => r.ids)).toFixed(2)} (own ids/ci-audit's)`);
  }
} finally {
  await c.close();
}
