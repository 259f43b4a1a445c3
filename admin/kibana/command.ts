// The Kibana part of `ci-audit setup`: credentials from options and the environment (the
// environment keeps secrets out of `ps`), the import, one line per outcome.
import { CiAuditError } from '../../core/errors.ts';
import { importSavedObjects, type KibanaAuth } from './import.ts';

export interface KibanaSetupOptions {
  kibana: string;
  kibanaApiKey?: string;
  kibanaUser?: string;
  kibanaSpace?: string;
  kibanaOverwrite?: boolean;
  out?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function runKibanaSetup(options: KibanaSetupOptions): Promise<void> {
  const env = options.env ?? process.env;
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const apiKey = options.kibanaApiKey ?? env.KIBANA_API_KEY;
  const username = options.kibanaUser ?? env.KIBANA_USERNAME;
  const password = env.KIBANA_PASSWORD;
  if (username !== undefined && username !== '' && (password === undefined || password === '')) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `--kibana-user ${JSON.stringify(username)} needs its password in KIBANA_PASSWORD`);
  }
  const auth: KibanaAuth = {};
  if (apiKey !== undefined && apiKey !== '') auth.apiKey = apiKey;
  else if (username !== undefined && username !== '') Object.assign(auth, { username, password });
  const report = await importSavedObjects({
    url: options.kibana,
    auth,
    overwrite: options.kibanaOverwrite === true,
    ...(options.kibanaSpace === undefined ? {} : { space: options.kibanaSpace }),
  });
  out(`kibana    ${report.imported} saved object(s) imported, ${report.unchanged} already present and left unchanged${report.unchanged > 0 ? ' (--kibana-overwrite replaces them)' : ''}`);
}
