// The Elasticsearch client of the aggregator and the admin commands, built from configuration.
// Credentials come from `api_key`, `username`/`password`, or the URL's user info, in that order;
// they leave the URL, so no URL the client reports or we log carries them.
import { Client } from '@elastic/elasticsearch';
import type { AggregatorConfig } from '../../config/schema.ts';

export type ConnectionConfig = Pick<AggregatorConfig['elasticsearch'], 'url' | 'username' | 'password' | 'api_key' | 'request_timeout_ms'>;

export function createClient(es: ConnectionConfig): { client: Client; url: string } {
  const url = new URL(es.url);
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
