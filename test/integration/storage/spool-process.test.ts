// The spool end to end through the receiver, with real processes: an aggregator whose ES_URL points
// at a closed port (the suite's cluster cannot be stopped by a test) accepts records with 200 once
// they are fsynced in its spool; it is then killed with SIGKILL (nothing flushed on the way out),
// restarted with the real ES_URL on the same spool, and drains every record into Elasticsearch
// exactly once, also when the agent re-sends them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dataStreamName } from '../../../core/wire.ts';
import { agentAttributes, agentResource, emitRecords, jsonBody } from '../../unit/aggregator/otlp-fixtures.ts';
import { esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

interface Aggregator {
  child: ChildProcess;
  url: string;
  logs: string[];
}

/** Starts `ci-audit aggregator run` and resolves with the receiver URL it logs. */
function startProcess(configFile: string, esUrl: string): Promise<Aggregator> {
  const child = spawn(process.execPath, [bin, 'aggregator', 'run', '--config', configFile], { env: { ...process.env, ES_URL: esUrl }, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: string[] = [];
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'receiver listening' && entry.url !== undefined) resolve({ child, url: entry.url, logs });
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`aggregator exited (${code ?? signal}) before listening:\n${logs.join('\n')}`)));
  });
}

function stop(agg: Aggregator, signal: NodeJS.Signals): Promise<void> {
  if (agg.child.exitCode !== null || agg.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    agg.child.once('exit', () => resolve());
    agg.child.kill(signal);
  });
}

void test('a real aggregator spools records while Elasticsearch is unreachable, survives SIGKILL, and drains them exactly once after a restart', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const dir = await mkdtemp(join(tmpdir(), 'cia-spool-proc-'));
  const namespace = uniqueNamespace('spoolproc');
  const running: Aggregator[] = [];
  t.after(async () => {
    for (const agg of running) await stop(agg, 'SIGKILL');
    await es.close();
    await rm(dir, { recursive: true, force: true });
  });
  const configFile = join(dir, 'aggregator.yaml');
  await writeFile(configFile, [
    'listen: { host: 127.0.0.1, port: 0 }',
    `elasticsearch: { namespace: ${namespace}, request_timeout_ms: 2000 }`,
    `spool: { dir: ${join(dir, 'spool')} }`,
    'retention: { enforce: false }',
    'log: { level: info, format: json }',
    '',
  ].join('\n'));

  const run = randomBytes(4).toString('hex');
  const agentId = `spool-agent-${run}`;
  const request = async (from: number, n: number): Promise<Buffer> =>
    jsonBody(
      await emitRecords({
        resource: agentResource(agentId),
        records: Array.from({ length: n }, (_, i) => ({
          timestamp: [1795688521 + from + i, 0] as [number, number],
          body: `[2026-11-26 09:16:12Z INFO Worker] step ${from + i} run=${run}`,
          attributes: agentAttributes('ci', `ci-${from + i}`, '/home/runner/_diag/Worker.log', 100 * (from + i)),
        })),
      }),
    );
  const bodies = [await request(0, 3), await request(3, 4), await request(7, 2)];
  const total = 9;

  // 1. Elasticsearch unreachable: every request is answered 200, after the spool has it on disk.
  const offline = await startProcess(configFile, await closedPortUrl());
  running.push(offline);
  for (const body of bodies) {
    const res = await fetch(`${offline.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200, await res.text());
  }
  assert.ok((await readdir(join(dir, 'spool'))).length > 0, 'nothing in the spool folder');
  // SIGKILL: no shutdown hook runs; only what was fsynced before the 200 survives.
  await stop(offline, 'SIGKILL');

  // 2. Restarted on the same spool with the real Elasticsearch: drained into the data stream.
  const online = await startProcess(configFile, esUrl);
  running.push(online);
  const stream = dataStreamName('ci', namespace);
  const count = async (): Promise<number> => {
    try {
      await es.indices.refresh({ index: stream });
      return (await es.count({ index: stream })).count;
    } catch {
      return 0; // the data stream does not exist yet
    }
  };
  await eventually(async () => (await count()) === total, `${total} records drained into ${stream}`);
  assert.ok(online.logs.some((l) => l.includes('spool drained into elasticsearch')), online.logs.join('\n'));

  // 3. The agent re-sends one request (it never saw the first 200, say): duplicates, not new documents.
  const again = await fetch(`${online.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[1] });
  assert.equal(again.status, 200);
  assert.equal(await count(), total);
  const hits = await es.search<{ event: { id: string } }>({ index: stream, size: 100, sort: [{ '@timestamp': 'asc' }] });
  assert.deepEqual(hits.hits.hits.map((h) => h._source!.event.id), Array.from({ length: total }, (_, i) => `ci-${i}`));
  assert.deepEqual(hits.hits.hits.map((h) => h._id), Array.from({ length: total }, (_, i) => `${agentId}:id:ci-${i}`));
  await stop(online, 'SIGTERM');
  assert.equal(online.child.exitCode, 0, online.logs.slice(-5).join('\n'));
});
