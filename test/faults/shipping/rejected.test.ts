// A batch the real aggregator refuses as malformed (400: a line beyond limits.max_attribute_value_bytes),
// with real processes and the real Elasticsearch: the agent sets it aside in <state_dir>/rejected,
// keeps shipping the lines after it, declares the gap (the aggregator records chain_gap_declared and
// `ci-audit verify` reports a notice, no finding), does not send it again after a restart, lists it
// (`ci-audit agent rejected list`), and sends it again once the aggregator accepts it
// (`ci-audit agent rejected resend`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RejectedEntry } from '../../../agent/rejected/rejected-store.ts';
import type { Finding, Notice } from '../../../admin/verify/findings.ts';
import { dataStreamName, integrityDataset } from '../../../core/wire.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { freePort, indexedLines, numberedLines, startAgent, startAggregator, untilIndexed, workspace, writeAgentConfig } from './end-to-end.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function writeAggregatorYaml(dir: string, port: number, namespace: string, maxValueBytes: number): Promise<string> {
  const file = join(dir, 'aggregator.yaml');
  await writeFile(
    file,
    [
      `listen: { host: 127.0.0.1, port: ${port} }`,
      `elasticsearch: { namespace: ${namespace} }`,
      `limits: { max_attribute_value_bytes: ${maxValueBytes} }`,
      'retention: { enforce: false }',
      'log: { level: info, format: json }',
      '',
    ].join('\n'),
  );
  return file;
}

void test('a batch the aggregator refuses is set aside, declared, not sent again after a restart, listed, and re-sent once accepted', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('rejected');
  const dir = await workspace(t, 'rejected', async () => {
    await cleanupNamespace(es, namespace).catch(() => {});
    await es.close();
  });
  const port = await freePort();
  const aggregatorYaml = await writeAggregatorYaml(dir, port, namespace, 4096);
  const aggregator = await startAggregator(t, aggregatorYaml, esUrl);

  const log = join(dir, 'job.log');
  await writeFile(log, '');
  const agentYaml = await writeAgentConfig({ dir, url: `http://127.0.0.1:${port}`, log, buffer: 'disk', agentId: 'rejected-agent' });
  const stateDir = join(dir, 'state');
  let agent = await startAgent(t, agentYaml);

  const before = numberedLines('before', 0, 30);
  await appendFile(log, before.join('\n') + '\n');
  await untilIndexed(es, namespace, 30, 60_000);
  // One line larger than the aggregator takes: its batch is refused whole (400).
  const oversized = `oversized-0000000 ${'y'.repeat(6000)}`;
  await appendFile(log, oversized + '\n');
  const setAside = await agent.waitForLog((l) => l.code === 'CIA_ERR_SHIP_REJECTED');
  assert.equal(setAside.level, 40);
  assert.equal(setAside.status, 400);
  assert.match(String(setAside.err), /max_attribute_value_bytes/);
  const after = numberedLines('after', 0, 30);
  await appendFile(log, after.join('\n') + '\n');
  await untilIndexed(es, namespace, 60, 60_000);

  // The aggregator recorded the agent's declaration of the numbers it will not see.
  const integrityIndex = dataStreamName(integrityDataset, namespace);
  let declared: { ci_audit?: { integrity?: unknown }; message?: string; event?: { action?: string } } | undefined;
  await eventually(async () => {
    await es.indices.refresh({ index: integrityIndex }).catch(() => undefined);
    const r = await es.search({ index: integrityIndex, size: 10, query: { term: { 'event.action': 'chain_gap_declared' } } }).catch(() => undefined);
    declared = r?.hits.hits[0]?._source as typeof declared;
    return declared !== undefined;
  }, 'the chain_gap_declared integrity event');
  assert.match(String(declared?.message), /rejected: the aggregator refused the batch as malformed/);

  // A restart: nothing of the rejected batch is sent again (its lines were acknowledged).
  assert.equal(await agent.stop(), 0);
  agent = await startAgent(t, agentYaml);
  const later = numberedLines('later', 0, 10);
  await appendFile(log, later.join('\n') + '\n');
  await untilIndexed(es, namespace, 70, 60_000);
  assert.equal(await agent.stop(), 0);
  assert.equal(agent.lines.filter((l) => l.code === 'CIA_ERR_SHIP_REJECTED').length, 0, 'the restarted agent sent nothing the aggregator refused');
  const indexed = await indexedLines(es, namespace);
  assert.equal(indexed.documents, 70);
  assert.ok(![...indexed.lines.values()].includes(oversized));

  // The operator sees it.
  const listed = await cli(['agent', 'rejected', 'list', '-c', agentYaml, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const entries = JSON.parse(listed.stdout) as RejectedEntry[];
  assert.equal(entries.length, 1);
  const entry = entries[0]!;
  assert.equal(entry.status, 400);
  assert.equal(entry.records, 1);
  assert.equal(entry.seq_ranges.length, 1);
  const text = await cli(['agent', 'rejected', 'list', '-c', agentYaml]);
  assert.match(text.stdout, new RegExp(`${entry.id} .* HTTP 400 +1 records +seqs ${entry.seq_ranges[0]!.first}`));

  // verify: the declared numbers are a notice, and nothing is a finding.
  const pem = createPublicKey(await readFile(join(stateDir, 'signing-key.pem'), 'utf8')).export({ type: 'spki', format: 'pem' }).toString();
  const keys = join(dir, 'keys.json');
  await writeFile(keys, JSON.stringify({ 'rejected-agent': pem }));
  const verify = async (): Promise<{ code: number | null; findings: Finding[]; notices: Notice[] }> => {
    const run = await cli(['verify', '-c', aggregatorYaml, '--keys', keys, '--json'], { ES_URL: esUrl });
    const report = JSON.parse(run.stdout) as { findings: Finding[]; notices: Notice[] };
    return { code: run.code, ...report };
  };
  const first = await verify();
  assert.deepEqual(first.findings, []);
  assert.equal(first.code, 0);
  const gap = first.notices.filter((n) => n.kind === 'declared_gap');
  assert.deepEqual(gap.map((n) => [n.seq, n.last_seq]), [[entry.seq_ranges[0]!.first, entry.seq_ranges[0]!.last]]);
  assert.match(gap[0]!.detail, /^rejected: .*ci-audit agent rejected list/);

  // Re-sending while the aggregator still refuses it keeps the copy.
  const refused = await cli(['agent', 'rejected', 'resend', entry.id, '-c', agentYaml]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /CIA_ERR_SHIP_REJECTED: .*HTTP 400/);
  assert.equal((JSON.parse((await cli(['agent', 'rejected', 'list', '-c', agentYaml, '--json'])).stdout) as RejectedEntry[]).length, 1);

  // The aggregator's limit raised: the batch goes in unchanged, under its own chain number.
  assert.equal(await aggregator.stop(), 0);
  await writeAggregatorYaml(dir, port, namespace, 1024 * 1024);
  await startAggregator(t, aggregatorYaml, esUrl);
  const resent = await cli(['agent', 'rejected', 'resend', entry.id, '-c', agentYaml]);
  assert.equal(resent.code, 0, resent.stderr);
  assert.match(resent.stdout, new RegExp(`sent 1 records of ${entry.id}`));
  assert.deepEqual(JSON.parse((await cli(['agent', 'rejected', 'list', '-c', agentYaml, '--json'])).stdout), []);
  await untilIndexed(es, namespace, 71, 60_000);
  assert.ok([...(await indexedLines(es, namespace)).lines.values()].includes(oversized));
  const second = await verify();
  assert.deepEqual(second.findings, []);
  assert.equal(second.code, 0);
});
