import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../config/schema.ts';
import { hasErrorCode } from '../../../core/errors.ts';
import { runAggregator, startAggregator } from '../../../aggregator/run.ts';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function collectingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

void test('startAggregator listens on port 0, logs the bound url, answers 503 until Elasticsearch is ready, closes twice', async (t) => {
  const config = aggregatorConfigSchema.parse({
    listen: { port: 0 },
    elasticsearch: { url: `http://127.0.0.1:${await closedPort()}` },
  });
  const { logger, lines } = collectingLogger();
  const handle = await startAggregator(config, logger);
  t.after(() => handle.close());
  assert.match(handle.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(handle.url, 'http://127.0.0.1:0');
  const listening = lines.find((l) => l.msg === 'receiver listening');
  assert.equal(listening?.url, handle.url);

  const health = await fetch(`${handle.url}/healthz`);
  assert.equal(health.status, 503);
  const post = await fetch(`${handle.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(post.status, 503);
  assert.ok(post.headers.get('retry-after'));

  await handle.close();
  await handle.close();
  await assert.rejects(fetch(`${handle.url}/healthz`));
});

void test('a port in use fails with CIA_ERR_RECEIVER_LISTEN naming the option', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const config = aggregatorConfigSchema.parse({ listen: { port }, elasticsearch: { url: `http://127.0.0.1:${await closedPort()}` } });
  await assert.rejects(startAggregator(config, pino({ level: 'silent' })), (err: unknown) => {
    assert.ok(hasErrorCode(err, 'CIA_ERR_RECEIVER_LISTEN'));
    assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(listen\\.host, listen\\.port\\)`));
    return true;
  });
});

void test('runAggregator runs from a config file until SIGTERM, then shuts down gracefully', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-aggregator-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'aggregator.yaml');
  // ES_URL, when the test runs under the Elasticsearch harness, takes precedence over this URL.
  await writeFile(file, `listen:\n  port: 0\nelasticsearch:\n  url: http://127.0.0.1:${await closedPort()}\n`);
  const { logger, lines } = collectingLogger();
  const running = runAggregator({ configFile: file, logger });
  await until(() => lines.some((l) => l.msg === 'receiver listening'), 'receiver listening');
  const url = String(lines.find((l) => l.msg === 'receiver listening')!.url);
  assert.ok([200, 503].includes((await fetch(`${url}/healthz`)).status));
  await until(() => process.listeners('SIGTERM').length > 0, 'the SIGTERM handler');
  process.kill(process.pid, 'SIGTERM');
  await running;
  assert.ok(lines.some((l) => l.msg === 'aggregator stopped'));
  assert.equal(process.listeners('SIGTERM').length, 0);
  await assert.rejects(fetch(`${url}/healthz`));
});
