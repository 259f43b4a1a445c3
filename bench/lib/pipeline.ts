// The real pipeline for the end-to-end benchmarks: an Elasticsearch (ES_URL, else one started with
// the harness of scripts/elasticsearch.ts), `ci-audit aggregator run` and `ci-audit agent run` as
// the processes users run, with their default settings except for quiet logs, following one file.
// In bench/lib/ so that `npm run bench` does not run it as a benchmark of its own.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@elastic/elasticsearch';
import { dataStreamName } from '../../core/wire.ts';
import { processGroup } from './cpu-affinity.ts';
import { startElasticsearch, type RunningElasticsearch } from '../../scripts/elasticsearch.ts';
import { CliProcess } from '../../scripts/lib/cli-process.ts';
import { cleanupNamespace, esClient } from '../../test/helpers/elasticsearch.ts';

export interface Cluster {
  url: string;
  es: Client;
  /** Whose cluster: the user's (ES_URL) or one this benchmark started. */
  origin: string;
  /** The processes of the cluster this benchmark started (none for ES_URL's). */
  pids(): number[];
  close(): Promise<void>;
}

/** ES_URL's cluster, or a fresh one from the harness (stopped by close()). */
export async function cluster(): Promise<Cluster> {
  const fromEnv = process.env.ES_URL;
  let started: RunningElasticsearch | undefined;
  const url = fromEnv !== undefined && fromEnv !== '' ? fromEnv : (started = await startElasticsearch({ log: () => {} })).url;
  const es = esClient(url);
  const info = await es.nodes.info({ node_id: '_local', metric: '_none', filter_path: ['nodes.*.version'] });
  const version = Object.values(info.nodes ?? {})[0]?.version ?? 'unknown';
  return {
    url,
    es,
    origin: `Elasticsearch ${version}, ${started === undefined ? 'ES_URL' : 'started by the benchmark (512 MB heap)'}`,
    pids: () => (started === undefined ? [] : processGroup(started.pid)),
    close: async () => {
      await es.close();
      await started?.stop();
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Pipeline {
  /** The file the agent follows (dataset `ci`). */
  log: string;
  namespace: string;
  agent: CliProcess;
  aggregator: CliProcess;
  /** Documents searchable in the namespace's `ci` data stream (refreshes first when `refresh`). */
  count(refresh: boolean): Promise<number>;
  /**
   * Records the aggregator has had accepted by Elasticsearch (created or already held), from its
   * /metrics: polling this costs Elasticsearch nothing, where each count(true) forces a refresh and
   * makes a segment, which under a stream of bulks is work of its own.
   */
  indexed(): Promise<number>;
  /** Seconds the aggregator has spent in garbage collection so far, by kind (minor, major, incremental, weakcb), from its /metrics. */
  aggregatorGcSeconds(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export type Settings = { [key: string]: unknown };

function isSettings(value: unknown): value is Settings {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `base` with `changes` laid over it, objects merged key by key (arrays and values replaced). */
export function overlay(base: Settings, changes: Settings): Settings {
  const out: Settings = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    const under = out[key];
    out[key] = isSettings(under) && isSettings(value) ? overlay(under, value) : value;
  }
  return out;
}

/**
 * Aggregator and agent, started and ready, the agent following an empty file. `agentConfig` and
 * `aggregatorConfig` are laid over the benchmark's configs (e.g. `{ output: { max_in_flight: 8 } }`).
 */
export async function startPipeline(c: Cluster, name: string, agentConfig: Settings = {}, aggregatorConfig: Settings = {}): Promise<Pipeline> {
  const dir = await mkdtemp(join(tmpdir(), `cia-bench-${name}-`));
  const namespace = `bench_${name}_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const aggregatorFile = join(dir, 'aggregator.yaml');
  await writeFile(
    aggregatorFile,
    JSON.stringify(overlay({ listen: { host: '127.0.0.1', port }, elasticsearch: { namespace }, retention: { enforce: false }, log: { level: 'info', format: 'json' } }, aggregatorConfig)),
  );
  const aggregator = new CliProcess(['aggregator', 'run', '--config', aggregatorFile], { ES_URL: c.url });
  const log = join(dir, 'job.log');
  await writeFile(log, '');
  const agentFile = join(dir, 'agent.yaml');
  await writeFile(
    agentFile,
    JSON.stringify(
      overlay(
        {
          agent: { id: `bench-${name}`, state_dir: join(dir, 'state') },
          sources: [{ type: 'file', id: 'job', include: [log], dataset: 'ci' }],
          output: { url: `http://127.0.0.1:${port}` },
          log: { level: 'info', format: 'json' },
        },
        agentConfig,
      ),
    ),
  );
  // Timing starts once both are ready, so that the agent's first retries do not count.
  await aggregator.waitForLog((l) => l.msg === 'elasticsearch ready', 120_000);
  const agent = new CliProcess(['agent', 'run', '--config', agentFile]);
  await agent.waitForLog((l) => l.msg === 'agent started', 60_000);
  const index = dataStreamName('ci', namespace);
  return {
    log,
    namespace,
    agent,
    aggregator,
    count: async (refresh) => {
      try {
        if (refresh) await c.es.indices.refresh({ index });
        return (await c.es.count({ index })).count;
      } catch {
        return 0; // not created yet
      }
    },
    aggregatorGcSeconds: async () => Object.fromEntries(await metricSamples(port, 'ci_audit_aggregator_nodejs_gc_duration_seconds_sum', 'kind')),
    indexed: async () => {
      const outcomes = await metricSamples(port, 'ci_audit_aggregator_records_total', 'outcome');
      return (outcomes.get('created') ?? 0) + (outcomes.get('duplicate') ?? 0);
    },
    close: async () => {
      await agent.stop();
      await aggregator.stop();
      await cleanupNamespace(c.es, namespace).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident memory of a process in MiB, from /proc/<pid>/status. */
export function peakRssMiB(pid: number): number {
  return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024);
}

/** Polls `check` every `everyMs` until true; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, everyMs: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An auth line as sshd writes it, numbered so that each is distinct (~150 bytes). */
export function authLine(i: number, time = new Date(1795688521000 + i)): string {
  return `${time.toISOString()} runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port ${50000 + (i % 10000)} ssh2: ED25519 SHA256:Xk3b${i}`;
}

/** The samples of one labelled metric on the aggregator's `/metrics`, by the value of `label`. */
async function metricSamples(port: number, name: string, label: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}\\{${label}="(\\w+)"\\} (\\S+)$`, 'gm'))) samples.set(m[1]!, Number(m[2]));
  return samples;
}
