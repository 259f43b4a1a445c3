// `npm run quickstart`: the whole pipeline on the sample logs in deploy/quickstart/logs.
// Starts Elasticsearch (unless ES_URL names a cluster), the aggregator and an agent as real
// processes, waits until every sample line is indexed, prints what Elasticsearch holds, verifies
// the agent's hash chain (`ci-audit verify`), alters one document and shows verify naming it, and
// stops everything it started — or keeps it running with --keep.
import { Client } from '@elastic/elasticsearch';
import { spawnSync } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliProcess } from './lib/cli-process.ts';
import { clusterInfo } from '../aggregator/index/cluster-info.ts';
import { redactUrl, startElasticsearch, type RunningElasticsearch } from './elasticsearch.ts';
import { publicKeyPem } from '../core/integrity/checkpoint.ts';

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

  // Fresh agent state and a new agent id each run: the agent ships every sample line again in a
  // chain of its own, so that a cluster named by ES_URL that holds an earlier run's chain sees a
  // second agent, not a rewritten chain.
  const agentId = `quickstart-${randomBytes(3).toString('hex')}`;
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
    CI_AUDIT_AGENT_ID: agentId,
  });
  started.push(agent);
  await agent.waitForLog((l) => l.msg === 'agent started');
  const perFile = await sampleLines();
  const expected = [...perFile.values()].reduce((a, b) => a + b, 0);
  say(`quickstart: agent following ${perFile.size} sample files (${expected} lines) in ${relative(root, join(quickstartDir, 'logs'))}/`);

  const pattern = 'logs-ci_audit.*-default';
  const deadline = Date.now() + Number(args.timeout) * 1000;
  // This run's agent's lines; its signed checkpoints (dataset integrity) are counted apart.
  const ofAgent = { term: { 'agent.id': agentId } };
  const lines = { bool: { filter: [ofAgent], must_not: [{ exists: { field: 'ci_audit.checkpoint.type' } }] } };
  const checkpoints = { bool: { filter: [ofAgent, { exists: { field: 'ci_audit.checkpoint.type' } }] } };
  const countOf = async (query: object): Promise<number> => {
    await client.indices.refresh({ index: pattern, allow_no_indices: true, ignore_unavailable: true }).catch(() => undefined);
    return (await client.count({ index: pattern, allow_no_indices: true, ignore_unavailable: true, query }).catch(() => ({ count: 0 }))).count;
  };
  let count: number;
  for (;;) {
    count = await countOf(lines);
    if (count >= expected) break;
    if (!agent.running || !aggregator.running) throw new Error(`the ${agent.running ? 'aggregator' : 'agent'} exited early; see its log above`);
    if (Date.now() > deadline) throw new Error(`only ${count} of ${expected} sample lines were indexed within ${args.timeout} s`);
    await new Promise((r) => setTimeout(r, 500));
  }

  await printSummary(client, pattern, expected, lines);

  // A graceful stop makes the agent sign where its chain stands; then verify checks every hash,
  // the signature (with the agent's public key) and that each document is what its record maps to.
  await agent.stop();
  for (;;) {
    if ((await countOf(checkpoints)) > 0) break;
    if (Date.now() > deadline) throw new Error(`the agent's signed checkpoint was not indexed within ${args.timeout} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const keysFile = join(runDir, 'agent-keys.json');
  const privateKey = await readFile(join(runDir, 'agent-state', 'signing-key.pem'), 'utf8');
  await writeFile(keysFile, JSON.stringify({ [agentId]: publicKeyPem(createPublicKey(privateKey)) }), { mode: 0o600 });
  const verifyArgs = ['verify', '--namespace', 'default', '--agent', agentId, '--keys', keysFile];
  say('');
  say(`Verifying the agent's hash chain: ci-audit ${verifyArgs.join(' ').replace(runDir, relative(root, runDir))}`);
  const clean = verify(verifyArgs, esUrl);
  if (clean !== 0) throw new Error(`verify found problems in a chain nobody touched (exit ${clean})`);

  // Tamper with one document, as someone with write rights on the cluster could, and verify again.
  const victim = await client.search<{ user?: { name?: string } }>({
    index: 'logs-ci_audit.auth-default',
    size: 1,
    query: { bool: { filter: [ofAgent, { exists: { field: 'user.name' } }] } },
    sort: [{ 'ci_audit.chain.seq': 'asc' }],
  });
  const hit = victim.hits.hits[0];
  if (hit?._id === undefined) throw new Error('no document with a user.name to alter');
  say('');
  say(`Altering one document as a cluster administrator could: ${hit._id} user.name ${String(hit._source?.user?.name)} -> mallory`);
  await client.update({ index: hit._index, id: hit._id, doc: { user: { name: 'mallory' } }, refresh: true });
  const tampered = verify(verifyArgs, esUrl);
  if (tampered !== 2) throw new Error(`verify did not report the altered document (exit ${tampered})`);
  say('verify named the altered document and exited 2, as it does for any finding.');

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

/** Runs `ci-audit verify` with the output shown, and returns its exit code. */
function verify(verifyArgs: string[], esUrl: string): number {
  const result = spawnSync(process.execPath, [join(root, 'bin', 'ci-audit.js'), ...verifyArgs], {
    env: { ...process.env, ES_URL: esUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  for (const line of `${result.stdout}${result.stderr}`.split('\n')) if (line.trim() !== '') say(`  ${line}`);
  return result.status ?? 1;
}

async function printSummary(client: Client, pattern: string, expected: number, query: object): Promise<void> {
  const byStream = await client.search({
    index: pattern,
    size: 0,
    query,
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
      query,
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
