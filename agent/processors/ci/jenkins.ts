// Jenkins build logs (`$JENKINS_HOME/jobs/<job>/builds/<n>/log`): who started the build and how it
// ended. The job name and build number come from the file's path.
import { cicdAttr, ecsAttr } from '../../../core/wire.ts';
import { ciEvent, ciResult, type CiParse, type Fields } from './ci-fields.ts';

const pathPattern = /\/jobs\/(.+?)\/builds\/(\d+)\/log$/;

/**
 * The job's full name (folders joined by `/`) and the build's BUILD_TAG, as Jenkins forms it
 * (`Run.getCharacteristicEnvVars`: "jenkins-" + full name with every '/' replaced by '-' + "-" +
 * number): the run id the job hook reports, unique where BUILD_NUMBER is not.
 */
function jenkinsBuildOf(path: string): { job: string; runId: string } | undefined {
  const m = pathPattern.exec(path);
  if (m === null) return undefined;
  const job = (m[1] ?? '').replace(/\/jobs\//g, '/');
  return { job, runId: `jenkins-${job.replaceAll('/', '-')}-${m[2] ?? ''}` };
}

/** The BUILD_TAG of the build whose log `path` is; undefined for other paths. */
export function jenkinsRunIdFromPath(path: string): string | undefined {
  return jenkinsBuildOf(path)?.runId;
}

export function jenkinsJobFromPath(path: string): Fields {
  const build = jenkinsBuildOf(path);
  if (build === undefined) return {};
  return { [cicdAttr.pipelineName]: build.job, [cicdAttr.pipelineRunId]: build.runId };
}

export function parseJenkins(line: string, path?: string): CiParse | undefined {
  let fields: Fields | undefined;
  let m: RegExpExecArray | null;
  if ((m = /^Started by user (.+)$/.exec(line)) !== null) {
    // The user's display name, not the id the hook gives as user.name (BUILD_USER_ID).
    fields = ciEvent('ci_job_started');
    fields[ecsAttr.userFullName] = m[1] ?? '';
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
