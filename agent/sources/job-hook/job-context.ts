// A CI job's context from the environment the runner gives the job (and its hooks): which CI,
// which runner slot, and the OpenTelemetry CI/CD + VCS attributes plus ECS `user.name` of the
// person who triggered it. Pure: the environment is an argument. Only the variables named here are
// read; URLs lose their credentials (Jenkins' GIT_URL may carry them).
import { cicdAttr, ecsAttr } from '../../../core/wire.ts';

export type CiKind = 'github_actions' | 'gitlab' | 'buildkite' | 'jenkins';

export interface JobContext {
  ci: CiKind;
  /** The runner slot the job runs on (one job at a time per slot): RUNNER_NAME, CI_RUNNER_ID/CI_CONCURRENT_ID, ... */
  runner: string;
  /** Identifies the job on that CI; a completed hook must name the same job as its started hook. */
  jobKey: string;
  /** Attributes every record of the job carries (string values only). */
  attributes: Record<string, string>;
}

/** Extra attribute names that the conventions have no field for. */
export const jobAttr = {
  /** GitHub: the actor whose run it is (GITHUB_ACTOR); `user.name` is the one who triggered this attempt. */
  actor: 'ci_audit.job.actor',
  runAttempt: 'ci_audit.job.run_attempt',
  ci: 'ci_audit.job.ci',
  /** The phase the hook was called in: started or completed. */
  phase: 'ci_audit.job.phase',
  /** Uid and pid of the process that wrote the hook's file, as the agent saw it. */
  hookUid: 'ci_audit.job.hook.uid',
  hookPid: 'ci_audit.job.hook.pid',
  /**
   * `uncertain` on a line of a job log (`job_hooks.job_logs`) that could not be bound to one job,
   * and so carries no job's context (docs/runners.md, "Job logs").
   */
  attribution: 'ci_audit.job.attribution',
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/** The job context, or undefined when the environment names no CI this hook knows. */
export function jobContextFromEnv(env: Env): JobContext | undefined {
  if (env.GITHUB_ACTIONS === 'true' || has(env, 'GITHUB_RUN_ID')) return github(env);
  if (env.GITLAB_CI === 'true' || has(env, 'CI_JOB_ID')) return gitlab(env);
  if (env.BUILDKITE === 'true' || has(env, 'BUILDKITE_JOB_ID')) return buildkite(env);
  if (has(env, 'JENKINS_URL') || has(env, 'BUILD_TAG')) return jenkins(env);
  return undefined;
}

function github(env: Env): JobContext {
  const server = stripCredentials(env.GITHUB_SERVER_URL ?? 'https://github.com').replace(/\/+$/, '');
  const repo = env.GITHUB_REPOSITORY;
  const runId = env.GITHUB_RUN_ID ?? '';
  const attempt = env.GITHUB_RUN_ATTEMPT ?? '1';
  const a: Record<string, string> = {};
  set(a, cicdAttr.pipelineName, env.GITHUB_WORKFLOW);
  set(a, cicdAttr.pipelineRunId, runId);
  set(a, jobAttr.runAttempt, attempt);
  set(a, cicdAttr.taskName, env.GITHUB_JOB);
  if (repo !== undefined && repo !== '') {
    set(a, cicdAttr.repositoryName, repo);
    set(a, cicdAttr.repositoryUrl, `${server}/${repo}`);
    if (runId !== '') set(a, cicdAttr.pipelineRunUrl, `${server}/${repo}/actions/runs/${runId}/attempts/${attempt}`);
  }
  set(a, cicdAttr.refHeadName, env.GITHUB_REF_NAME ?? refName(env.GITHUB_REF));
  set(a, cicdAttr.refHeadRevision, env.GITHUB_SHA);
  // A re-run is triggered by GITHUB_TRIGGERING_ACTOR; GITHUB_ACTOR stays the first run's actor.
  set(a, ecsAttr.userName, env.GITHUB_TRIGGERING_ACTOR ?? env.GITHUB_ACTOR);
  set(a, jobAttr.actor, env.GITHUB_ACTOR);
  set(a, cicdAttr.workerName, env.RUNNER_NAME);
  set(a, cicdAttr.providerName, 'github');
  return finish('github_actions', env.RUNNER_NAME ?? 'github', `${runId}/${attempt}/${env.GITHUB_JOB ?? ''}`, a);
}

function gitlab(env: Env): JobContext {
  const a: Record<string, string> = {};
  set(a, cicdAttr.pipelineName, env.CI_PIPELINE_NAME ?? env.CI_PROJECT_PATH);
  set(a, cicdAttr.pipelineRunId, env.CI_PIPELINE_ID);
  set(a, cicdAttr.pipelineRunUrl, urlOf(env.CI_PIPELINE_URL));
  set(a, cicdAttr.taskName, env.CI_JOB_NAME);
  set(a, cicdAttr.taskRunId, env.CI_JOB_ID);
  set(a, cicdAttr.taskRunUrl, urlOf(env.CI_JOB_URL));
  set(a, cicdAttr.repositoryName, env.CI_PROJECT_PATH);
  set(a, cicdAttr.repositoryUrl, urlOf(env.CI_PROJECT_URL));
  set(a, cicdAttr.refHeadName, env.CI_COMMIT_REF_NAME);
  set(a, cicdAttr.refHeadRevision, env.CI_COMMIT_SHA);
  set(a, ecsAttr.userName, env.GITLAB_USER_LOGIN);
  set(a, cicdAttr.workerId, env.CI_RUNNER_ID);
  set(a, cicdAttr.workerName, env.CI_RUNNER_DESCRIPTION);
  set(a, cicdAttr.providerName, 'gitlab');
  // A runner with `concurrent > 1` runs several jobs at once: CI_CONCURRENT_ID tells the slots apart.
  const runner = `${env.CI_RUNNER_ID ?? 'gitlab'}${env.CI_CONCURRENT_ID === undefined ? '' : `/${env.CI_CONCURRENT_ID}`}`;
  return finish('gitlab', runner, env.CI_JOB_ID ?? '', a);
}

function buildkite(env: Env): JobContext {
  const a: Record<string, string> = {};
  set(a, cicdAttr.pipelineName, env.BUILDKITE_PIPELINE_SLUG);
  set(a, cicdAttr.pipelineRunId, env.BUILDKITE_BUILD_ID);
  set(a, cicdAttr.pipelineRunUrl, urlOf(env.BUILDKITE_BUILD_URL));
  set(a, cicdAttr.taskName, env.BUILDKITE_LABEL ?? env.BUILDKITE_STEP_KEY);
  set(a, cicdAttr.taskRunId, env.BUILDKITE_JOB_ID);
  set(a, cicdAttr.repositoryUrl, urlOf(env.BUILDKITE_REPO));
  set(a, cicdAttr.refHeadName, env.BUILDKITE_BRANCH);
  set(a, cicdAttr.refHeadRevision, env.BUILDKITE_COMMIT);
  set(a, ecsAttr.userName, env.BUILDKITE_BUILD_CREATOR);
  set(a, cicdAttr.workerName, env.BUILDKITE_AGENT_NAME);
  return finish('buildkite', env.BUILDKITE_AGENT_NAME ?? 'buildkite', env.BUILDKITE_JOB_ID ?? '', a);
}

function jenkins(env: Env): JobContext {
  const a: Record<string, string> = {};
  set(a, cicdAttr.pipelineName, env.JOB_NAME);
  // BUILD_NUMBER is unique only within its job; BUILD_TAG (jenkins-<job>-<number>) is unique.
  set(a, cicdAttr.pipelineRunId, env.BUILD_TAG);
  set(a, cicdAttr.pipelineRunUrl, urlOf(env.BUILD_URL));
  set(a, cicdAttr.taskName, env.STAGE_NAME);
  set(a, cicdAttr.repositoryUrl, urlOf(env.GIT_URL));
  set(a, cicdAttr.refHeadName, env.GIT_BRANCH === undefined ? undefined : env.GIT_BRANCH.replace(/^origin\//, ''));
  set(a, cicdAttr.refHeadRevision, env.GIT_COMMIT);
  set(a, ecsAttr.userName, env.BUILD_USER_ID);
  set(a, cicdAttr.workerName, env.NODE_NAME);
  const runner = `${env.NODE_NAME ?? 'jenkins'}${env.EXECUTOR_NUMBER === undefined ? '' : `/${env.EXECUTOR_NUMBER}`}`;
  return finish('jenkins', runner, env.BUILD_TAG ?? '', a);
}

function finish(ci: CiKind, runner: string, jobKey: string, attributes: Record<string, string>): JobContext {
  attributes[jobAttr.ci] = ci;
  return { ci, runner, jobKey, attributes };
}

function has(env: Env, name: string): boolean {
  return env[name] !== undefined && env[name] !== '';
}

/** Caps each value: a job controls its own environment and must not blow up the agent's records. */
const maxValueLength = 2048;

function set(a: Record<string, string>, key: string, value: string | undefined): void {
  if (value === undefined || value === '') return;
  a[key] = value.length > maxValueLength ? value.slice(0, maxValueLength) : value;
}

function refName(ref: string | undefined): string | undefined {
  return ref?.replace(/^refs\/(?:heads|tags)\//, '');
}

function urlOf(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : stripCredentials(value);
}

/** `https://user:token@host/x` -> `https://host/x`; scp-like git addresses (`git@host:x`) carry no secret and stay. */
export function stripCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1');
}

/** The result of a job as the semantic conventions name it (`cicd.pipeline.task.run.result`), from what runners pass. */
export function taskResult(word: string | undefined): string | undefined {
  if (word === undefined || word === '') return undefined;
  const w = word.toLowerCase();
  if (/^\d+$/.test(w)) return w === '0' ? 'success' : 'failure';
  if (['success', 'succeeded', 'passed', 'ok'].includes(w)) return 'success';
  if (['failure', 'failed', 'unstable'].includes(w)) return 'failure';
  if (['canceled', 'cancelled', 'cancellation', 'aborted'].includes(w)) return 'cancellation';
  if (['timeout', 'timed_out'].includes(w)) return 'timeout';
  if (['skipped', 'skip', 'not_built'].includes(w)) return 'skip';
  return 'error';
}
