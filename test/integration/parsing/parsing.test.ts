// Parsing end to end with real processes: fixture auth and CI logs (with secrets in them) ->
// `ci-audit agent run` with the default processors -> `ci-audit aggregator run` -> the real
// Elasticsearch. Then searches on ECS fields must return exactly the documents they should, no
// raw secret may be anywhere in the index, and a job hook's context must reach its job's log lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@elastic/elasticsearch';
import type { QueryDslQueryContainer } from '@elastic/elasticsearch/lib/api/types';
import { startAgentProcess, startAggregatorProcess } from '../../helpers/pipeline-processes.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

// Secrets that appear in the log lines below; none may reach the index in any field.
const githubToken = 'ghp_Zx8Qw7Er6Ty5Ui4Op3As2Df1Gh0Jk9Lz8Xc7V';
const urlPassword = 'Tr0ub4dor-and-3';
const ciPassword = 'hunter2-in-a-job-log';

// RFC 3339 stamps, so the expected @timestamp is exact; hosts and users unique to this file.
const authLines = [
  '2026-03-05T10:00:01.123456+01:00 runner-int sshd[501]: Failed password for invalid user zed-int from 198.51.100.77 port 40001 ssh2',
  '2026-03-05T10:00:02.000000+01:00 runner-int sshd[501]: Failed password for zed-int from 198.51.100.78 port 40002 ssh2',
  '2026-03-05T10:00:05.000000+01:00 runner-int sshd[502]: Accepted publickey for zed-int from 203.0.113.9 port 40003 ssh2: ED25519 SHA256:Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4C',
  `2026-03-05T10:01:00.000000+01:00 runner-int sudo:  zed-int : TTY=pts/1 ; PWD=/home/zed-int ; USER=root ; COMMAND=/usr/bin/git clone https://zed:${urlPassword}@git.example.com/acme/shop.git`,
  '2026-03-05T10:02:00.000000+01:00 runner-int useradd[600]: new user: name=svc-int, UID=1234, GID=1234, home=/home/svc-int, shell=/bin/bash, from=/dev/pts/1',
  `2026-03-05T10:03:00.000000+01:00 runner-int sudo:  zed-int : TTY=pts/1 ; PWD=/srv ; USER=deploy ; COMMAND=/usr/bin/gh auth login --with-token ${githubToken}`,
  'a line no parser knows, kept whole',
];

interface Doc {
  '@timestamp'?: string;
  message?: string;
  event?: { original?: string; action?: string; outcome?: string; category?: string[]; type?: string[]; kind?: string };
  user?: { name?: string; id?: string; effective?: { name?: string } };
  source?: { ip?: string; port?: number };
  cicd?: { pipeline?: { name?: string; run?: { id?: string }; task?: { name?: string } } };
  vcs?: { repository?: { url?: { full?: string } }; ref?: { head?: { name?: string; revision?: string } } };
  ci_audit?: { parse?: { status?: string } ; redacted_by?: string[] };
  log?: { file?: { path?: string } };
}

async function search(es: Client, index: string, query: QueryDslQueryContainer): Promise<Doc[]> {
  const r = await es.search<Doc>({ index, query, size: 100 });
  return r.hits.hits.map((h) => h._source!);
}

/** Runs `ci-audit hook <phase>` as the runner would, with the job's environment. */
async function runHook(phase: 'job-started' | 'job-completed', dir: string, env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, [bin, 'hook', phase, '--dir', dir, '--strict'], {
    // Only what a runner passes: no inherited CI variables of the machine running the tests.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `ci-audit hook ${phase} failed: ${stderr}`);
}

test('auth and CI logs are parsed, enriched and redacted on the runner and searchable by ECS field', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const dir = await mkdtemp(join(tmpdir(), 'cia-parse-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const namespace = uniqueNamespace('parse');
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
  });

  // The runner's files: the fixtures copied as they are, plus this test's own lines.
  await mkdir(join(dir, 'log'));
  await mkdir(join(dir, '_diag', 'pages'), { recursive: true });
  const authFixtures = (await readdir(join(fixtures, 'auth'))).filter((f) => f.endsWith('.log'));
  let fixtureLines = 0;
  for (const f of authFixtures) {
    await copyFile(join(fixtures, 'auth', f), join(dir, 'log', f));
    fixtureLines += (await readFile(join(fixtures, 'auth', f), 'utf8')).split('\n').filter((l) => l !== '').length;
  }
  await writeFile(join(dir, 'log', 'secure-int.log'), authLines.map((l) => `${l}\n`).join(''));
  await copyFile(join(fixtures, 'ci', 'github-runner-diag.log'), join(dir, '_diag', 'Runner_20260305-090000-utc.log'));

  const { aggregator, url } = await startAggregatorProcess(t, dir, namespace, esUrl);

  // Paths relative to the config file, as the loader resolves them; default processors.
  const agent = await startAgentProcess(
    t,
    dir,
    [
        'agent:',
        '  id: parse-runner-01',
        '  state_dir: state',
        '  runner_type: github_actions',
        'job_hooks:',
        '  spool_dir: hooks',
        `  trusted_uids: [${process.getuid!()}]`,
        '  poll_interval_ms: 100',
        '  job_logs:',
        '    - path: "_diag/pages/*.log"',
        'sources:',
        '  - type: file',
        '    id: auth',
        '    include: ["log/*.log"]',
        '    dataset: auth',
        '  - type: file',
        '    id: gha',
        '    include: ["_diag/Runner_*.log", "_diag/pages/*.log"]',
        '    dataset: ci',
        'processors:',
        '  timezone: UTC',
    ],
    url,
  );

  const auth = `logs-ci_audit.auth-${namespace}`;
  const ci = `logs-ci_audit.ci-${namespace}`;
  const count = async (index: string, query?: QueryDslQueryContainer): Promise<number> => {
    await es.indices.refresh({ index, allow_no_indices: true, ignore_unavailable: true });
    return (await es.count({ index, allow_no_indices: true, ignore_unavailable: true, ...(query === undefined ? {} : { query }) })).count;
  };
  const authTotal = fixtureLines + authLines.length;
  await eventually(async () => (await count(auth)) >= authTotal, `${authTotal} auth documents`);
  assert.equal(await count(auth), authTotal, 'every auth line is one document: none dropped, none doubled');

  // A job starts: the runner calls the hook with the job's environment.
  const jobEnv = {
    GITHUB_ACTIONS: 'true',
    GITHUB_RUN_ID: '7700112233',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'deploy-int',
    GITHUB_WORKFLOW: 'Release',
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_SHA: '0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a',
    GITHUB_ACTOR: 'alice-int',
    GITHUB_TRIGGERING_ACTOR: 'bob-int',
    RUNNER_NAME: 'runner-int',
  };
  await runHook('job-started', join(dir, 'hooks'), jobEnv);
  const started = { term: { 'event.action': 'ci_job_started' } } as const;
  await eventually(async () => (await count(ci, { bool: { filter: [started, { term: { 'cicd.pipeline.run.id': '7700112233' } }] } })) === 1, 'the job started event');

  // The job writes its own log while it runs, each line stamped as the runner stamps step logs: the
  // time binds the file to the job whose span holds it (docs/runners.md).
  const jobLog = join(dir, '_diag', 'pages', 'step-1.log');
  const jobLines = ['Run actions/checkout@v4', `curl -u deploy:${ciPassword} -d password=${ciPassword} https://example.com`, 'Deployed shop 1.4.2'];
  for (const line of jobLines) await appendFile(jobLog, `${new Date().toISOString().replace('Z', '0000Z')} ${line}\n`);
  const byPath = { term: { 'log.file.path': jobLog } } as const;
  await eventually(async () => (await count(ci, byPath)) === jobLines.length, 'the job log lines');

  // user.name: every line that names zed-int as the user, and only those.
  const zed = await search(es, auth, { term: { 'user.name': 'zed-int' } });
  assert.equal(zed.length, 5, zed.map((d) => d.message).join('\n'));

  // Failed SSH logins: outcome failure, with the source address as an IP (a CIDR query works).
  const failed = await search(es, auth, {
    bool: { filter: [{ term: { 'event.action': 'ssh_login' } }, { term: { 'event.outcome': 'failure' } }, { term: { 'source.ip': '198.51.100.0/24' } }, { term: { 'host.hostname': 'runner-int' } }] },
  });
  assert.deepEqual(failed.map((d) => d.source?.ip).sort(), ['198.51.100.77', '198.51.100.78']);
  assert.deepEqual(failed.map((d) => d.source?.port).sort(), [40001, 40002]);
  for (const d of failed) {
    assert.deepEqual(d.event?.category, ['authentication']);
    assert.equal(d.event?.kind, 'event');
  }

  // @timestamp is when the event happened (the line's stamp), not when the agent read it.
  const first = failed.find((d) => d.source?.ip === '198.51.100.77')!;
  assert.equal(first['@timestamp'], '2026-03-05T09:00:01.123456000Z');

  // sudo to root.
  const sudoRoot = await search(es, auth, { bool: { filter: [{ term: { 'event.action': 'sudo_command' } }, { term: { 'user.effective.name': 'root' } }, { term: { 'host.hostname': 'runner-int' } }] } });
  assert.equal(sudoRoot.length, 1);
  assert.equal(sudoRoot[0]!.user?.name, 'zed-int');
  assert.equal(sudoRoot[0]!.event?.outcome, 'success');

  // An account created.
  const created = await search(es, auth, { bool: { filter: [{ term: { 'event.category': 'iam' } }, { term: { 'event.type': 'creation' } }, { term: { 'user.name': 'svc-int' } }] } });
  assert.equal(created.length, 1);
  assert.equal(created[0]!.event?.action, 'user_created');
  assert.deepEqual(created[0]!.event?.type, ['user', 'creation']);
  assert.equal(created[0]!.user?.id, '1234');

  // The unknown line is kept whole and says so.
  const unparsed = await search(es, auth, { term: { 'ci_audit.parse.status': 'unparsed' } });
  assert.deepEqual(unparsed.map((d) => d.event?.original), ['a line no parser knows, kept whole']);

  // Secrets: replaced by a marker in message and event.original...
  const withUrl = await search(es, auth, { match_phrase: { message: 'git.example.com/acme/shop.git' } });
  assert.equal(withUrl.length, 1);
  assert.match(withUrl[0]!.message ?? '', /https:\/\/zed:\[REDACTED:url_password\]@git\.example\.com/);
  assert.match(withUrl[0]!.event?.original ?? '', /https:\/\/zed:\[REDACTED:url_password\]@git\.example\.com/);
  const withToken = await search(es, auth, { bool: { filter: [{ term: { 'user.effective.name': 'deploy' } }, { term: { 'host.hostname': 'runner-int' } }] } });
  assert.equal(withToken.length, 1);
  assert.match(withToken[0]!.message ?? '', /--with-token \[REDACTED:github_token\]$/);
  assert.match(withToken[0]!.event?.original ?? '', /--with-token \[REDACTED:github_token\]$/);

  // ...and found nowhere in the index: not by search in any indexed field, not in any stored _source.
  const everything = `logs-ci_audit.*-${namespace}`;
  for (const secret of [githubToken, urlPassword, ciPassword]) {
    const hits = await es.count({ index: everything, query: { query_string: { query: `"${secret}"`, default_field: '*' } } });
    assert.equal(hits.count, 0, `a search finds no document holding ${secret.slice(0, 4)}…`);
  }
  const all = await es.search({ index: everything, size: 1000, query: { match_all: {} } });
  assert.ok(all.hits.hits.length >= authTotal + jobLines.length);
  const raw = JSON.stringify(all.hits.hits.map((h) => h._source));
  for (const secret of [githubToken, urlPassword, ciPassword]) assert.ok(!raw.includes(secret), `no stored document holds ${secret.slice(0, 4)}…`);

  // The job started event carries the CI/CD and VCS context and the person who triggered the run.
  const [job] = await search(es, ci, { bool: { filter: [started, { term: { 'cicd.pipeline.task.name': 'deploy-int' } }] } });
  assert.equal(job?.cicd?.pipeline?.run?.id, '7700112233');
  assert.equal(job?.cicd?.pipeline?.name, 'Release');
  assert.equal(job?.vcs?.repository?.url?.full, 'https://github.com/acme/shop');
  assert.equal(job?.vcs?.ref?.head?.name, 'main');
  assert.equal(job?.vcs?.ref?.head?.revision, '0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a');
  assert.equal(job?.user?.name, 'bob-int', 'the triggering actor, not the first run\'s actor');

  // A search for the run returns its whole log, each line with the job's context.
  const runLines = await search(es, ci, { bool: { filter: [{ term: { 'cicd.pipeline.run.id': '7700112233' } }, byPath] } });
  assert.equal(runLines.length, jobLines.length);
  for (const d of runLines) {
    assert.equal(d.cicd?.pipeline?.task?.name, 'deploy-int');
    assert.equal(d.user?.name, 'bob-int');
    assert.equal(d.vcs?.ref?.head?.revision, '0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a');
  }
  assert.ok(runLines.some((d) => (d.message ?? '').includes('password=[REDACTED:')), 'the job log line is redacted too');

  // The runner's own diagnostic log: a job event from the line itself.
  const finished = await search(es, ci, { term: { 'event.action': 'ci_job_finished' } });
  assert.equal(finished.length, 1);
  assert.equal(finished[0]!.cicd?.pipeline?.task?.name, 'build-and-test');
  assert.equal(finished[0]!['@timestamp'], '2025-03-04T10:03:40.000000000Z');

  // The job completes; a graceful stop of both ends.
  await runHook('job-completed', join(dir, 'hooks'), { ...jobEnv, CI_JOB_STATUS: 'success' });
  await eventually(async () => (await count(ci, { term: { 'event.action': 'ci_job_finished' } })) === 2, 'the job finished event');
  assert.equal(await agent.stop(), 0);
  assert.equal(await aggregator.stop(), 0);
});
