// The whole hand-over with real parts: the `ci-audit hook` command in its own process writes into
// a real folder, the agent's JobHookSource reads it, and a job log line going through the agent's
// processors carries the job's context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LoggerProvider, type LogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { createLogger } from '../../../../core/logger.ts';
import { buildProcessors } from '../../../../agent/processors/build.ts';
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
  logger.emit({ body: 'npm ci --token=abc123secret', attributes: { 'log.file.path': '/runner/_diag/pages/1234_5678.log' } });
  logger.emit({ body: 'unrelated', attributes: { 'log.file.path': '/var/log/other.log' } });
  assert.equal(seen[0]?.attributes['cicd.pipeline.run.id'], '9876543210');
  assert.equal(seen[0]?.attributes['user.name'], 'bob');
  assert.equal(seen[0]?.body, 'npm ci --token=[REDACTED:secret_pair]');
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
