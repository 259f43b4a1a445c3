import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFile, stat, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { hasErrorCode } from '../../../core/errors.ts';
import { agentConfigSchema } from '../../../config/schema.ts';
import { runAgent, startAgent } from '../../../agent/run.ts';
import { checkpointPath, readCheckpoints } from '../../../agent/sources/file/checkpoint.ts';
import { captureLogger, tempDir, waitFor } from './helpers.ts';

/** A real OTLP/HTTP endpoint that answers 200 and keeps the (gunzipped) request bodies. */
async function aggregator(t: TestContext): Promise<{ url: string; bodies: Buffer[]; auth: (string | undefined)[] }> {
  const bodies: Buffer[] = [];
  const auth: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(gunzipSync(Buffer.concat(chunks)));
      auth.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, auth };
}

void test('startAgent ships the lines of a file, and stop() leaves the checkpoint at the end of what was acknowledged', async (t) => {
  const dir = await tempDir(t);
  const log = `${dir}/build.log`;
  await writeFile(log, 'job 1 started\njob 1 passed\n');
  const server = await aggregator(t);
  const config = agentConfigSchema.parse({
    agent: { id: 'runner-7', state_dir: `${dir}/state` },
    sources: [{ type: 'file', id: 'builds', include: [`${dir}/*.log`], dataset: 'ci' }],
    output: { url: server.url, token: 'agent-token', batch: { max_delay_ms: 20 } },
  });
  const { logger, lines } = captureLogger();
  const agent = await startAgent(config, logger, { pollIntervalMs: 50 });
  t.after(() => agent.stop());

  const shipped = (): string => Buffer.concat(server.bodies).toString('latin1');
  await waitFor(() => shipped().includes('job 1 passed'), 5000, 'the first lines at the aggregator');
  await appendFile(log, 'job 2 started\n');
  await waitFor(() => shipped().includes('job 2 started'), 5000, 'the appended line at the aggregator');
  assert.ok(shipped().includes('runner-7') && shipped().includes('ci-audit-agent'), 'resource attributes are sent');
  assert.ok(server.auth.every((a) => a === 'Bearer agent-token'));

  const started = lines.find((l) => l.msg === 'agent started');
  assert.equal(started?.agentId, 'runner-7');
  assert.deepEqual(started?.sources, ['builds']);
  assert.equal(started?.output, `${server.url}/v1/logs`);
  assert.ok(!JSON.stringify(lines).includes('agent-token'));

  await agent.stop();
  await agent.stop();
  const [entry] = await readCheckpoints(checkpointPath(`${dir}/state`, 'builds'));
  assert.equal(entry?.offset, (await stat(log)).size);
  assert.ok(lines.some((l) => l.msg === 'agent stopped'));
});

void test('runAgent reports configuration errors as CiAuditError', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(runAgent({ configFile: `${dir}/missing.yaml`, logger: captureLogger().logger }), (err: unknown) =>
    hasErrorCode(err, 'CIA_ERR_CONFIG_NOT_FOUND'),
  );
  await writeFile(`${dir}/agent.yaml`, 'sources: []\noutput:\n  url: http://127.0.0.1:4318\n');
  await assert.rejects(runAgent({ configFile: `${dir}/agent.yaml`, logger: captureLogger().logger }), (err: unknown) =>
    hasErrorCode(err, 'CIA_ERR_CONFIG_INVALID'),
  );
});

void test('runAgent runs until SIGTERM, then stops gracefully and resolves', async (t) => {
  const dir = await tempDir(t);
  const server = await aggregator(t);
  await writeFile(`${dir}/auth.log`, 'Accepted publickey for ci from 10.0.0.5\n');
  await writeFile(
    `${dir}/agent.yaml`,
    [
      'agent:',
      '  id: runner-8',
      '  state_dir: state',
      'sources:',
      '  - type: file',
      '    id: auth',
      '    include: ["*.log"]',
      '    dataset: auth',
      'output:',
      `  url: ${server.url}`,
      '  batch:',
      '    max_delay_ms: 20',
      '',
    ].join('\n'),
  );
  const { logger, lines } = captureLogger();
  const listenersBefore = process.listenerCount('SIGTERM');
  const running = runAgent({ configFile: `${dir}/agent.yaml`, logger });
  await waitFor(() => lines.some((l) => l.msg === 'agent started'), 5000, 'the start line');
  await waitFor(() => Buffer.concat(server.bodies).includes('Accepted publickey'), 5000, 'the line at the aggregator');
  process.emit('SIGTERM', 'SIGTERM');
  await running;
  assert.ok(lines.some((l) => l.msg === 'agent stopped'));
  assert.equal(process.listenerCount('SIGTERM'), listenersBefore);
  const [entry] = await readCheckpoints(checkpointPath(`${dir}/state`, 'auth'));
  assert.equal(entry?.offset, (await stat(`${dir}/auth.log`)).size);
});
