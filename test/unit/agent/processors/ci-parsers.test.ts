import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseRecord } from '../../../../agent/processors/parse-record.ts';
import { timeZoneResolver } from '../../../../agent/processors/syslog/time.ts';

const utc = timeZoneResolver('UTC');
const observed = Date.UTC(2025, 2, 4, 12);
const fixture = (name: string) => readFileSync(new URL(`../../../fixtures/ci/${name}`, import.meta.url), 'utf8').split('\n').filter((l) => l !== '');

test('GitHub Actions runner _diag: job assigned, started, finished with result, runner registered', () => {
  const [assigned, started, finished, listening, saved] = fixture('github-runner-diag.log').map((l) => parseRecord(l, {}, observed, utc));
  assert.equal(assigned?.fields['event.action'], 'ci_job_assigned');
  assert.equal(assigned?.fields['cicd.pipeline.run.id'], '8f2d6c1e-0a4b-4c55-9e61-3f7a2b9c0d11');
  assert.equal(assigned?.fields['cicd.pipeline.task.run.id'], '5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
  assert.equal(new Date(assigned?.time?.ms ?? 0).toISOString(), '2025-03-04T10:00:01.000Z');
  assert.equal(started?.fields['event.action'], 'ci_job_started');
  assert.equal(started?.fields['cicd.pipeline.task.name'], 'build-and-test');
  assert.equal(finished?.fields['event.action'], 'ci_job_finished');
  assert.equal(finished?.fields['cicd.pipeline.task.run.result'], 'failure');
  assert.equal(finished?.fields['event.outcome'], 'failure');
  assert.equal(listening?.fields['event.action'], 'ci_runner_online');
  assert.equal(saved?.fields['event.action'], 'ci_runner_registered');
  assert.equal(saved?.parser, 'github_actions');
});

test('GitLab Runner logfmt: job received with repository, job succeeded/failed', () => {
  const [received, ok, failed] = fixture('gitlab-runner.log').map((l) => parseRecord(l, {}, observed, utc));
  assert.equal(received?.fields['event.action'], 'ci_job_assigned');
  assert.equal(received?.fields['cicd.pipeline.task.run.id'], '7781234');
  assert.equal(received?.fields['vcs.repository.url.full'], 'https://gitlab.example.com/platform/api.git');
  assert.equal(received?.fields['cicd.worker.id'], 'xZ9aB3cD');
  assert.equal(ok?.fields['cicd.pipeline.task.run.result'], 'success');
  assert.equal(failed?.fields['cicd.pipeline.task.run.result'], 'failure');
  assert.equal(new Date(ok?.time?.ms ?? 0).toISOString(), '2025-03-04T10:05:00.000Z');
});

test('GitLab Runner through the journal (text format, program gitlab-runner)', () => {
  const got = parseRecord('x', { 'journald.MESSAGE': 'Job succeeded                                       duration_s=41.2 job=7781234 project=12 runner=xZ9aB3cD', 'journald.SYSLOG_IDENTIFIER': 'gitlab-runner' }, observed, utc);
  assert.equal(got.parser, 'gitlab_runner');
  assert.equal(got.fields['cicd.pipeline.task.run.result'], 'success');
  assert.equal(got.fields['cicd.pipeline.task.run.id'], '7781234');
});

test('GitLab Runner, runner log format through the journal: WARNING:/ERROR: Job failed is a finished job with its result', () => {
  const journal = (message: string) => parseRecord('x', { 'journald.MESSAGE': message, 'journald.SYSLOG_IDENTIFIER': 'gitlab-runner' }, observed, utc);
  const [received, failed, timedOut, canceled] = fixture('gitlab-runner-journal.log').map(journal);
  assert.equal(received?.fields['event.action'], 'ci_job_assigned');
  for (const [got, result, job] of [[failed, 'failure', '14796'], [timedOut, 'timeout', '14797'], [canceled, 'cancellation', '14798']] as const) {
    assert.equal(got?.fields['event.action'], 'ci_job_finished');
    assert.equal(got?.fields['cicd.pipeline.task.run.result'], result);
    assert.equal(got?.fields['event.outcome'], 'failure');
    assert.equal(got?.fields['cicd.pipeline.task.run.id'], job);
  }
});

test('Jenkins build log: who started it, the revision, the result; job and build from the path', () => {
  const path = '/var/lib/jenkins/jobs/payments/jobs/deploy-prod/builds/318/log';
  const [started, revision, finished] = fixture('jenkins-build.log').map((l) => parseRecord(l, { 'log.file.path': path }, observed, utc));
  // The display name, not the user id the hook gives as user.name.
  assert.equal(started?.fields['user.full_name'], 'Dana Whitfield');
  assert.equal(started?.fields['user.name'], undefined);
  assert.equal(started?.fields['cicd.pipeline.name'], 'payments/deploy-prod');
  // BUILD_TAG, as Jenkins forms it and the hook reports it (BUILD_NUMBER is not unique across jobs).
  assert.equal(started?.fields['cicd.pipeline.run.id'], 'jenkins-payments-deploy-prod-318');
  assert.equal(revision?.fields['vcs.ref.head.revision'], '4e1f0c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f');
  assert.equal(revision?.fields['vcs.ref.head.name'], 'main');
  assert.equal(finished?.fields['cicd.pipeline.result'], 'success');
});

test('Buildkite agent: assigned, started, finished', () => {
  const [assigned, started, finished] = fixture('buildkite-agent.log').map((l) => parseRecord(l, {}, observed, utc));
  assert.equal(assigned?.fields['event.action'], 'ci_job_assigned');
  assert.equal(started?.fields['cicd.pipeline.run.url.full'], 'https://buildkite.com/acme/web/builds/1207');
  assert.equal(finished?.fields['event.action'], 'ci_job_finished');
  assert.equal(finished?.fields['cicd.pipeline.task.run.id'], '01957a2e-3c4d-7e8f-9a0b-1c2d3e4f5a6b');
});
