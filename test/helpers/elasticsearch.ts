// Helpers for the aggregator's integration tests against the real Elasticsearch named by ES_URL.
import { randomBytes } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';

/** ES_URL (credentials in its user info), or a failure that says how to get one. Never skipped. */
export function requireEsUrl(): string {
  const url = process.env.ES_URL;
  if (url === undefined || url === '') {
    throw new Error(
      'ES_URL is not set: these tests need a real Elasticsearch. Run them through the harness, e.g. ' +
        "`node scripts/elasticsearch.ts run -- node --test 'test/integration/aggregator/*.test.ts'`, or set ES_URL=http://user:password@host:9200",
    );
  }
  return url;
}

/** The password in ES_URL, so tests can check that no log line carries it. */
export function esPassword(url: string): string {
  return decodeURIComponent(new URL(url).password);
}

/** A client for test assertions, authenticated from the URL's user info. */
export function esClient(url: string): Client {
  const parsed = new URL(url);
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  return new Client({ node: parsed.toString(), ...(username === '' ? {} : { auth: { username, password } }) });
}

/** A namespace of its own per test, so that tests never see each other's data streams. */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/**
 * Removes what a test indexed into `logs-ci_audit.*-<namespace>`. With the data stream API (full
 * distributions) the streams are deleted. The integ-test distribution has no such API and refuses
 * to delete a stream's write index, so there each stream is rolled over and its old backing indices
 * deleted: an empty stream remains, in a namespace no other test uses.
 */
export async function cleanupNamespace(client: Client, namespace: string): Promise<void> {
  const pattern = `logs-ci_audit.*-${namespace}`;
  try {
    await client.indices.deleteDataStream({ name: pattern });
    return;
  } catch {
    // no data stream API here (or nothing to delete): fall through
  }
  const resolved = await client.indices.resolveIndex({ name: pattern, expand_wildcards: 'all' });
  for (const stream of resolved.data_streams) {
    await client.indices.rollover({ alias: stream.name });
    const after = await client.indices.resolveIndex({ name: stream.name, expand_wildcards: 'all' });
    const backing = after.data_streams[0]?.backing_indices ?? [];
    const old = backing.slice(0, -1);
    if (old.length > 0) await client.indices.delete({ index: old });
  }
}

/**
 * Polls until `check` is true. A check that throws counts as not yet: right after a data stream is
 * created, a search can fail while its shard is still being allocated
 * (no_shard_available_action_exception). The last error is named if time runs out.
 */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last check failed: ${(lastError as Error).message})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
