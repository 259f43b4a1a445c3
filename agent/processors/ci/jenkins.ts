// Jenkins build logs (`$JENKINS_HOME/jobs/<job>/builds/<n>/log`): who started the build and how it
// ended. The job name and build number come from the file's path.
import { cicdAttr, ecsAttr } from '../../../core/wire.ts';
import { ciEvent, ciResult, type CiParse, type Fields } from './ci-fields.ts';

const pathPattern = /\/jobs\/(.+?)\/builds\/(\d+)\/log$/;

export function jenkinsJobFromPath(path: string): Fields {
  const m = pathPattern.exec(path);
  if (m === null) return {};
  return { [cicdAttr.pipelineName]: (m[1] ?? '').replace(/\/jobs\//g, '/'), [cicdAttr.pipelineRunId]: m[2] ?? '' };
}

export function parseJenkins(line: string, path?: string): CiParse | undefined {
  let fields: Fields | undefined;
  let m: RegExpExecArray | null;
  if ((m = /^Started by user (.+)$/.exec(line)) !== null) {
    fields = ciEvent('ci_job_started');
    fields[ecsAttr.userName] = m[1] ?? '';
    fields[ecsAttr.relatedUser] = [m[1] ?? ''];
  } else if ((m = /^Started by (.+)$/.exec(line)) !== null) {
    fields = ciEvent('ci_job_started');
    fields['ci_audit.trigger'] = m[1] ?? '';
  } else if ((m = /^Finished: (\w+)$/.exec(line)) !== null) {
    fields = ciEvent('ci_job_finished', ciResult(m[1] ?? ''));
    fields[cicdAttr.pipelineResult] = ciResult(m[1] ?? '');
  } else if ((m = /^Checking out Revision ([0-9a-f]{7,64}) \((.*)\)$/.exec(line)) !== null) {
    fields = ciEvent('ci_checkout');
    fields[cicdAttr.refHeadRevision] = m[1] ?? '';
    fields[cicdAttr.refHeadName] = (m[2] ?? '').replace(/^(refs\/remotes\/origin\/|origin\/)/, '');
  } else if ((m = /^ > git config remote\.origin\.url (\S+)/.exec(line)) !== null) {
    fields = { [cicdAttr.repositoryUrl]: m[1] ?? '' };
  }
  if (fields === undefined) return undefined;
  if (path !== undefined) Object.assign(fields, jenkinsJobFromPath(path));
  return { parser: 'jenkins', fields, message: line };
}
