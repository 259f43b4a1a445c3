// The agent's status (state folder + what the process knows), its HTTP endpoint with real sockets,
// and `ci-audit status` against it and without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import { loadAgentConfig } from '../../../../config/loader.ts';
import { checkpointPath, writeCheckpoints } from '../../../../agent/sources/file/checkpoint.ts';
import { ExportStats } from '../../../../agent/http/export-stats.ts';
import { startAgentHttp } from '../../../../agent/http/server.ts';
import { collectAgentStatus } from '../../../../agent/http/status.ts';
import { RejectedStore, rejectedDir } from '../../../../agent/rejected/rejected-store.ts';
import { runStatus } from '../../../../cli/status.ts';

const silent = pino({ level: 'silent' });

async function fixture(t: { after: (fn: () => Promise<void>) => void }, http = 'http: { listen: "127.0.0.1:0" }') {
  const dir = await mkdtemp(join(tmpdir(), 'cia-status-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'auth.log');
  await writeFile(log, 'line one\nline two\n');
  const configFile = join(dir, 'agent.yaml');
  await writeFile(configFile, [
    'agent: { id: runner-1, state_dir: ./state, runner_type: gitlab }',
    'sources:',
    '  - { type: file, id: auth, include: [auth.log], dataset: auth }',
    '  - { type: journald, id: journal, dataset: auth }',
    'output: { url: "https://user:secret@aggregator.example:4318" }',
    'buffer: { max_bytes: 1048576, segment_bytes: 65536 }',
    http,
    '',
  ].join('\n'));
  const { config } = await loadAgentConfig(configFile, {});
  const state = join(dir, 'state');
  await mkdir(join(state, 'buffer'), { recursive: true });
  const info = await stat(log, { bigint: true });
  // Checkpoint after the first line; the second is lag.
  await writeCheckpoints(checkpointPath(state, 'auth'), 'auth', [{ path: log, dev: info.dev.toString(), ino: info.ino.toString(), offset: 9, generation: 0 }]);
  await writeFile(join(state, 'buffer', '00000000000000000001.seg'), Buffer.alloc(1000));
  await writeFile(join(state, 'buffer', 'acked.json'), '{}');
  await writeFile(join(state, 'chain.json'), JSON.stringify({ committed: { seq: 41, hash: 'ab'.repeat(32) }, reserved: 4096, clean: true, key: 'k1' }));
  return { dir, log, configFile, config };
}

void test('status reads offsets, lag, buffer use and the chain head from the state folder', async (t) => {
  const { log, config } = await fixture(t);
  const status = await collectAgentStatus(config);
  assert.equal(status.agent.running, false);
  assert.equal(status.output.url, 'https://user:***@aggregator.example:4318/', 'no password in the status');
  assert.deepEqual(status.sources[0], { id: 'auth', type: 'file', dataset: 'auth', files: [{ path: log, offset: 9, size: 18, lag_bytes: 9 }], lag_bytes: 9 });
  assert.deepEqual(status.sources[1], { id: 'journal', type: 'journald', dataset: 'auth', cursor_saved: false });
  assert.deepEqual(status.buffer, { type: 'disk', bytes: 1000, max_bytes: 1048576, used_ratio: 1000 / 1048576, segments: 1 });
  assert.deepEqual(status.chain, { seq: 41, hash: 'ab'.repeat(32) });
  await appendFile(log, 'three\n');
  assert.equal((await collectAgentStatus(config)).sources[0]!.lag_bytes, 15);
});

void test('the endpoint answers /healthz, /metrics and /status; ci-audit status reads it, and falls back to the state folder', async (t) => {
  const { configFile, config } = await fixture(t);
  const stats = new ExportStats();
  // A real exporter call path: the wrapper sees the result the exporter reports.
  const inner: LogRecordExporter = { export: (logs, done) => done({ code: logs.length > 0 ? ExportResultCode.SUCCESS : ExportResultCode.FAILED, error: new Error('refused') }), shutdown: () => Promise.resolve(), forceFlush: () => Promise.resolve() };
  const exporter = stats.wrap(inner);
  exporter.export([{} as never, {} as never], () => undefined);
  exporter.export([], () => undefined);
  let healthy = true;
  const http = await startAgentHttp({
    listen: config.http!.listen,
    status: () => collectAgentStatus(config, { pid: process.pid, startedAt: new Date(), exports: stats.snapshot() }),
    healthy: () => healthy,
    logger: silent,
  });
  t.after(() => http.close());
  assert.match(http.url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const health = await request(`${http.url}/healthz`);
  assert.equal(health.statusCode, 200);
  assert.deepEqual(await health.body.json(), { status: 'ok' });
  const metrics = await request(`${http.url}/metrics`);
  assert.equal(metrics.statusCode, 200);
  const text = await metrics.body.text();
  assert.match(text, /^ci_audit_agent_acked_records 2$/m);
  assert.match(text, /^ci_audit_agent_failed_exports 1$/m);
  assert.match(text, /^ci_audit_agent_source_lag_bytes\{source="auth"\} 9$/m);
  assert.match(text, /^ci_audit_agent_buffer_bytes 1000$/m);
  assert.match(text, /^ci_audit_agent_chain_seq 41$/m);
  assert.match(text, /^ci_audit_agent_process_resident_memory_bytes \d+/m);
  assert.doesNotMatch(text, /secret/);
  const missing = await request(`${http.url}/nope`);
  assert.equal(missing.statusCode, 404);
  await missing.body.dump();
  const post = await request(`${http.url}/status`, { method: 'POST' });
  assert.equal(post.statusCode, 405);
  await post.body.dump();

  let out = '';
  const live = await runStatus({ configFile, url: http.url, requireRunning: true, write: (s) => (out += s) });
  assert.equal(live.agent.running, true);
  assert.equal(live.output.acked_records, 2);
  assert.match(out, /running: pid \d+/);
  assert.match(out, /last acknowledgement: \d{4}-\d\d-\d\dT/);
  assert.match(out, /chain head: seq 41/);
  assert.match(out, /auth \(file, dataset auth\): 1 files, lag 9 bytes/);

  healthy = false;
  const stopping = await request(`${http.url}/healthz`);
  assert.equal(stopping.statusCode, 503);
  await stopping.body.dump();
  await http.close();

  out = '';
  const offline = await runStatus({ configFile, url: http.url, write: (s) => (out += s) });
  assert.equal(offline.agent.running, false);
  assert.match(out, /not reached \(http:\/\/127\.0\.0\.1:\d+: .*\): read from /);
  await assert.rejects(runStatus({ configFile, url: http.url, requireRunning: true, write: () => undefined }), { code: 'CIA_ERR_AGENT_STATUS' });
});

void test('a port in use fails with CIA_ERR_AGENT_HTTP_LISTEN naming the option', async (t) => {
  const first = await startAgentHttp({ listen: '127.0.0.1:0', status: () => Promise.reject(new Error('unused')), healthy: () => true, logger: silent });
  t.after(() => first.close());
  const port = new URL(first.url).port;
  await assert.rejects(
    startAgentHttp({ listen: `127.0.0.1:${port}`, status: () => Promise.reject(new Error('unused')), healthy: () => true, logger: silent }),
    (err: Error & { code?: string }) => err.code === 'CIA_ERR_AGENT_HTTP_LISTEN' && /http\.listen/.test(err.message),
  );
});

void test('set-aside rejected batches show in /status, /metrics and ci-audit status', async (t) => {
  const { configFile, config } = await fixture(t);
  const store = await RejectedStore.open({ dir: rejectedDir(config.agent.state_dir), maxBytes: config.output.rejected.max_bytes, logger: silent });
  await store.setAside(Buffer.alloc(300, 1), { status: 400, message: 'HTTP 400: bad', records: 3, seqRanges: [{ first: 7, last: 9 }] });
  const held = store.bytes;
  assert.ok(held > 300);
  const status = await collectAgentStatus(config);
  assert.deepEqual(status.rejected, { batches: 1, bytes: held, max_bytes: 100 * 1024 * 1024 });
  const http = await startAgentHttp({ listen: config.http!.listen, status: () => collectAgentStatus(config), healthy: () => true, logger: silent });
  t.after(() => http.close());
  const text = await (await request(`${http.url}/metrics`)).body.text();
  assert.match(text, /^ci_audit_agent_rejected_batches 1$/m);
  assert.match(text, new RegExp(`^ci_audit_agent_rejected_bytes ${held}$`, 'm'));
  let out = '';
  await runStatus({ configFile, url: http.url, write: (s) => (out += s) });
  assert.match(out, /rejected batches set aside: 1 \(\d+ of 104857600 bytes\): ci-audit agent rejected list/);
});
