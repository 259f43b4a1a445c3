// The job context from real runner environments (variable sets as GitHub, GitLab, Buildkite and
// Jenkins document them), and the hook file round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobContextFromEnv, stripCredentials, taskResult } from '../../../../agent/sources/job-hook/job-context.ts';
import { parseHookFile } from '../../../../agent/sources/job-hook/hook-file.ts';
import { githubEnv } from './envs.ts';


test('GitHub: run, attempt, job, repository, ref, commit; user.name is the triggering actor', () => {
  const ctx = jobContextFromEnv(githubEnv);
  assert.ok(ctx);
  assert.equal(ctx.ci, 'github_actions');
  assert.equal(ctx.runner, 'runner-01');
  assert.equal(ctx.jobKey, '9876543210/2/build');
  assert.deepEqual(ctx.attributes, {
    'cicd.pipeline.name': 'CI',
    'cicd.pipeline.run.id': '9876543210',
    'ci_audit.job.run_attempt': '2',
    'cicd.pipeline.task.name': 'build',
    'vcs.repository.name': 'acme/shop',
    'vcs.repository.url.full': 'https://github.com/acme/shop',
    'cicd.pipeline.run.url.full': 'https://github.com/acme/shop/actions/runs/9876543210/attempts/2',
    'vcs.ref.head.name': 'main',
    'vcs.ref.head.revision': '3f786850e387550fdab836ed7e6dc881de23001b',
    'user.name': 'bob',
    'ci_audit.job.actor': 'alice',
    'cicd.worker.name': 'runner-01',
    'vcs.provider.name': 'github',
    'ci_audit.job.ci': 'github_actions',
  });
  assert.ok(!JSON.stringify(ctx).includes('ghs_'), 'no variable outside the list is read');
});

test('GitLab: pipeline and job ids, project, ref, commit, GITLAB_USER_LOGIN; concurrent slots apart', () => {
  const ctx = jobContextFromEnv({
    GITLAB_CI: 'true', CI_PIPELINE_ID: '1001', CI_JOB_ID: '5005', CI_JOB_NAME: 'test:unit', CI_PROJECT_PATH: 'group/app',
    CI_PROJECT_URL: 'https://gitlab.example.com/group/app', CI_COMMIT_REF_NAME: 'feature/x', CI_COMMIT_SHA: 'abc123',
    GITLAB_USER_LOGIN: 'carol', CI_RUNNER_ID: '42', CI_CONCURRENT_ID: '3', CI_JOB_TOKEN: 'glcbt-secret-never-read',
  });
  assert.ok(ctx);
  assert.equal(ctx.runner, '42/3');
  assert.equal(ctx.jobKey, '5005');
  assert.equal(ctx.attributes['cicd.pipeline.run.id'], '1001');
  assert.equal(ctx.attributes['cicd.pipeline.task.run.id'], '5005');
  assert.equal(ctx.attributes['cicd.pipeline.task.name'], 'test:unit');
  assert.equal(ctx.attributes['vcs.repository.url.full'], 'https://gitlab.example.com/group/app');
  assert.equal(ctx.attributes['vcs.ref.head.name'], 'feature/x');
  assert.equal(ctx.attributes['user.name'], 'carol');
  assert.ok(!JSON.stringify(ctx).includes('glcbt'));
});

test('Buildkite and Jenkins: ids, repository, user; credentials in GIT_URL are dropped', () => {
  const bk = jobContextFromEnv({
    BUILDKITE: 'true', BUILDKITE_BUILD_ID: 'b-1', BUILDKITE_JOB_ID: 'j-1', BUILDKITE_PIPELINE_SLUG: 'deploy',
    BUILDKITE_REPO: 'git@github.com:acme/shop.git', BUILDKITE_BRANCH: 'main', BUILDKITE_COMMIT: 'deadbeef',
    BUILDKITE_BUILD_CREATOR: 'Dana Doe', BUILDKITE_AGENT_NAME: 'bk-agent-1',
  });
  assert.ok(bk);
  assert.equal(bk.runner, 'bk-agent-1');
  assert.equal(bk.attributes['cicd.pipeline.run.id'], 'b-1');
  assert.equal(bk.attributes['vcs.repository.url.full'], 'git@github.com:acme/shop.git');
  assert.equal(bk.attributes['user.name'], 'Dana Doe');

  const jk = jobContextFromEnv({
    JENKINS_URL: 'https://ci.example.com/', BUILD_TAG: 'jenkins-app-release-17', JOB_NAME: 'app-release', BUILD_NUMBER: '17',
    GIT_URL: 'https://builder:s3cr3tp4ss@git.example.com/app.git', GIT_COMMIT: 'cafebabe', GIT_BRANCH: 'origin/main',
    BUILD_USER_ID: 'erin', NODE_NAME: 'linux-1', EXECUTOR_NUMBER: '0',
  });
  assert.ok(jk);
  assert.equal(jk.runner, 'linux-1/0');
  assert.equal(jk.jobKey, 'jenkins-app-release-17');
  assert.equal(jk.attributes['vcs.repository.url.full'], 'https://git.example.com/app.git');
  assert.equal(jk.attributes['vcs.ref.head.name'], 'main');
  assert.equal(jk.attributes['user.name'], 'erin');
  assert.ok(!JSON.stringify(jk).includes('s3cr3t'));
});

test('no CI in the environment: no context', () => {
  assert.equal(jobContextFromEnv({ HOME: '/root', PATH: '/usr/bin' }), undefined);
});

test('results and credentials', () => {
  assert.equal(taskResult('success'), 'success');
  assert.equal(taskResult('failed'), 'failure');
  assert.equal(taskResult('canceled'), 'cancellation');
  assert.equal(taskResult('0'), 'success');
  assert.equal(taskResult('137'), 'failure');
  assert.equal(taskResult(undefined), undefined);
  assert.equal(stripCredentials('https://x:y@h/p'), 'https://h/p');
});

test('hook files: a forged field name or a bad shape is refused with the reason', () => {
  const ctx = jobContextFromEnv(githubEnv);
  const good = { v: 1, phase: 'started', context: ctx, pid: 7, time: 1_700_000_000_000 };
  const parsed = parseHookFile(JSON.stringify(good));
  assert.equal(typeof parsed, 'object');
  assert.match(reason(parseHookFile('{')), /not JSON/);
  assert.match(reason(parseHookFile(JSON.stringify({ ...good, v: 2 }))), /unknown version/);
  const forged = { ...good, context: { ...ctx, attributes: { ...ctx?.attributes, 'event.outcome': 'success' } } };
  assert.match(reason(parseHookFile(JSON.stringify(forged))), /does not write: event\.outcome/);
});

function reason(result: ReturnType<typeof parseHookFile>): string {
  assert.equal(typeof result, 'string');
  return result as string;
}
