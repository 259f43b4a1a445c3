// Real parts for the end-to-end shipping fault tests: `ci-audit aggregator run` on a port chosen
// up front (so that a restarted aggregator comes back where the agent already sends), `ci-audit
// agent run` following one log file, and the accounting of what reached Elasticsearch: every
// document's event.id (the agent's record id, one per line) and event.original (the line).
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Client } from '@elastic/elasticsearch';
import { dataStreamName } from '../../../core/wire.ts';
import { CliProcess } from '../../../scripts/lib/cli-process.ts';

/** The processes started for each test, stopped by its workspace's cleanup. */
const started = new WeakMap<TestContext, CliProcess[]>();

/**
 * A temporary folder for the test. When the test ends, the processes started for it are stopped
 * (the last started first), then `cleanup` runs, then the folder is removed: in that order, since a
 * stopping agent still writes its state there and sends its last records (a chain checkpoint).
 */
export async function workspace(t: TestContext, prefix: string, cleanup?: () => Promise<void>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cia-${prefix}-`));
  started.set(t, []);
  t.after(async () => {
    for (const p of (started.get(t) ?? []).reverse()) await p.stop();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

function track(t: TestContext, p: CliProcess): CliProcess {
  const list = started.get(t);
  if (list === undefined) {
    p.child.kill('SIGKILL');
    throw new Error('call workspace(t) before starting processes, so that they are stopped when the test ends');
  }
  list.push(p);
  return p;
}

/** A loopback port nothing listens on right now (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface AggregatorSetup {
  dir: string;
  port: number;
  namespace: string;
  /** The durable spool's folder; unset: no spool (503 while Elasticsearch is unavailable). */
  spoolDir?: string;
  /** `elasticsearch.request_timeout_ms`: short, so that a frozen cluster is noticed soon. */
  esRequestTimeoutMs?: number;
}

/** Writes the aggregator's configuration and returns its path. */
export async function writeAggregatorConfig(o: AggregatorSetup): Promise<string> {
  const file = join(o.dir, 'aggregator.yaml');
  await writeFile(
    file,
    [
      `listen: { host: 127.0.0.1, port: ${o.port} }`,
      `elasticsearch: { namespace: ${o.namespace}${o.esRequestTimeoutMs === undefined ? '' : `, request_timeout_ms: ${o.esRequestTimeoutMs}`} }`,
      ...(o.spoolDir === undefined ? [] : [`spool: { dir: ${o.spoolDir} }`]),
      'retention: { enforce: false }',
      'log: { level: info, format: json }',
      '',
    ].join('\n'),
  );
  return file;
}

/** Starts the aggregator and resolves once it listens; stopped (SIGTERM) when the test ends. */
export async function startAggregator(t: TestContext, configFile: string, esUrl: string): Promise<CliProcess> {
  const aggregator = track(t, new CliProcess(['aggregator', 'run', '--config', configFile], { ES_URL: esUrl }));
  await aggregator.waitForLog((l) => l.msg === 'receiver listening');
  return aggregator;
}

export async function sigkill(p: CliProcess): Promise<void> {
  if (!p.running) return;
  p.child.kill('SIGKILL');
  await p.exited;
}

export interface AgentSetup {
  dir: string;
  url: string;
  /** The file the agent follows (dataset `ci`). */
  log: string;
  buffer: 'disk' | 'memory';
  agentId?: string;
}

/** Writes the agent's configuration and returns its path. */
export async function writeAgentConfig(o: AgentSetup): Promise<string> {
  const file = join(o.dir, 'agent.yaml');
  const config = {
    agent: { id: o.agentId ?? 'shipping-fault-agent', state_dir: join(o.dir, 'state') },
    sources: [{ type: 'file', id: 'logs', include: [o.log], dataset: 'ci', poll_interval_ms: 50 }],
    output: { url: o.url, batch: { max_records: 1000, max_delay_ms: 100 } },
    buffer: { type: o.buffer },
    log: { level: 'info', format: 'json' },
  };
  // JSON is YAML.
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** Starts the agent and resolves once it runs; stopped (SIGTERM) when the test ends. */
export async function startAgent(t: TestContext, configFile: string): Promise<CliProcess> {
  const agent = track(t, new CliProcess(['agent', 'run', '--config', configFile]));
  await agent.waitForLog((l) => l.msg === 'agent started');
  return agent;
}

/** `<prefix>-<n>` padded with `x` to `width` bytes: distinct, numbered, easy to name when missing. */
export function numberedLines(prefix: string, from: number, count: number, width = 120): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(from + i).padStart(7, '0')} `.padEnd(width, 'x'));
}

/** Appends `lines` to `file` in chunks of `chunk`, waiting `pauseMs` between chunks: a job that keeps logging. */
export async function appendSlowly(file: string, lines: readonly string[], chunk: number, pauseMs: number): Promise<void> {
  for (let i = 0; i < lines.length; i += chunk) {
    await appendFile(file, lines.slice(i, i + chunk).join('\n') + '\n');
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

export interface Indexed {
  /** Documents per event.id. */
  ids: Map<string, number>;
  /** The line (event.original) of each event.id. */
  lines: Map<string, string>;
  documents: number;
}

/** Every document of the `ci` data stream of `namespace`: its event.id and line (scrolled, all of them). */
export async function indexedLines(es: Client, namespace: string): Promise<Indexed> {
  const index = dataStreamName('ci', namespace);
  const result: Indexed = { ids: new Map(), lines: new Map(), documents: 0 };
  try {
    await es.indices.refresh({ index });
  } catch {
    return result; // the data stream does not exist yet
  }
  let page = await es.search<{ event?: { id?: string; original?: string } }>({
    index,
    scroll: '1m',
    size: 10_000,
    _source: ['event.id', 'event.original'],
    query: { match_all: {} },
  });
  try {
    while (page.hits.hits.length > 0) {
      for (const hit of page.hits.hits) {
        const id = hit._source?.event?.id ?? `(no event.id: _id ${hit._id})`;
        result.documents++;
        result.ids.set(id, (result.ids.get(id) ?? 0) + 1);
        const line = hit._source?.event?.original;
        if (line !== undefined) result.lines.set(id, line);
      }
      if (page._scroll_id === undefined) break;
      page = await es.scroll({ scroll_id: page._scroll_id, scroll: '1m' });
    }
  } finally {
    if (page._scroll_id !== undefined) await es.clearScroll({ scroll_id: page._scroll_id }).catch(() => {});
  }
  return result;
}

/**
 * Exactly-once accounting: as many distinct event.ids as lines written, each line under exactly
 * one of them. `noDuplicates`: also no event.id indexed twice; only where no agent was killed (a
 * record re-sent after an agent crash may be indexed again under a new chain position).
 */
export function assertEveryLineOnce(indexed: Indexed, written: readonly string[], options: { noDuplicates: boolean }): void {
  const idsPerLine = new Map<string, number>();
  for (const line of indexed.lines.values()) idsPerLine.set(line, (idsPerLine.get(line) ?? 0) + 1);
  const missing = written.filter((l) => !idsPerLine.has(l));
  assert.equal(missing.length, 0, `${missing.length} of ${written.length} lines are not in Elasticsearch, first: ${missing.slice(0, 3).map((l) => l.slice(0, 20)).join(', ')}`);
  const twice = [...idsPerLine].filter(([, n]) => n > 1);
  assert.equal(twice.length, 0, `${twice.length} lines indexed under two record ids, first: ${twice.slice(0, 3).map(([l]) => l.slice(0, 20)).join(', ')}`);
  assert.equal(indexed.ids.size, written.length, `${indexed.ids.size} distinct event.ids for ${written.length} lines`);
  if (options.noDuplicates) {
    const repeated = [...indexed.ids].filter(([, n]) => n > 1);
    assert.equal(repeated.length, 0, `${repeated.length} event.ids indexed more than once, first: ${repeated.slice(0, 3).map(([id]) => id).join(', ')}`);
    assert.equal(indexed.documents, written.length);
  }
}

/** Polls Elasticsearch until at least `n` documents are in the `ci` data stream of `namespace`. */
export async function untilIndexed(es: Client, namespace: string, n: number, timeoutMs: number): Promise<void> {
  const index = dataStreamName('ci', namespace);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let count: number;
    try {
      await es.indices.refresh({ index });
      count = (await es.count({ index })).count;
    } catch {
      count = 0; // not created yet
    }
    if (count >= n) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${n} documents in ${index} (${count} there)`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
