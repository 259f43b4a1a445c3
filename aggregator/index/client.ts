// The Elasticsearch client of the aggregator and the admin commands, built from configuration.
// Credentials come from `api_key`, `username`/`password`, or the URL's user info, in that order;
// they leave the URL, so no URL the client reports or we log carries them.
import { Client } from '@elastic/elasticsearch';
import { decodableUserInfo, type AggregatorConfig } from '../../config/schema.ts';
import { CiAuditError } from '../../core/errors.ts';

export type ConnectionConfig = Pick<AggregatorConfig['elasticsearch'], 'url' | 'username' | 'password' | 'api_key' | 'request_timeout_ms'>;

export function createClient(es: ConnectionConfig): { client: Client; url: string } {
  // The configuration loader holds elasticsearch.url and ES_URL to this already; a caller that
  // did not use it gets the same errors, without the URL, which may hold a password.
  if (!URL.canParse(es.url)) throw new CiAuditError('CIA_ERR_CONFIG_INVALID', 'elasticsearch.url: an http:// or https:// URL');
  const url = new URL(es.url);
  if (!decodableUserInfo(url)) throw new CiAuditError('CIA_ERR_CONFIG_INVALID', 'elasticsearch.url: a URL whose user name and password are percent-encoded (write % as %25)');
  const urlUser = decodeURIComponent(url.username);
  const urlPassword = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  let auth: { apiKey: string } | { username: string; password: string } | undefined;
  if (es.api_key !== undefined) auth = { apiKey: es.api_key };
  else if (es.username !== undefined) auth = { username: es.username, password: es.password ?? '' };
  else if (urlUser !== '') auth = { username: urlUser, password: urlPassword };
  const client = new Client({
    node: url.toString(),
    ...(auth === undefined ? {} : { auth }),
    requestTimeout: es.request_timeout_ms,
    // Retries are ours (per item, the readiness loop, the spool); the client's would hide failures.
    maxRetries: 0,
  });
  return { client, url: url.toString() };
}
