// The file a job hook leaves in the spool folder for the agent: one JSON object per call, written
// to a temp name and renamed, so the agent never reads half a file. Parsing is pure and total:
// anything that is not a well-formed hook file is an error string, never an exception.
import type { CiKind, JobContext } from './job-context.ts';

export type HookPhase = 'started' | 'completed';

export interface HookFile {
  v: 1;
  phase: HookPhase;
  context: JobContext;
  /** `cicd.pipeline.task.run.result` on completed, when the runner passed one. */
  result?: string;
  /** Pid of the hook process (for the record; the agent trusts the file's owner, not this). */
  pid: number;
  /** When the hook ran, milliseconds since the epoch. */
  time: number;
}

/** Largest hook file the agent reads; a job's environment values are capped well below it. */
export const maxHookFileBytes = 64 * 1024;

/** `<time>-<pid>-<phase>.json`: sorting the names sorts the calls by time. */
export const hookFileName = /^(\d{13})-(\d{1,10})-(started|completed)\.json$/;

export function hookFileNameOf(file: HookFile): string {
  return `${String(file.time).padStart(13, '0')}-${file.pid}-${file.phase}.json`;
}

const ciKinds: readonly CiKind[] = ['github_actions', 'gitlab', 'buildkite', 'jenkins'];

export function parseHookFile(text: string): HookFile | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof raw !== 'object' || raw === null) return 'not a JSON object';
  const o = raw as Record<string, unknown>;
  if (o.v !== 1) return `unknown version ${JSON.stringify(o.v)}`;
  if (o.phase !== 'started' && o.phase !== 'completed') return 'phase must be started or completed';
  if (!Number.isSafeInteger(o.pid) || !Number.isSafeInteger(o.time)) return 'pid and time must be integers';
  const c = o.context as Record<string, unknown> | null | undefined;
  if (typeof c !== 'object' || c === null) return 'context missing';
  if (!ciKinds.includes(c.ci as CiKind)) return 'context.ci is not a known CI';
  if (typeof c.runner !== 'string' || c.runner === '' || typeof c.jobKey !== 'string' || c.jobKey === '') return 'context.runner and context.jobKey must be non-empty strings';
  const attrs = c.attributes as Record<string, unknown> | null | undefined;
  if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) return 'context.attributes must be an object';
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v !== 'string') return `context.attributes.${k.slice(0, 64)} is not a string`;
    // Only the names the hook writes: a forged file cannot set arbitrary fields (e.g. event.*).
    if (!/^(?:cicd|vcs|ci_audit\.job)\.[a-z_.]+$|^user\.name$/.test(k)) return `context.attributes has a field the hook does not write: ${k.slice(0, 64)}`;
    attributes[k] = v;
  }
  const file: HookFile = {
    v: 1,
    phase: o.phase,
    context: { ci: c.ci as CiKind, runner: c.runner, jobKey: c.jobKey, attributes },
    pid: o.pid as number,
    time: o.time as number,
  };
  if (typeof o.result === 'string' && o.result !== '') file.result = o.result;
  return file;
}
