// GitHub Actions self-hosted runner `_diag/Runner_*.log` and `_diag/Worker_*.log`:
//   [2024-05-01 12:34:56Z INFO JobDispatcher] Job request 123 for plan 8f.. job 1a.. received.
//   [2024-05-01 12:34:57Z INFO Terminal] WRITE LINE: 2024-05-01 12:34:57Z: Running job: build
//   [2024-05-01 12:35:30Z INFO Terminal] WRITE LINE: 2024-05-01 12:35:30Z: Job build completed with result: Succeeded
import { cicdAttr } from '../../../core/wire.ts';
import { rfc3339Time } from '../syslog/time.ts';
import { ciEvent, ciResult, type CiParse, type Fields } from './ci-fields.ts';

const header = /^\[(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (\w+) ([\w.]+)\] (.*)$/s;

export function parseGithubActions(line: string): CiParse | undefined {
  const h = header.exec(line);
  if (h === null) return undefined;
  const message = h[5] ?? '';
  const time = rfc3339Time(`${h[1]}T${h[2]}`);
  let fields: Fields = { 'log.logger': h[4] ?? '' };
  let m: RegExpExecArray | null;
  if ((m = /Running job: (.+)$/.exec(message)) !== null) {
    fields = { ...ciEvent('ci_job_started'), [cicdAttr.taskName]: m[1] ?? '' };
  } else if ((m = /Job (.+) completed with result: (\w+)/.exec(message)) !== null) {
    fields = { ...ciEvent('ci_job_finished', ciResult(m[2] ?? '')), [cicdAttr.taskName]: m[1] ?? '' };
  } else if ((m = /^Job request (\d+) for plan (\S+) job (\S+) received/.exec(message)) !== null) {
    fields = { ...ciEvent('ci_job_assigned'), [cicdAttr.pipelineRunId]: m[2] ?? '', [cicdAttr.taskRunId]: m[3] ?? '' };
  } else if (/Listening for Jobs/.test(message)) {
    fields = ciEvent('ci_runner_online');
  } else if (/Runner successfully added|Runner successfully replaced|Runner reconfigured|Settings Saved/.test(message)) {
    fields = ciEvent('ci_runner_registered');
  }
  const result: CiParse = { parser: 'github_actions', fields, message };
  if (time !== undefined) result.time = time;
  return result;
}

const stepHeader = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z) /;

/**
 * A step's output line in `_diag/pages/*.log`, which the runner prefixes with the UTC time it
 * wrote it (`2024-05-01T12:34:56.1234567Z npm ci`): only that time. No `message` is cut from it:
 * step output is where secrets show, and the redaction of a private-key block covers the line.
 */
export function parseGithubStepLine(line: string): CiParse | undefined {
  const h = stepHeader.exec(line);
  if (h === null) return undefined;
  const time = rfc3339Time(h[1] ?? '');
  if (time === undefined) return undefined;
  return { parser: 'github_actions', fields: {}, time };
}
