// `ci-audit setup --kibana <url>`: imports deploy/kibana/ci-audit.ndjson through Kibana's saved
// objects import API (multipart/form-data, file part `file`, header `kbn-xsrf`). Idempotent: without
// overwrite an object that already exists is a conflict Kibana leaves alone, reported as unchanged;
// with overwrite each is replaced. Credentials (API key, basic auth, or the URL's user info) go in
// the Authorization header only: no message, detail or log line carries them or the URL's user info.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CiAuditError } from '../../core/errors.ts';

export const savedObjectsFile = fileURLToPath(new URL('../../deploy/kibana/ci-audit.ndjson', import.meta.url));

export interface KibanaAuth {
  apiKey?: string;
  username?: string;
  password?: string;
}

export interface ImportOptions {
  url: string;
  auth?: KibanaAuth;
  overwrite: boolean;
  /** A Kibana space other than the default one. */
  space?: string;
  ndjson?: string;
  timeoutMs?: number;
}

export interface ImportRequest {
  /** Without user info. */
  url: string;
  /** The same URL for messages (no user info, no query secrets). */
  shownUrl: string;
  headers: Record<string, string>;
  body: FormData;
}

export interface ImportReport {
  imported: number;
  unchanged: number;
}

/** The request, built without sending it: a pure function of the options. */
export function buildImportRequest(options: ImportOptions & { ndjson: string }): ImportRequest {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', '--kibana is not a URL: give e.g. https://kibana.example.com:5601');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CiAuditError('CIA_ERR_CLI_USAGE', `--kibana must be an http or https URL, not ${base.protocol}`);
  const urlUser = decodeURIComponent(base.username);
  const urlPassword = decodeURIComponent(base.password);
  base.username = '';
  base.password = '';
  base.search = '';
  base.hash = '';
  if (options.space !== undefined && !/^[a-z0-9_-]{1,100}$/.test(options.space)) {
    throw new CiAuditError('CIA_ERR_CLI_USAGE', `--kibana-space ${JSON.stringify(options.space)} is not a space id (lower-case letters, digits, _ and -)`);
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  const space = options.space === undefined || options.space === 'default' ? '' : `/s/${options.space}`;
  const target = new URL(base.toString());
  target.pathname = `${prefix}${space}/api/saved_objects/_import`;
  target.searchParams.set('overwrite', String(options.overwrite));

  const headers: Record<string, string> = { 'kbn-xsrf': 'ci-audit' };
  const auth = options.auth ?? {};
  if (auth.apiKey !== undefined && auth.apiKey !== '') headers.authorization = `ApiKey ${auth.apiKey}`;
  else if (auth.username !== undefined && auth.username !== '') headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
  else if (urlUser !== '') headers.authorization = `Basic ${Buffer.from(`${urlUser}:${urlPassword}`).toString('base64')}`;

  const body = new FormData();
  body.append('file', new Blob([options.ndjson], { type: 'application/ndjson' }), 'ci-audit.ndjson');
  return { url: target.toString(), shownUrl: target.toString(), headers, body };
}

interface ImportResponse {
  success?: boolean;
  successCount?: number;
  errors?: Array<{ id?: string; type?: string; error?: { type?: string; message?: string } }>;
  message?: string;
}

/** Imports the saved objects; a CIA_ERR_KIBANA_* error says what Kibana refused. */
export async function importSavedObjects(options: ImportOptions): Promise<ImportReport> {
  const ndjson = options.ndjson ?? (await readFile(savedObjectsFile, 'utf8'));
  const request = buildImportRequest({ ...options, ndjson });
  let response: Response;
  try {
    response = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new CiAuditError('CIA_ERR_KIBANA_UNAVAILABLE', `Kibana could not be reached at ${request.shownUrl} (${reason}): check the URL and that Kibana is running`, { details: { url: request.shownUrl } });
  }
  const text = await response.text();
  let parsed: ImportResponse = {};
  try {
    parsed = JSON.parse(text) as ImportResponse;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  if (response.status === 401 || response.status === 403) {
    throw new CiAuditError('CIA_ERR_KIBANA_AUTH', `Kibana at ${request.shownUrl} refused the credentials (HTTP ${response.status}): give --kibana-api-key (or KIBANA_API_KEY) or --kibana-user with KIBANA_PASSWORD, for a user allowed to manage saved objects`, {
      details: { url: request.shownUrl, status: response.status },
    });
  }
  if (!response.ok) {
    const message = (parsed.message ?? text).slice(0, 300);
    throw new CiAuditError('CIA_ERR_KIBANA_IMPORT', `Kibana at ${request.shownUrl} refused the import (HTTP ${response.status}): ${message}`, { details: { url: request.shownUrl, status: response.status } });
  }
  const errors = parsed.errors ?? [];
  const conflicts = errors.filter((e) => e.error?.type === 'conflict');
  const others = errors.filter((e) => e.error?.type !== 'conflict');
  if (others.length > 0) {
    const list = others.map((e) => `${e.type ?? '?'} ${e.id ?? '?'}: ${e.error?.type ?? 'error'}${e.error?.message === undefined ? '' : ` (${e.error.message})`}`).join('; ');
    throw new CiAuditError('CIA_ERR_KIBANA_IMPORT', `Kibana at ${request.shownUrl} did not import ${others.length} saved object(s): ${list}`, { details: { url: request.shownUrl } });
  }
  return { imported: parsed.successCount ?? 0, unchanged: conflicts.length };
}
