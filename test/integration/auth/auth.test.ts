// Authentication and TLS end to end, with real processes, certificates made by openssl for this run
// and the real Elasticsearch in ES_URL: `ci-audit aggregator run` over TLS with token auth, an admin
// creates an enrollment token with the CLI, `ci-audit agent enroll` stores the credential, `ci-audit
// agent run` ships a log file; hostile requests (no token, invalid, revoked, another agent's id,
// plain HTTP) are refused and nothing of them is indexed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { createTestPki } from '../../helpers/tls.ts';
import { cleanupNamespace, esClient, esPassword, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { agentAttributes, agentResource, emitRecords, protobufBody } from '../../unit/aggregator/otlp-fixtures.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));
const run = promisify(execFile);

interface Running {
  child: ChildProcess;
  logs: string[];
}

function startAggregator(configFile: string, esUrl: string): Promise<Running & { url: string }> {
  const child = spawn(process.execPath, [bin, 'aggregator', 'run', '--config', configFile], { env: { ...process.env, ES_URL: esUrl }, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: string[] = [];
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'receiver listening' && entry.url !== undefined) resolve({ child, url: entry.url, logs });
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`aggregator exited (${code ?? signal}) before listening:\n${logs.join('\n')}`)));
  });
}

function startAgent(configFile: string): Running {
  const child = spawn(process.execPath, [bin, 'agent', 'run', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  return { child, logs };
}

function stop(p: Running | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.kill('SIGTERM');
  });
}

void test('enroll -> ship over TLS with a token -> indexed as the enrolled agent; forged, unauthenticated and clear-text requests leave nothing in Elasticsearch', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('auth_it');
  const dir = await mkdtemp(join(tmpdir(), 'cia-auth-it-'));
  const procs: { aggregator?: Running; agent?: Running } = {};
  t.after(async () => {
    try {
      await stop(procs.agent);
      await stop(procs.aggregator);
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  const pki = await createTestPki();
  t.after(() => rm(pki.dir, { recursive: true, force: true }));
  const marker = randomBytes(4).toString('hex');
  const agentId = `it-auth-${marker}`;

  // The aggregator: TLS, default auth mode (token, since it serves TLS), a registry file of its own.
  const aggregatorYaml = join(dir, 'aggregator.yaml');
  await writeFile(aggregatorYaml, [
    `listen: { host: 127.0.0.1, port: 0, tls: { cert_file: ${pki.serverCertFile}, key_file: ${pki.serverKeyFile} } }`,
    'auth: { registry_file: ./registry/agents.json }',
    `elasticsearch: { namespace: ${namespace} }`,
    'retention: { enforce: false }',
    'log: { format: json, level: info }',
    '',
  ].join('\n'));
  const aggregator = await startAggregator(aggregatorYaml, esUrl);
  procs.aggregator = aggregator;
  const url = aggregator.url;
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const tls = new Agent({ connect: { ca: await readFile(pki.caFile) } });
  t.after(() => tls.close());
  await eventually(async () => (await request(`${url}/healthz`, { dispatcher: tls })).statusCode === 200, 'Elasticsearch ready behind the aggregator');

  // The admin creates an enrollment token (stdout only), the agent enrolls with it.
  const { stdout: enrollmentToken } = await run(process.execPath, [bin, 'aggregator', 'enrollment-token', '-c', aggregatorYaml, '--uses', '2', '--ttl', '10m']);
  assert.match(enrollmentToken.trim(), /^cia_enroll_/);
  const agentDir = join(dir, 'agent');
  await mkdir(join(agentDir, 'logs'), { recursive: true });
  const agentYaml = join(agentDir, 'agent.yaml');
  await writeFile(agentYaml, [
    `agent: { id: ${agentId}, state_dir: ./state }`,
    'sources: [{ type: file, id: ci, include: [./logs/*.log], dataset: ci }]',
    `output: { url: "${url}", tls: { ca_file: ${pki.caFile} }, batch: { max_delay_ms: 100 } }`,
    'log: { format: json }',
    '',
  ].join('\n'));
  const enrolled = await run(process.execPath, [bin, 'agent', 'enroll', '-c', agentYaml], { env: { ...process.env, CI_AUDIT_ENROLLMENT_TOKEN: enrollmentToken.trim() } });
  assert.match(enrolled.stdout, new RegExp(`enrolled agent ${agentId} at ${url}/v1/enroll; credential stored in .*credentials\\.json`));
  const credentialFile = join(agentDir, 'state', 'credentials.json');
  assert.equal((await stat(credentialFile)).mode & 0o777, 0o600);
  const token = (JSON.parse(await readFile(credentialFile, 'utf8')) as { token: string }).token;
  assert.ok(!enrolled.stdout.includes(token) && !enrolled.stderr.includes(token), 'the issued token is not printed');

  // A second agent, enrolled and then revoked through the CLI.
  const second = await request(`${url}/v1/enroll`, {
    dispatcher: tls, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${enrollmentToken.trim()}` }, body: JSON.stringify({ agent_id: `${agentId}-b` }),
  });
  const revokedToken = ((await second.body.json()) as { token: string }).token;
  await run(process.execPath, [bin, 'aggregator', 'agents', 'revoke', `${agentId}-b`, '-c', aggregatorYaml]);
  const listed = await run(process.execPath, [bin, 'aggregator', 'agents', 'list', '-c', aggregatorYaml]);
  assert.ok(!listed.stdout.includes(token) && !listed.stdout.includes('sha256'), 'agents list shows no secrets');
  assert.match(listed.stdout, new RegExp(`"id": "${agentId}-b",[^}]*"revoked_at"`));

  // Hostile requests, each with its own marker in the body.
  const hostile = async (claimedAgent: string, bearer: string | undefined, body: string, base = url) => {
    const records = await emitRecords({ resource: agentResource(claimedAgent), records: [{ body, attributes: agentAttributes('ci', `hostile-${body}`, '/x.log', 0) }] });
    const headers: Record<string, string> = { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' };
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    const response = await request(`${base}/v1/logs`, { dispatcher: tls, method: 'POST', headers, body: gzipSync(protobufBody(records)) });
    return { status: response.statusCode, text: await response.body.text() };
  };
  const noToken = await hostile(agentId, undefined, `hostile-none-${marker}`);
  assert.equal(noToken.status, 401);
  assert.match(noToken.text, /CIA_ERR_AUTH_MISSING/);
  const invalid = await hostile(agentId, 'cia_agent_guessed', `hostile-invalid-${marker}`);
  assert.equal(invalid.status, 401);
  assert.ok(invalid.text.includes('CIA_ERR_AUTH_INVALID') && !invalid.text.includes('cia_agent_guessed'));
  // A running aggregator notices the CLI's change within a second (the registry's recheck); an empty
  // request, which would index nothing even if accepted, shows when it has.
  await eventually(async () => {
    const probe = await request(`${url}/v1/logs`, { dispatcher: tls, method: 'POST', headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${revokedToken}` }, body: '' });
    await probe.body.text();
    return probe.statusCode === 401;
  }, 'the revocation to reach the running aggregator');
  const revoked = await hostile(`${agentId}-b`, revokedToken, `hostile-revoked-${marker}`);
  assert.equal(revoked.status, 401);
  assert.match(revoked.text, /CIA_ERR_AUTH_REVOKED/);
  const forged = await hostile(`${agentId}-b`, token, `hostile-forged-${marker}`);
  assert.equal(forged.status, 403);
  assert.match(forged.text, new RegExp(`CIA_ERR_AUTH_FORBIDDEN: authenticated as agent ${agentId}, but record 0 claims ci_audit.agent.id ${agentId}-b`));
  await assert.rejects(hostile(agentId, token, `hostile-plain-${marker}`, url.replace('https:', 'http:')), 'plain HTTP to the TLS port gets no HTTP answer');

  // The enrolled agent ships a log file with the stored credential.
  const lines = Array.from({ length: 20 }, (_, i) => `job 42 step ${i} done run=${marker}`);
  await writeFile(join(agentDir, 'logs', 'ci.log'), `${lines.join('\n')}\n`);
  procs.agent = startAgent(agentYaml);
  const search = async (query: string) => {
    await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}`, ignore_unavailable: true, allow_no_indices: true });
    const result = await es.search({ index: `logs-ci_audit.*-${namespace}`, ignore_unavailable: true, allow_no_indices: true, size: 100, q: query });
    return result.hits.hits.map((h) => h._source as { message?: string; agent?: { id?: string } });
  };
  await eventually(async () => (await search(`message:"run=${marker}"`)).length === lines.length, 'the agent\'s 20 lines in Elasticsearch');
  const docs = await search(`message:"run=${marker}"`);
  assert.deepEqual([...new Set(docs.map((d) => d.agent?.id))], [agentId]);
  assert.deepEqual(docs.map((d) => d.message).sort(), [...lines].sort());

  // Nothing of the refused requests, and no secret, anywhere in the namespace.
  const everything = await search('*');
  // Besides the lines: the agent's signed checkpoints (dataset integrity), whose timing varies.
  const records = everything.filter((d) => (d as { ci_audit?: { checkpoint?: unknown } }).ci_audit?.checkpoint === undefined);
  assert.equal(records.length, lines.length);
  const text = JSON.stringify(everything);
  assert.ok(!text.includes('hostile-'), 'no refused record was indexed');
  for (const secret of [token, revokedToken, enrollmentToken.trim(), esPassword(esUrl)]) assert.ok(!text.includes(secret));
  for (const line of [...procs.aggregator.logs, ...procs.agent.logs]) {
    for (const secret of [token, revokedToken, enrollmentToken.trim()]) assert.ok(!line.includes(secret), `a log line carries a secret: ${line}`);
  }
  assert.ok(procs.aggregator.logs.some((l) => l.includes('CIA_ERR_AUTH_FORBIDDEN')), 'the forged request is logged');
});

void test('the aggregator refuses to listen beyond loopback without TLS, naming the fix', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-auth-it-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const yaml = join(dir, 'aggregator.yaml');
  await writeFile(yaml, 'listen: { host: 0.0.0.0, port: 0 }\nlog: { format: json }\n');
  await assert.rejects(run(process.execPath, [bin, 'aggregator', 'run', '-c', yaml], { env: { ...process.env, ES_URL: requireEsUrl() } }), (err: { code?: number; stderr?: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr ?? '', /CIA_ERR_TLS_CONFIG: refusing to listen on 0\.0\.0\.0 without TLS: set listen\.tls\.cert_file and key_file/);
    return true;
  });
});
