// The agent's HTTP client loads undici's Agent and request API on their own (agent/sinks/http-client.ts):
// these tests send real requests through them, and check in a fresh process that `agent run`'s
// modules leave undici's entry point (and, without `http:` configured, prom-client) unloaded.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from '../../../agent/sinks/http-client.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('agent HTTP client', () => {
  const seen: { method: string | undefined; url: string | undefined; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain', 'retry-after': '7' }).end(`answer to ${req.method} ${req.url}`);
    });
  });
  let base: URL;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the method, path with query, headers and body through the given dispatcher, and returns the answer', async () => {
    const dispatcher = new Agent();
    try {
      const response = await request(dispatcher, new URL('/v1/logs?x=1&y=2', base), {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: 'Bearer t0k3n' },
        body: Buffer.from('payload bytes'),
      });
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['retry-after'], '7');
      assert.equal(await response.body.text(), 'answer to POST /v1/logs?x=1&y=2');
      const last = seen.at(-1)!;
      assert.equal(last.method, 'POST');
      assert.equal(last.url, '/v1/logs?x=1&y=2');
      assert.equal(last.headers['content-type'], 'application/x-protobuf');
      assert.equal(last.headers.authorization, 'Bearer t0k3n');
      assert.equal(last.body, 'payload bytes');

      const missing = await request(dispatcher, new URL('/missing', base), { method: 'GET' });
      assert.equal(missing.statusCode, 404);
      assert.equal(await missing.body.text(), 'answer to GET /missing');
    } finally {
      await dispatcher.close();
    }
  });

  it('rejects with the connection error when nothing listens', async () => {
    const dispatcher = new Agent({ connect: { timeout: 2000 } });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    try {
      await assert.rejects(request(dispatcher, new URL(`http://127.0.0.1:${port}/v1/logs`), { method: 'POST', body: 'x' }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ECONNREFUSED');
        return true;
      });
    } finally {
      await dispatcher.close();
    }
  });

  it("leaves undici's entry point and prom-client out of the agent's modules", async () => {
    const script = [
      "import { createRequire } from 'node:module';",
      "await import('./agent/run.ts');",
      "const loaded = Object.keys(createRequire(import.meta.url).cache);",
      'console.log(JSON.stringify(loaded));',
    ].join('\n');
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    const loaded = JSON.parse(stdout) as string[];
    assert.ok(loaded.some((path) => path.endsWith('/undici/lib/dispatcher/agent.js')), 'the dispatcher itself is loaded');
    assert.deepEqual(loaded.filter((path) => path.endsWith('/undici/index.js')), []);
    assert.deepEqual(loaded.filter((path) => path.includes('/node_modules/prom-client/')), []);
  });
});
