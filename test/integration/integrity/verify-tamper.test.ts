// `ci-audit verify` against a real Elasticsearch: two agents' chains, hashed, signed and mapped by
// the real functions, indexed with `create` as the aggregator does; then each way of tampering with
// the index, done through the Elasticsearch API as someone with write access would, is reported as
// its kind, naming the agent, the sequence number and the document. The command runs as a real
// process for the clean case and a tampered one (exit codes, --json).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@elastic/elasticsearch';
import { ensureTemplates } from '../../../aggregator/index/setup.ts';
import { readAnchorFile } from '../../../admin/verify/anchor.ts';
import type { Attestation } from '../../../admin/verify/checkpoints.ts';
import type { Finding, Notice } from '../../../admin/verify/findings.ts';
import { keysFromRegistry } from '../../../admin/verify/keys.ts';
import { verifyChains, type VerifySummary } from '../../../admin/verify/verify.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { createTestPki } from '../../helpers/tls.ts';
import { CliProcess } from '../../../scripts/lib/cli-process.ts';
import { anchorLine, buildChain, chainRecord, lineRecord, type Chain, type IndexedDoc } from '../../unit/verify/chain-fixture.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

interface Setup {
  es: Client;
  url: string;
  namespace: string;
  a: Chain;
  b: Chain;
  registry: string;
  anchorFile: string;
}

async function bulkCreate(es: Client, docs: IndexedDoc[]): Promise<void> {
  for (let i = 0; i < docs.length; i += 2000) {
    const operations = docs.slice(i, i + 2000).flatMap((d) => [{ create: { _index: d.stream, _id: d._id } }, d.document]);
    const response = await es.bulk({ operations, refresh: false });
    assert.equal(response.errors, false, JSON.stringify(response.items.find((item) => item.create?.error !== undefined)));
  }
}

async function refresh(s: Setup): Promise<void> {
  await s.es.indices.refresh({ index: `logs-ci_audit.*-${s.namespace}` });
}

/** Indexes agent-a (50 records) and agent-b (30 records), a checkpoint every 10, into a namespace of its own. */
async function setup(t: TestContext, name: string): Promise<Setup> {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace(`verify_${name}`);
  const dir = await mkdtemp(join(tmpdir(), 'cia-verify-'));
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
    await rm(dir, { recursive: true, force: true });
  });
  await ensureTemplates(es, url);
  const a = buildChain('agent-a', namespace, 50, 10);
  const b = buildChain('agent-b', namespace, 30, 10);
  await bulkCreate(es, [a, b].flatMap((c) => [...c.records.map((r) => r.doc), ...c.checkpoints.map((cp) => cp.doc)]));
  const registry = join(dir, 'agents.json');
  const agents = [a, b].map((c) => ({ id: c.agent, token_sha256: '0'.repeat(64), enrolled_at: '2026-11-26T09:00:00.000Z', public_key: c.key.publicPem }));
  await writeFile(registry, JSON.stringify({ version: 1, agents, enrollment_tokens: [] }));
  const anchorFile = join(dir, 'anchor.jsonl');
  await writeFile(anchorFile, [a, b].flatMap((c) => c.checkpoints.map((cp) => `${anchorLine(cp.statement)}\n`)).join(''));
  const s = { es, url, namespace, a, b, registry, anchorFile };
  await refresh(s);
  return s;
}

interface Outcome {
  findings: Finding[];
  notices: Notice[];
  summary: VerifySummary;
}

async function verify(s: Setup, options: { anchor?: boolean; from?: string; to?: string } = {}): Promise<Outcome> {
  const findings: Finding[] = [];
  const notices: Notice[] = [];
  const anchor: Map<string, Attestation[]> | undefined = options.anchor === false ? undefined : await readAnchorFile(s.anchorFile, () => true);
  const summary = await verifyChains(
    s.es,
    s.url,
    {
      namespace: s.namespace,
      keys: await keysFromRegistry(s.registry),
      ...(anchor === undefined ? {} : { anchor }),
      ...(options.from === undefined ? {} : { from: options.from }),
      ...(options.to === undefined ? {} : { to: options.to }),
      pageSize: 7,
    },
    { finding: (f) => findings.push(f), notice: (n) => notices.push(n) },
  );
  return { findings, notices, summary };
}

function brief(f: Finding): string {
  return `${f.kind} ${f.agent} ${f.seq}${f.last_seq === undefined ? '' : `..${f.last_seq}`} ${f._id ?? ''}`;
}

/** The backing index a document of the namespace is in. */
async function backingIndex(s: Setup, id: string): Promise<string> {
  const r = await s.es.search({ index: `logs-ci_audit.*-${s.namespace}`, query: { ids: { values: [id] } } });
  const hit = r.hits.hits[0];
  assert.ok(hit !== undefined, `document ${id} not found`);
  return hit._index;
}

async function update(s: Setup, id: string, doc: Record<string, unknown>): Promise<void> {
  await s.es.update({ index: await backingIndex(s, id), id, doc });
}

async function remove(s: Setup, id: string): Promise<void> {
  await s.es.delete({ index: await backingIndex(s, id), id });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

test('clean chains: no finding, exit 0, and the command reports every record', async (t) => {
  const s = await setup(t, 'clean');
  const { findings, notices, summary } = await verify(s);
  assert.deepEqual(findings, []);
  assert.deepEqual(notices, []);
  assert.equal(summary.records, 80);
  assert.equal(summary.agents, 2);
  // 8 checkpoint documents and their 8 anchored lines.
  assert.equal(summary.checkpoints, 16);

  const json = await cli(['verify', '--namespace', s.namespace, '--registry', s.registry, '--anchor', s.anchorFile, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { findings: Finding[]; notices: Notice[]; summary: VerifySummary & { ok: boolean } };
  assert.deepEqual(report.findings, []);
  assert.equal(report.summary.ok, true);
  assert.equal(report.summary.records, 80);

  const text = await cli(['verify', '--namespace', s.namespace, '--registry', s.registry, '--agent', 'agent-b']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /verified 30 records of 1 agent and 3 checkpoints .*: no findings, 0 notices/);
  // stderr is not a terminal and --progress was not given: no progress lines.
  assert.equal(text.stderr, '');
});

test('one field of one document changed: altered, naming the field; the command exits 2', async (t) => {
  const s = await setup(t, 'field');
  await update(s, 'agent-a:seq:17', { user: { name: 'mallory' } });
  await refresh(s);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief), ['altered agent-a 17 agent-a:seq:17']);
  assert.deepEqual(findings[0]!.fields, ['user.name']);
  assert.match(findings[0]!._index ?? '', new RegExp(`^\\.ds-logs-ci_audit\\.auth-${s.namespace}-`));
  assert.equal(findings[0]!['@timestamp'], s.a.records[16]!.doc.document['@timestamp']);

  const run = await cli(['verify', '--namespace', s.namespace, '--registry', s.registry, '--json', '--progress']);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /CIA_ERR_VERIFY_FINDINGS: 1 finding/);
  assert.match(run.stderr, /verify: 80 of ~80 records \(100%\)/);
  const report = JSON.parse(run.stdout) as { findings: Finding[]; summary: { ok: boolean; findings: number } };
  assert.deepEqual(report.findings.map(brief), ['altered agent-a 17 agent-a:seq:17']);
  assert.deepEqual(report.summary.ok, false);

  const text = await cli(['verify', '--namespace', s.namespace, '--registry', s.registry]);
  assert.equal(text.code, 2);
  assert.match(text.stdout, /^FINDING altered agent=agent-a seq=17 @timestamp=\S+ _id=agent-a:seq:17 _index=\S+ fields=user\.name: /m);
});

test('one document deleted: missing, named by the record after the hole', async (t) => {
  const s = await setup(t, 'delete');
  await remove(s, 'agent-b:seq:12');
  await refresh(s);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief), ['missing agent-b 12 agent-b:seq:13']);
  assert.match(findings[0]!.detail, /between agent-b:seq:11 .* and agent-b:seq:13/);
  // A time range checks the chains over the sequence numbers of its records, and only those.
  const time = (seq: number): string => s.b.records[seq - 1]!.doc.document['@timestamp'] as string;
  const around = await verify(s, { from: time(8), to: time(16) });
  assert.deepEqual(around.findings.map(brief), ['missing agent-b 12 agent-b:seq:13']);
  assert.equal(around.summary.records, 8 + 9);
  const later = await verify(s, { from: time(20), to: time(30) });
  assert.deepEqual(later.findings, []);
  assert.equal(later.summary.records, 11 + 11);
});

test('a forged document inserted at an existing seq: inserted, the forged one named', async (t) => {
  const s = await setup(t, 'insert');
  const forged = chainRecord('agent-a', s.namespace, 23, s.a.records[21]!.hash, lineRecord('agent-a', 23, { user: 'root' }));
  await s.es.create({ index: forged.doc.stream, id: 'agent-a:forged:23', document: forged.doc.document });
  await refresh(s);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief), ['inserted agent-a 23 agent-a:forged:23']);
});

test('two documents\' seqs swapped: both reordered, nothing else', async (t) => {
  const s = await setup(t, 'swap');
  await update(s, 'agent-a:seq:5', { ci_audit: { chain: { seq: 6 } } });
  await update(s, 'agent-a:seq:6', { ci_audit: { chain: { seq: 5 } } });
  await refresh(s);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief).sort(), ['reordered agent-a 5 agent-a:seq:6', 'reordered agent-a 6 agent-a:seq:5']);
});

test('a tail rewritten with recomputed hashes: caught by the signed checkpoints and by the anchor', async (t) => {
  const s = await setup(t, 'rewrite');
  let prev = s.a.records[33]!.hash;
  for (let seq = 35; seq <= 50; seq++) {
    const r = chainRecord('agent-a', s.namespace, seq, prev, lineRecord('agent-a', seq, { user: 'nobody' }));
    await update(s, r.doc._id, r.doc.document);
    prev = r.hash;
  }
  await refresh(s);
  const withoutAnchor = await verify(s, { anchor: false });
  assert.deepEqual(withoutAnchor.findings.map(brief), ['checkpoint_mismatch agent-a 40 agent-a:seq:40', 'checkpoint_mismatch agent-a 50 agent-a:seq:50']);
  // The checkpoint documents deleted as well: the anchor still has them.
  await remove(s, s.a.checkpoints[3]!.doc._id);
  await remove(s, s.a.checkpoints[4]!.doc._id);
  await refresh(s);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief), ['checkpoint_mismatch agent-a 40 agent-a:seq:40', 'checkpoint_mismatch agent-a 50 agent-a:seq:50']);
  assert.match(findings[0]!.detail, /anchored checkpoint \(anchor line 4\)/);
});

test('the whole tail deleted with its checkpoint documents: caught by the anchor\'s last checkpoint', async (t) => {
  const s = await setup(t, 'tail');
  for (let seq = 41; seq <= 50; seq++) await remove(s, `agent-a:seq:${seq}`);
  await remove(s, s.a.checkpoints[4]!.doc._id);
  await refresh(s);
  // The index alone cannot tell: what is left is a shorter chain, signed up to seq 40.
  assert.deepEqual((await verify(s, { anchor: false })).findings, []);
  const { findings } = await verify(s);
  assert.deepEqual(findings.map(brief), ['tail_missing agent-a 41..50 agent-a:seq:40']);
});

test('the tail deleted, its last checkpoint document left: caught by that checkpoint', async (t) => {
  const s = await setup(t, 'tailcp');
  for (let seq = 21; seq <= 30; seq++) await remove(s, `agent-b:seq:${seq}`);
  await refresh(s);
  const { findings } = await verify(s, { anchor: false });
  assert.deepEqual(findings.map(brief), ['tail_missing agent-b 21..30 agent-b:seq:20']);
});

test('records shipped by the real agent through the real aggregator verify clean with the aggregator\'s registry and anchor file', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('verify_e2e');
  const dir = await mkdtemp(join(tmpdir(), 'cia-verify-e2e-'));
  const pki = await createTestPki();
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
    await rm(dir, { recursive: true, force: true });
    await rm(pki.dir, { recursive: true, force: true });
  });
  const aggregatorYaml = join(dir, 'aggregator.yaml');
  await writeFile(aggregatorYaml, [
    `listen: { host: 127.0.0.1, port: 0, tls: { cert_file: ${pki.serverCertFile}, key_file: ${pki.serverKeyFile} } }`,
    'auth: { registry_file: ./registry/agents.json }',
    `elasticsearch: { namespace: ${namespace} }`,
    'integrity: { anchor_file: ./anchor/checkpoints.jsonl }',
    'retention: { enforce: false }',
    'log: { format: json, level: info }',
    '',
  ].join('\n'));
  const aggregator = new CliProcess(['aggregator', 'run', '--config', aggregatorYaml], { ES_URL: esUrl });
  t.after(() => aggregator.stop());
  const url = String((await aggregator.waitForLog((l) => l.msg === 'receiver listening')).url);
  const enrollment = await cli(['aggregator', 'enrollment-token', '-c', aggregatorYaml]);
  assert.equal(enrollment.code, 0, enrollment.stderr);

  const agentId = 'verify-e2e-runner';
  await mkdir(join(dir, 'agent', 'logs'), { recursive: true });
  const lines = Array.from({ length: 60 }, (_, i) => `2026-11-26T10:${String(i).padStart(2, '0')}:00+00:00 runner-e2e sshd[${900 + i}]: Accepted publickey for deploy${i % 3} from 203.0.113.${i} port ${50000 + i} ssh2`);
  await writeFile(join(dir, 'agent', 'logs', 'auth.log'), lines.map((l) => `${l}\n`).join(''));
  const agentYaml = join(dir, 'agent', 'agent.yaml');
  await writeFile(agentYaml, [
    `agent: { id: ${agentId}, state_dir: ./state }`,
    'sources: [{ type: file, id: auth, include: [./logs/*.log], dataset: auth }]',
    `output: { url: "${url}", tls: { ca_file: ${pki.caFile} }, batch: { max_records: 25, max_delay_ms: 100 } }`,
    'integrity: { checkpoint_every_records: 20 }',
    'log: { format: json }',
    '',
  ].join('\n'));
  const enrolled = await cli(['agent', 'enroll', '-c', agentYaml, '--enrollment-token', enrollment.stdout.trim()]);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const agent = new CliProcess(['agent', 'run', '--config', agentYaml]);
  t.after(() => agent.stop());
  await agent.waitForLog((l) => l.msg === 'agent started');
  const chained = async (): Promise<number> => {
    await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}` }).catch(() => undefined);
    const r = await es.count({ index: `logs-ci_audit.auth-${namespace}`, query: { exists: { field: 'ci_audit.chain.seq' } } }).catch(() => ({ count: 0 }));
    return r.count;
  };
  await eventually(async () => (await chained()) >= 60, 'the 60 lines indexed as chained records');
  // A stop signs a last checkpoint over the head.
  assert.equal(await agent.stop(), 0);
  await eventually(async () => {
    await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}` }).catch(() => undefined);
    const r = await es.search({ index: `logs-ci_audit.integrity-${namespace}`, size: 1, sort: [{ 'ci_audit.checkpoint.seq': 'desc' }], query: { exists: { field: 'ci_audit.checkpoint.type' } } }).catch(() => undefined);
    const top = (r?.hits.hits[0]?._source as { ci_audit?: { checkpoint?: { seq?: number } } } | undefined)?.ci_audit?.checkpoint?.seq ?? 0;
    const head = await es.search({ index: `logs-ci_audit.*-${namespace}`, size: 1, sort: [{ 'ci_audit.chain.seq': 'desc' }], query: { exists: { field: 'ci_audit.chain.seq' } } });
    const last = (head.hits.hits[0]?._source as { ci_audit: { chain: { seq: number } } } | undefined)?.ci_audit.chain.seq ?? -1;
    return top === last;
  }, 'the stop checkpoint over the chain head');

  // Keys from the aggregator's registry and the anchor file, both named by its config.
  // Its namespace only: other tests' agents may have left records elsewhere in the cluster.
  const clean = await cli(['verify', '-c', aggregatorYaml, '--namespace', namespace, '--json']);
  assert.equal(clean.code, 0, `${clean.stdout}\n${clean.stderr}`);
  const report = JSON.parse(clean.stdout) as { findings: Finding[]; notices: Notice[]; summary: VerifySummary };
  assert.deepEqual(report.findings, []);
  assert.deepEqual(report.notices, []);
  assert.ok(report.summary.records >= 60, `records ${report.summary.records}`);
  assert.ok(report.summary.checkpoints >= 2 * 3, `checkpoints ${report.summary.checkpoints}: each in the index and in the anchor`);

  const hit = (await es.search({ index: `logs-ci_audit.auth-${namespace}`, size: 1, query: { match: { message: 'deploy1 203.0.113.31' } } })).hits.hits[0]!;
  await es.update({ index: hit._index, id: hit._id!, doc: { source: { ip: '198.51.100.1' } }, refresh: true });
  const tampered = await cli(['verify', '-c', aggregatorYaml, '--namespace', namespace, '--json']);
  assert.equal(tampered.code, 2, tampered.stderr);
  const found = (JSON.parse(tampered.stdout) as { findings: Finding[] }).findings;
  assert.deepEqual(found.map((f) => [f.kind, f._id, f.fields]), [['altered', hit._id, ['source.ip']]]);
});
