// detectCapabilities over a real local HTTP server answering like Elasticsearch does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createClient } from '../../../../aggregator/index/client.ts';
import { detectCapabilities } from '../../../../aggregator/retention/apply.ts';

async function answering(t: { after: (fn: () => Promise<void>) => void }, statusOf: (path: string) => number): Promise<string> {
  const server = createServer((req, res) => {
    const status = statusOf((req.url ?? '').split('?')[0]!);
    const body =
      status === 400
        ? { error: `no handler found for uri [${req.url ?? ''}] and method [GET]` }
        : status === 403
          ? { error: { type: 'security_exception', reason: 'action [cluster:monitor/...] is unauthorized for user [ci_audit_retention]' }, status: 403 }
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

void test('both answering 200: both present; an unreachable cluster: neither', async (t) => {
  const url = await answering(t, () => 200);
  const { client } = createClient({ url, request_timeout_ms: 2000 });
  t.after(() => client.close());
  assert.deepEqual(await detectCapabilities(client), { lifecycle: true, ilm: true });
  const { client: nowhere } = createClient({ url: 'http://127.0.0.1:1', request_timeout_ms: 2000 });
  t.after(() => nowhere.close());
  assert.deepEqual(await detectCapabilities(nowhere), { lifecycle: false, ilm: false });
});
