// GitLab Runner, as logfmt (`--log-format json` aside, the service's default in files) or as the
// journal shows its text format:
//   time="2024-05-01T12:34:56Z" level=info msg="Checking for jobs... received" job=1234 repo_url="https://gitlab.com/g/p.git" runner=abcd1234
//   Job succeeded                                       duration_s=12.3 job=1234 project=55 runner=abcd1234
//   WARNING: Job failed: exit code 1                    duration_s=51.6 job=1234 project=55 runner=abcd1234
// (the `runner` format puts the level before the message for warnings and errors: WARNING:, ERROR:).
import { cicdAttr } from '../../../core/wire.ts';
import { rfc3339Time } from '../syslog/time.ts';
import { ciEvent, ciResult, type CiParse, type Fields } from './ci-fields.ts';

const pair = /(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/g;

function logfmt(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(pair)) out[m[1] ?? ''] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  return out;
}

export function parseGitlabRunner(line: string): CiParse | undefined {
  let kv: Record<string, string>;
  let message: string;
  if (line.startsWith('time=') || line.includes(' msg="')) {
    kv = logfmt(line);
    message = kv.msg ?? '';
  } else {
    const m = /^(.*?\S)\s{2,}((?:\w+=\S+\s*)+)$/.exec(line);
    if (m === null) return undefined;
    message = m[1] ?? '';
    kv = logfmt(m[2] ?? '');
  }
  if (kv.runner === undefined && kv.job === undefined && !/runner/i.test(message)) return undefined;
  let fields: Fields = {};
  let m: RegExpExecArray | null;
  if (/^Checking for jobs\.\.\. received/.test(message)) fields = ciEvent('ci_job_assigned');
  else if (/^(?:[A-Z]+: )?Job succeeded/.test(message)) fields = ciEvent('ci_job_finished', 'success');
  else if ((m = /^(?:[A-Z]+: )?Job failed(?:: (.*))?/.exec(message)) !== null) {
    fields = ciEvent('ci_job_finished', /canceled/.test(m[1] ?? '') ? 'cancellation' : /timeout|execution took longer/.test(m[1] ?? '') ? 'timeout' : ciResult('failed'));
  } else if (/Runner registered successfully|Registering runner\.\.\. succeeded/.test(message)) fields = ciEvent('ci_runner_registered');
  else if (/^Configuration loaded/.test(message)) fields = ciEvent('ci_runner_online');
  if (kv.job !== undefined) fields[cicdAttr.taskRunId] = kv.job;
  if (kv.repo_url !== undefined) fields[cicdAttr.repositoryUrl] = kv.repo_url;
  if (kv.runner !== undefined) fields[cicdAttr.workerId] = kv.runner;
  if (kv.project !== undefined) fields['gitlab.project.id'] = kv.project;
  const result: CiParse = { parser: 'gitlab_runner', fields, message };
  const time = kv.time === undefined ? undefined : rfc3339Time(kv.time);
  if (time !== undefined) result.time = time;
  return result;
}
