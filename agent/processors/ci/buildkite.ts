// Buildkite agent log (`buildkite-agent start`, files or journal):
//   2024-05-01 12:34:56 INFO   Assigned job 01890000-aaaa-bbbb-cccc-000000000001. Accepting...
//   2024-05-01 12:34:57 INFO   Starting job 01890000-... for build at https://buildkite.com/org/pipe/builds/42
//   2024-05-01 12:35:30 INFO   Finished job 01890000-... for build at https://buildkite.com/org/pipe/builds/42
import { cicdAttr } from '../../../core/wire.ts';
import { rfc3339Time } from '../syslog/time.ts';
import { ciEvent, type CiParse, type Fields } from './ci-fields.ts';

const header = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (DEBUG|INFO|NOTICE|WARN|ERROR|FATAL)\s+(.*)$/s;

export function parseBuildkite(line: string): CiParse | undefined {
  const h = header.exec(line);
  if (h === null) return undefined;
  const message = h[4] ?? '';
  let fields: Fields = {};
  let m: RegExpExecArray | null;
  if ((m = /^Assigned job ([0-9a-f-]{36})/.exec(message)) !== null) fields = { ...ciEvent('ci_job_assigned'), [cicdAttr.taskRunId]: m[1] ?? '' };
  else if ((m = /^Starting job ([0-9a-f-]{36})(?: for build at (\S+))?/.exec(message)) !== null) {
    fields = { ...ciEvent('ci_job_started'), [cicdAttr.taskRunId]: m[1] ?? '' };
    if (m[2] !== undefined) fields[cicdAttr.pipelineRunUrl] = m[2];
  } else if ((m = /^Finished job ([0-9a-f-]{36})(?: for build at (\S+))?/.exec(message)) !== null) {
    fields = { ...ciEvent('ci_job_finished'), [cicdAttr.taskRunId]: m[1] ?? '' };
    if (m[2] !== undefined) fields[cicdAttr.pipelineRunUrl] = m[2];
  } else if (/^Successfully registered agent/.test(message)) fields = ciEvent('ci_runner_registered');
  // The agent writes local time without a zone; treated as UTC unless the line says otherwise
  // (docs/parsing.md). Most installs run the agent with TZ=UTC.
  const time = rfc3339Time(`${h[1]}T${h[2]}Z`);
  const result: CiParse = { parser: 'buildkite', fields, message };
  if (time !== undefined) result.time = time;
  return result;
}
