// `npm run quickstart`: the whole pipeline on the sample logs in deploy/quickstart/logs.
// Starts Elasticsearch (unless ES_URL names a cluster), the aggregator and an agent as real
// processes, waits until every sample line is indexed, prints what Elasticsearch holds, and stops
// everything it started — or keeps it running with --keep.
import { Client } from '@elastic/elasticsearch';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliProcess } from './lib/cli-process.ts';
import { clusterInfo } from '../aggregator/index/cluster-info.ts';
import { redactUrl, startElasticsearch, type RunningElasticsearch } from './elasticsearch.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const quickstartDir = join(root, 'deploy', 'quickstart');
const runDir = join(root, '.run', 'quickstart');

const { values: args } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '120' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'usage: npm run quickstart [-- --keep] [-- --timeout <seconds>]\n' +
      '  --keep      leave Elasticsearch, aggregator and agent running until Ctrl-C\n' +
      '  --timeout   how long to wait for the sample lines to be indexed (default 120)\n' +
      'Set ES_URL to use your own Elasticsearch instead of starting one.\n',
  );
  process.exit(0);
}

const say = (line = ''): void => void process.stdout.write(`${line}\n`);
const started: { stop: () => Promise<unknown> }[] = [];
let stopping = false;

async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const thing of started.reverse()) await thing.stop().catch(() => undefined);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\nquickstart: ${signal}, stopping what it started`);
    void stopAll().then(() => process.exit(130));
  });
}

/** Every non-empty line of the sample logs: what must arrive in Elasticsearch. */
async function sampleLines(): Promise<Map<string, number>> {
  const files = (await readdir(join(quickstartDir, 'logs'), { recursive: true, withFileTypes: true }))
    .filter((d) => d.isFile() && d.name.endsWith('.log'))
    .map((d) => join(d.parentPath, d.name));
  const perFile = new Map<string, number>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    perFile.set(file, text.split('\n').filter((l) => l.trim() !== '').length);
  }
  return perFile;
}

async function main(): Promise<number> {
  let es: RunningElasticsearch | undefined;
  let esUrl = process.env.ES_URL;
  if (esUrl === undefined || esUrl === '') {
    say('quickstart: starting Elasticsearch (the first run downloads it with mvn)');
    es = await startElasticsearch();
    started.push(es);
    esUrl = es.url;
  } else {
    say(`quickstart: using the Elasticsearch cluster at ${redactUrl(esUrl)} (ES_URL)`);
  }
  const client = new Client({ node: esUrl, requestTimeout: 30_000 });
  const info = await clusterInfo(client);
  say(`quickstart: Elasticsearch ${info.version} at ${redactUrl(esUrl)}`);

  // Fresh agent state each run: the agent ships every sample line again. Record ids are
  // deterministic and indexing is create-only, so a cluster that already holds them keeps one copy.
  await rm(runDir, { recursive: true, force: true });
  await mkdir(runDir, { recursive: true });

  const aggregator = new CliProcess(['aggregator', 'run', '--config', join(quickstartDir, 'aggregator.yaml')], {
    ES_URL: esUrl,
    CI_AUDIT_AGGREGATOR_PORT: '0',
    LOG_LEVEL: 'info',
  });
  started.push(aggregator);
  const listening = await aggregator.waitForLog((l) => l.msg === 'receiver listening');
  const aggregatorUrl = String(listening.url);
  say(`quickstart: aggregator receiving OTLP/HTTP at ${aggregatorUrl}/v1/logs`);

  const agent = new CliProcess(['agent', 'run', '--config', join(quickstartDir, 'agent.yaml')], {
    CI_AUDIT_AGGREGATOR_URL: aggregatorUrl,
    CI_AUDIT_STATE_DIR: join(runDir, 'agent-state'),
  });
  started.push(agent);
  await agent.waitForLog((l) => l.msg === 'agent started');
  const perFile = await sampleLines();
  const expected = [...perFile.values()].reduce((a, b) => a + b, 0);
  say(`quickstart: agent following ${perFile.size} sample files (${expected} lines) in ${relative(root, join(quickstartDir, 'logs'))}/`);

  const pattern = 'logs-ci_audit.*-default';
  const deadline = Date.now() + Number(args.timeout) * 1000;
  let count: number;
  for (;;) {
    await client.indices.refresh({ index: pattern, allow_no_indices: true, ignore_unavailable: true }).catch(() => undefined);
    count = (await client.count({ index: pattern, allow_no_indices: true, ignore_unavailable: true }).catch(() => ({ count: 0 }))).count;
    if (count >= expected) break;
    if (!agent.running || !aggregator.running) throw new Error(`the ${agent.running ? 'aggregator' : 'agent'} exited early; see its log above`);
    if (Date.now() > deadline) throw new Error(`only ${count} of ${expected} sample lines were indexed within ${args.timeout} s`);
    await new Promise((r) => setTimeout(r, 500));
  }

  await printSummary(client, pattern, expected);

  if (args.keep) {
    const envFile = join(runDir, 'es.env');
    await writeFile(envFile, `export ES_URL='${esUrl}'\n`, { mode: 0o600 });
    await chmod(envFile, 0o600);
    say('');
    say('quickstart: --keep: everything keeps running. To search yourself:');
    say(`  source ${relative(root, envFile)}   # ES_URL with credentials (mode 0600)`);
    say(`  curl -s "$ES_URL/${pattern}/_search?q=message:sudo&pretty"`);
    say(`  append a line to ${relative(root, join(quickstartDir, 'logs', 'auth.log'))} and search again`);
    say('  Ctrl-C here stops agent, aggregator and the Elasticsearch it started.');
    await new Promise(() => undefined); // until a signal
  }
  await client.close();
  return 0;
}

async function printSummary(client: Client, pattern: string, expected: number): Promise<void> {
  const byStream = await client.search({
    index: pattern,
    size: 0,
    aggs: { streams: { terms: { field: '_index', size: 50 } } },
  });
  const buckets = (byStream.aggregations?.streams as { buckets: { key: string; doc_count: number }[] } | undefined)?.buckets ?? [];
  say('');
  say(`Indexed ${expected} of ${expected} sample lines. Documents per data stream:`);
  const perStream = new Map<string, number>();
  for (const b of buckets) {
    // Backing indices are named .ds-<data stream>-<date>-<generation>.
    const stream = b.key.replace(/^\.ds-/, '').replace(/-\d{4}\.\d{2}\.\d{2}-\d{6}$/, '');
    perStream.set(stream, (perStream.get(stream) ?? 0) + b.doc_count);
  }
  for (const [stream, n] of [...perStream].sort()) say(`  ${stream.padEnd(36)} ${n}`);

  let full: Record<string, unknown> | undefined;
  for (const stream of [...perStream.keys()].sort()) {
    const hits = await client.search<Record<string, unknown> & { '@timestamp'?: string; message?: string }>({
      index: stream,
      size: 3,
      sort: [{ '@timestamp': 'asc' }, { 'log.offset': 'asc' }],
      query: { match_all: {} },
    });
    say('');
    say(`First documents of ${stream}, read back from Elasticsearch:`);
    for (const hit of hits.hits.hits) {
      full ??= { _index: hit._index, _id: hit._id, ...hit._source };
      say(`  ${hit._source?.['@timestamp'] ?? '-'}  ${String(hit._source?.message ?? '').slice(0, 110)}`);
    }
  }
  if (full) {
    say('');
    say('One of them in full:');
    say(JSON.stringify(full, null, 2).replace(/^/gm, '  '));
  }
  say('');
  say('Search them like this (ES_URL as printed by `node scripts/elasticsearch.ts start`, or your own):');
  say(`  curl -s "$ES_URL/${pattern}/_search?q=message:%22Failed%20password%22&pretty"`);
  say(`  curl -s -H 'Content-Type: application/json' "$ES_URL/logs-ci_audit.ci-default/_search?pretty" -d '{"query":{"match":{"message":"Job"}}}'`);
  say('or with the search command (docs/search.md):');
  say('  node bin/ci-audit.js logins --failed --since 30d');
  say("  node bin/ci-audit.js search 'sudo' --dataset auth -o jsonl");
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`quickstart: failed: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  await stopAll();
}
process.exit(code);
