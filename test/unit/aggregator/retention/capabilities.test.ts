// detectCapabilities over a real local HTTP server answering like Elasticsearch does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createClient } from '../../../../aggregator/index/client.ts';
import { hasErrorCode } from '../../../../core/errors.ts';
import { detectCapabilities } from '../../../../aggregator/retention/apply.ts';
import { chooseMechanism } from '../../../../aggregator/retention/policy.ts';

async function answering(t: { after: (fn: () => Promise<void>) => void }, statusOf: (path: string) => number | 'never'): Promise<string> {
  const server = createServer((req, res) => {
    const status = statusOf((req.url ?? '').split('?')[0]!);
    if (status === 'never') return; // hangs until the client's request timeout
    const body =
      status === 400
        ? { error: `no handler found for uri [${req.url ?? ''}] and method [GET]` }
        : status === 403
          ? { error: { type: 'security_exception', reason: 'action [cluster:monitor/...] is unauthorized for user [ci_audit_retention]' }, status: 403 }
          : status === 410
            ? { error: { type: 'api_not_available_exception', reason: `Request for uri [${req.url ?? ''}] with method [GET] exists but is not available when running in serverless mode` }, status: 410 }
            : status === 503
              ? { error: { type: 'master_not_discovered_exception', reason: null }, status: 503 }
              : {};
    res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

void test('a feature the cluster lacks (400 no handler) is absent; one this credential may not read (403) is present', async (t) => {
  const url = await answering(t, (path) => (path === '/_data_stream/_lifecycle/stats' ? 403 : 400));
  const { client } = createClient({ url, request_timeout_ms: 2000 });
  t.after(() => client.close());
  assert.deepEqual(await detectCapabilities(client), { lifecycle: true, ilm: false });
});

void test('both answering 200: both present; 404 and 410 (serverless "not available"): absent', async (t) => {
  const url = await answering(t, () => 200);
  const { client } = createClient({ url, request_timeout_ms: 2000 });
  t.after(() => client.close());
  assert.deepEqual(await detectCapabilities(client), { lifecycle: true, ilm: true });
  const gone = await answering(t, (path) => (path === '/_ilm/status' ? 410 : 404));
  const { client: serverless } = createClient({ url: gone, request_timeout_ms: 2000 });
  t.after(() => serverless.close());
  assert.deepEqual(await detectCapabilities(serverless), { lifecycle: false, ilm: false });
});

void test('a transient error (503, 429, a timeout, no connection) is "cannot tell", never "absent"; choosing a mechanism from it fails (unavailable when nothing answered)', async (t) => {
  const cases: Array<[string, (path: string) => number | 'never']> = [
    ['503', () => 503],
    ['429 on ILM', (path) => (path === '/_ilm/status' ? 429 : 400)],
    ['timeout', () => 'never'],
  ];
  for (const [name, statusOf] of cases) {
    const url = await answering(t, statusOf);
    const { client } = createClient({ url, request_timeout_ms: 300 });
    t.after(() => client.close());
    const caps = await detectCapabilities(client);
    assert.equal(caps.ilm, 'unknown', name);
    assert.equal(caps.lifecycle, name === '429 on ILM' ? false : 'unknown', name);
    assert.match(caps.unknownBecause ?? '', /GET \/_ilm\/status/, name);
    // No answer at all is Elasticsearch unavailable; an answer that decides nothing, undetermined.
    const code = name === 'timeout' ? 'CIA_ERR_ES_UNAVAILABLE' : 'CIA_ERR_RETENTION_UNDETERMINED';
    assert.throws(() => chooseMechanism('auto', caps), (err: unknown) => hasErrorCode(err, code), name);
  }
  const { client: nowhere } = createClient({ url: 'http://127.0.0.1:1', request_timeout_ms: 2000 });
  t.after(() => nowhere.close());
  const caps = await detectCapabilities(nowhere);
  assert.deepEqual([caps.lifecycle, caps.ilm], ['unknown', 'unknown']);
  assert.throws(() => chooseMechanism('auto', caps), (err: unknown) => hasErrorCode(err, 'CIA_ERR_ES_UNAVAILABLE') && /could not tell whether this cluster offers the data stream lifecycle/.test(err.message));
});
