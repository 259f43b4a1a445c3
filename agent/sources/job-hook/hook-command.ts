// `ci-audit hook job-started|job-completed`: run by the CI runner around each job, it hands the
// job's context (from its environment) to the local agent through the spool folder. The agent is a
// host service and cannot see a job's environment; this is the only way in.
//
// By default a hook that cannot hand over its context warns on stderr and exits 0: an audit
// add-on must not fail builds. `--strict` (or CI_AUDIT_HOOK_STRICT=1) makes it fail the job.
// Nothing from the environment is printed: messages name variables, never values.
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CiAuditError } from '../../../core/errors.ts';
import { jobContextFromEnv, taskResult } from './job-context.ts';
import { hookFileNameOf, type HookFile, type HookPhase } from './hook-file.ts';

export const defaultSpoolDir = '/var/lib/ci-audit/job-hooks';

export interface HookOptions {
  phase: HookPhase;
  /** Spool folder; default CI_AUDIT_HOOK_DIR, else /var/lib/ci-audit/job-hooks. */
  dir?: string;
  strict?: boolean;
  /** The job's result (completed): success/failed/canceled/an exit status. Default: CI_JOB_STATUS, BUILDKITE_COMMAND_EXIT_STATUS. */
  result?: string;
  env?: Readonly<Record<string, string | undefined>>;
  now?: number;
  pid?: number;
}

/** Writes the hook file; returns its path. Throws CIA_ERR_HOOK_* (the caller decides strict or not). */
export async function writeHook(options: HookOptions): Promise<string> {
  const env = options.env ?? process.env;
  const dir = options.dir ?? env.CI_AUDIT_HOOK_DIR ?? defaultSpoolDir;
  const context = jobContextFromEnv(env);
  if (context === undefined) {
    throw new CiAuditError(
      'CIA_ERR_HOOK_CONTEXT',
      'no CI job found in the environment (none of GITHUB_RUN_ID, CI_JOB_ID, BUILDKITE_JOB_ID, BUILD_TAG is set); run the hook from the runner\'s job hook',
    );
  }
  const file: HookFile = { v: 1, phase: options.phase, context, pid: options.pid ?? process.pid, time: options.now ?? Date.now() };
  if (options.phase === 'completed') {
    const result = taskResult(options.result ?? env.CI_JOB_STATUS ?? env.BUILDKITE_COMMAND_EXIT_STATUS);
    if (result !== undefined) file.result = result;
  }
  const target = join(dir, hookFileNameOf(file));
  const tmp = join(dir, `.tmp-${file.pid}-${file.time}`);
  try {
    // 0o640: the agent (root or in the runner's group) reads it; other jobs' users cannot.
    const handle = await open(tmp, 'wx', 0o640);
    try {
      await handle.writeFile(JSON.stringify(file), 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new CiAuditError(
      'CIA_ERR_HOOK_WRITE',
      `cannot write the job context into ${dir} (${(cause as NodeJS.ErrnoException).code ?? 'error'}); check that the agent's job_hooks.spool_dir exists and the runner's user may write to it, or set CI_AUDIT_HOOK_DIR`,
      { cause, details: { path: dir } },
    );
  }
  return target;
}

/** Runs the hook as the command line does: returns the exit code, never throws. */
export async function runHook(options: HookOptions, stderr: (line: string) => void = (l) => process.stderr.write(l)): Promise<number> {
  const env = options.env ?? process.env;
  const strict = options.strict === true || env.CI_AUDIT_HOOK_STRICT === '1' || env.CI_AUDIT_HOOK_STRICT === 'true';
  try {
    await writeHook(options);
    return 0;
  } catch (err) {
    const code = (err as CiAuditError).code ?? 'CIA_ERR_HOOK_WRITE';
    // Our own messages only: they name paths and variables, never values from the environment.
    const message = err instanceof CiAuditError ? err.message : 'unexpected error';
    stderr(`ci-audit hook: ${strict ? 'error' : 'warning'}: ${code}: ${message}${strict ? '' : ' (the job continues; --strict makes this fail it)'}\n`);
    return strict ? 1 : 0;
  }
}
