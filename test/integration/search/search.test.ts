// Searching end to end: auth lines and a GitHub runner log go through the real agent and aggregator
// into the real Elasticsearch (plus one integrity event as retention enforcement writes it). Then
// the query behind each saved search returns exactly the documents it should, and the `search`,
// `who`, `logins` and `runs` commands run as child processes: every output format, paging,
// --follow with a real SIGINT, and an unreachable cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgentProcess, startAggregatorProcess } from '../../helpers/pipeline-processes.ts';
import { cleanupNamespace, esClient, esPassword, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { savedQueries } from '../../../admin/search/queries.ts';
import { buildQuery, indexPattern } from '../../../admin/search/request.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

const stamp = (minutesAgo: number): string => new Date(Date.now() - minutesAgo * 60_000).toISOString().replace('Z', '+00:00');
const host = 'runner-srch';
// [line, minutes ago]: recent lines, and one of 30 hours ago that `--since 1d` leaves out.
const authLines: string[] = [
  `${stamp(50)} ${host} sshd[701]: Failed password for invalid user mallory-srch from 198.51.100.21 port 50001 ssh2`,
  `${stamp(49)} ${host} sshd[701]: Failed password for alice-srch from 198.51.100.22 port 50002 ssh2`,
  `${stamp(48)} ${host} sshd[702]: Accepted publickey for alice-srch from 203.0.113.30 port 50003 ssh2: ED25519 SHA256:Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4C`,
  `${stamp(47)} ${host} sudo:  alice-srch : TTY=pts/2 ; PWD=/home/alice-srch ; USER=root ; COMMAND=/usr/bin/printf a,b "c"`,
  `${stamp(46)} ${host} useradd[710]: new user: name=svc-srch, UID=2345, GID=2345, home=/home/svc-srch, shell=/bin/bash, from=/dev/pts/2`,
  `${stamp(45)} ${host} usermod[711]: add 'svc-srch' to group 'docker'`,
  `${stamp(44)} ${host} sshd[703]: Disconnected from user alice-srch 203.0.113.30 port 50003`,
  `${stamp(30 * 60)} ${host} sshd[690]: Failed password for bob-srch from 198.51.100.23 port 50004 ssh2`,
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ci-audit` to its end; `inherit: false` passes only PATH and HOME (no CI variables of the machine running the tests). */
function cli(args: string[], env: NodeJS.ProcessEnv, inherit = true): Promise<Run> {
  const base = inherit ? process.env : { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const child = spawn(process.execPath, [bin, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const isCheckpoint = (d: Record<string, unknown>): boolean =>
  (d.ci_audit as { checkpoint?: { type?: unknown } } | undefined)?.checkpoint?.type !== undefined;

const jsonl = (text: string): Array<Record<string, unknown> & { user?: { name?: string }; message?: string; event?: { action?: string } }> =>
  text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

test('the saved queries and the search commands answer the audit questions from real indexed records', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const dir = await mkdtemp(join(tmpdir(), 'cia-search-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const namespace = uniqueNamespace('search');
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
  });

  await mkdir(join(dir, 'log'));
  await mkdir(join(dir, '_diag'));
  await writeFile(join(dir, 'log', 'auth.log'), authLines.map((l) => `${l}\n`).join(''));
  await copyFile(join(fixtures, 'ci', 'github-runner-diag.log'), join(dir, '_diag', 'Runner_20250304-090000-utc.log'));
  const { aggregator, url } = await startAggregatorProcess(t, dir, namespace, esUrl);
  const agent = await startAgentProcess(
    t,
    dir,
    [
        'agent:',
        '  id: search-runner-01',
        '  state_dir: state',
        '  runner_type: github_actions',
        'job_hooks:',
        '  spool_dir: hooks',
        `  trusted_uids: [${process.getuid!()}]`,
        '  poll_interval_ms: 100',
        'sources:',
        '  - type: file',
        '    id: auth',
        '    include: ["log/*.log"]',
        '    dataset: auth',
        '  - type: file',
        '    id: gha',
        '    include: ["_diag/Runner_*.log"]',
        '    dataset: ci',
        'processors:',
        '  timezone: UTC',
    ],
    url,
  );

  // A pipeline run that carol-srch triggered, handed over by the runner's job hook.
  const hook = await cli(['hook', 'job-started', '--dir', join(dir, 'hooks'), '--strict'], {
    GITHUB_ACTIONS: 'true', GITHUB_RUN_ID: '8800112233', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'release-srch', GITHUB_WORKFLOW: 'Release',
    GITHUB_REPOSITORY: 'acme/search-app', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REF: 'refs/heads/main',
    GITHUB_SHA: '1d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a', GITHUB_ACTOR: 'carol-srch', GITHUB_TRIGGERING_ACTOR: 'carol-srch', RUNNER_NAME: host,
  }, false);
  assert.equal(hook.code, 0, hook.stderr);

  // An integrity event, as retention enforcement writes it (aggregator/retention/enforce.ts).
  const integrity = `logs-ci_audit.integrity-${namespace}`;
  await es.index({
    index: integrity, op_type: 'create', refresh: true,
    document: {
      '@timestamp': new Date().toISOString(), message: 'retention deleted a backing index',
      event: { kind: 'event', category: ['configuration'], type: ['deletion'], action: 'retention-delete-index', reason: 'older than 400d', dataset: 'ci_audit.integrity' },
      ci_audit: { verified: false, retention: { index: '.ds-x', data_stream: 'logs-ci_audit.auth-x', docs: 12, max_age: '400d', mechanism: 'own' } },
    },
  });

  const all = indexPattern(undefined, namespace);
  const count = async (index: string): Promise<number> => {
    await es.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
    // The agent's signed checkpoints (every 10 s and at stop) come and go with timing: not counted.
    const query = { bool: { must_not: [{ exists: { field: 'ci_audit.checkpoint.type' } }] } };
    return (await es.count({ index, allow_no_indices: true, ignore_unavailable: true, query })).count;
  };
  const ciLines = 5;
  const expectedTotal = authLines.length + ciLines + 1 + 1;
  await eventually(async () => (await count(all)) >= expectedTotal, `${expectedTotal} documents`);
  assert.equal(await count(all), expectedTotal);

  // The query behind each saved search, through Elasticsearch: exactly the expected documents.
  const expected: Record<string, string[]> = {
    'failed-ssh-logins': ['bob-srch', 'alice-srch', 'mallory-srch'],
    'successful-logins': ['alice-srch'],
    'sudo-commands': ['alice-srch'],
    'account-changes': ['svc-srch', 'svc-srch'],
    // The hook's run (triggered by carol-srch) and the one the runner's own log names.
    'pipeline-runs': ['release-srch', 'build-and-test'],
    'failed-jobs': ['build-and-test'],
    'integrity-alerts': ['retention-delete-index'],
  };
  for (const q of savedQueries) {
    const r = await es.search<Record<string, unknown>>({ index: indexPattern(q.dataset, namespace), query: buildQuery({ conditions: q.conditions, range: {} }), size: 100, sort: [{ '@timestamp': 'desc' }] });
    const docs = r.hits.hits.map((h) => h._source as { user?: { name?: string }; event?: { action?: string }; cicd?: { pipeline?: { task?: { name?: string } } } });
    if (q.id === 'unverified-sources') {
      // Every record of the agent arrived chained and its hash verified on ingest; what is left
      // is the aggregator's own retention event, which no agent chain covers.
      // The agent's checkpoints (every 10 s, so only when the test runs long) are unverified too:
      // this aggregator runs without auth, so it holds no key to check their signatures with.
      const records = docs.filter((d) => !isCheckpoint(d));
      assert.deepEqual(records.map((d) => d.event?.action), ['retention-delete-index'], `unverified: only the aggregator's own event, got ${JSON.stringify(records)}`);
      continue;
    }
    const key = (d: (typeof docs)[number]): string | undefined => (q.id === 'failed-jobs' || q.id === 'pipeline-runs' ? d.cicd?.pipeline?.task?.name : q.id === 'integrity-alerts' ? d.event?.action : d.user?.name);
    assert.deepEqual(docs.map(key).sort(), [...expected[q.id]!].sort(), q.id);
  }

  const env = { ES_URL: esUrl };
  const ns = ['--namespace', namespace];

  // logins --failed --since 1d: the recent two, newest first, as JSON lines (stdout is not a TTY).
  const failed = await cli(['logins', '--failed', '--since', '1d', ...ns], env);
  assert.equal(failed.code, 0, failed.stderr);
  assert.deepEqual(jsonl(failed.stdout).map((d) => d.user?.name), ['alice-srch', 'mallory-srch']);
  const failedAll = await cli(['logins', '--failed', ...ns], env);
  assert.deepEqual(jsonl(failedAll.stdout).map((d) => d.user?.name), ['alice-srch', 'mallory-srch', 'bob-srch']);

  const logins = await cli(['logins', '--user', 'alice-srch', '--from', '2h', ...ns], env);
  assert.deepEqual(jsonl(logins.stdout).map((d) => d.event?.action), ['ssh_login'], logins.stderr);
  const none = await cli(['logins', '--failed', '--from', '3d', '--to', '2d', ...ns], env);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, '', 'nothing in a range without events');

  // who: what alice-srch did or had done, in a table with the default columns.
  const who = await cli(['who', '--user', 'alice-srch', '--output', 'table', ...ns], env);
  assert.equal(who.code, 0, who.stderr);
  const rows = who.stdout.trimEnd().split('\n');
  assert.match(rows[0]!, /^@timestamp +event\.dataset +host\.hostname +user\.name +event\.action +message$/);
  assert.equal(rows.length, 1 + 4, who.stdout);
  const userCol = rows[0]!.indexOf('user.name');
  for (const row of rows.slice(1)) assert.equal(row.slice(userCol, userCol + 'alice-srch'.length), 'alice-srch');

  // runs --repo: the run and who triggered it, as CSV; the sudo command's commas and quotes survive CSV.
  const runs = await cli(['runs', '--repo', 'acme/search-app', '--output', 'csv', '--columns', 'user.name,vcs.repository.url.full,cicd.pipeline.run.id', ...ns], env);
  assert.equal(runs.code, 0, runs.stderr);
  assert.equal(runs.stdout, 'user.name,vcs.repository.url.full,cicd.pipeline.run.id\ncarol-srch,https://github.com/acme/search-app,8800112233\n');
  const sudo = await cli(['search', '--saved', 'sudo-commands', '--output', 'csv', '--columns', 'user.name,system.auth.sudo.command', ...ns], env);
  assert.equal(sudo.stdout, 'user.name,system.auth.sudo.command\nalice-srch,"/usr/bin/printf a,b ""c"""\n');

  // A query string on message and fields; paging by two fetches every document once.
  // (A CIDR is quoted: a bare `/` starts a regular expression in query_string syntax.)
  const qs = await cli(['search', 'Failed AND source.ip:"198.51.100.0/24"', '--dataset', 'auth', ...ns], env);
  assert.equal(jsonl(qs.stdout).length, 3, qs.stderr);
  const paged = await cli(['search', '--all', '--page-size', '2', ...ns], env);
  assert.equal(paged.code, 0, paged.stderr);
  const pages = jsonl(paged.stdout);
  const ids = pages.map((d) => String(d._id));
  assert.equal(new Set(ids).size, ids.length, 'no document twice across pages');
  // As in count(): the checkpoints the agent signs every 10 s while the test runs are not counted.
  assert.equal(pages.filter((d) => !isCheckpoint(d)).length, expectedTotal);
  const capped = await cli(['search', '--size', '3', '--page-size', '2', ...ns], env);
  assert.equal(jsonl(capped.stdout).length, 3);

  // A bad query is Elasticsearch's refusal with a code; a bad option never reaches the cluster.
  const bad = await cli(['search', 'user.name:(unclosed', ...ns], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /CIA_ERR_SEARCH_QUERY/);
  const password = esPassword(esUrl);
  if (password !== '') assert.ok(!bad.stderr.includes(password));
  const unreachable = await cli(['search', 'x'], { ES_URL: 'http://searcher:not-this-pw@127.0.0.1:1' });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /CIA_ERR_ES_UNAVAILABLE.*http:\/\/127\.0\.0\.1:1\//);
  assert.ok(!unreachable.stderr.includes('not-this-pw'));

  // --follow: prints what exists, then a line appended on the runner, until SIGINT.
  const follower = spawn(process.execPath, [bin, 'search', '--follow', '--interval', '1s', '--dataset', 'auth', 'user.name:late-srch OR user.name:mallory-srch', ...ns], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let followErr = '';
  follower.stderr.on('data', (d: Buffer) => (followErr += d.toString()));
  const followed: Array<{ user?: { name?: string } }> = [];
  const arrived = new Promise<void>((resolve) => {
    createInterface({ input: follower.stdout }).on('line', (line) => {
      followed.push(JSON.parse(line) as { user?: { name?: string } });
      if (followed.some((d) => d.user?.name === 'late-srch')) resolve();
    });
  });
  await eventually(() => Promise.resolve(followed.length >= 1), 'the existing event', 30_000);
  await appendFile(join(dir, 'log', 'auth.log'), `${stamp(0)} ${host} sshd[720]: Failed password for late-srch from 198.51.100.40 port 50009 ssh2\n`);
  await arrived;
  follower.kill('SIGINT');
  const followCode = await new Promise<number | null>((resolve) => follower.once('exit', resolve));
  assert.equal(followCode, 0, followErr);
  assert.deepEqual(followed.map((d) => d.user?.name), ['mallory-srch', 'late-srch'], 'each event once, in order');

  assert.equal(await agent.stop(), 0);
  assert.equal(await aggregator.stop(), 0);
});
