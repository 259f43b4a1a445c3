// Elasticsearch lost under a running aggregator, with real processes: a cluster of the test's own
// (started with the harness of scripts/elasticsearch.ts even when ES_URL names another, since this
// test stops it) is first frozen with SIGSTOP while a job keeps writing, so that its port still
// accepts connections that are never answered and the aggregator's bulk requests time out; then
// killed with SIGKILL (connections refused) and started again on the same data path and port. Each
// time the aggregator spools and, once the cluster answers again, drains the spool. Every line must
// be in Elasticsearch exactly once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startElasticsearch, stopProcessGroup } from '../../../scripts/elasticsearch.ts';
import { esClient, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { appendSlowly, assertEveryLineOnce, freePort, indexedLines, numberedLines, startAgent, startAggregator, untilIndexed, workspace, writeAgentConfig, writeAggregatorConfig } from './end-to-end.ts';

/** Batches waiting in the aggregator's spool folder. */
function spooledBatches(spool: string): number {
  try {
    return readdirSync(spool).filter((name) => name.endsWith('.batch')).length;
  } catch {
    return 0; // not created yet
  }
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Kills the cluster (SIGKILL to its process group) and starts it again the way the harness started
 * it: the same launcher, environment (ES_PATH_CONF holds the data path, the ports and the keystore
 * with the password) and user, read back from /proc. Resolves with the new launcher's pid, the leader
 * of the new process group, once the old one no longer answers; the caller waits for it to be ready.
 */
async function killAndRelaunch(pid: number, baseUrl: string, tmpDir: string): Promise<number> {
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((entry) => entry.includes('=') && !/^(PWD|OLDPWD|SHLVL)=/.test(entry))
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
  const ids = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const uid = ids('Uid');
  const gid = ids('Gid');
  process.kill(-pid, 'SIGKILL');
  // Gone once its HTTP port refuses connections (its processes may linger as zombies here).
  for (const deadline = Date.now() + 30_000; ; ) {
    try {
      await fetch(baseUrl, { signal: AbortSignal.timeout(1_000) });
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') break;
    }
    assert.ok(Date.now() < deadline, 'Elasticsearch still answers after SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
  const out = openSync(join(tmpDir, 'elasticsearch.out'), 'a');
  try {
    const child = spawn(join(env.ES_HOME!, 'bin', 'elasticsearch'), [], { cwd: tmpDir, env, detached: true, stdio: ['ignore', out, out], uid, gid });
    child.unref();
    return child.pid!;
  } finally {
    closeSync(out);
  }
}

/** Resolves once the cluster answers its health API with yellow or green. */
async function untilHealthy(es: ReturnType<typeof esClient>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const health = await es.cluster.health({ wait_for_status: 'yellow', timeout: '1s' });
      if (health.status !== 'red') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`Elasticsearch not healthy within ${timeoutMs} ms after its restart`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stops (SIGSTOP) or resumes (SIGCONT) every process of the cluster: the launcher leads its process group. */
function signalCluster(pid: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
  process.kill(-pid, signal);
}

void test('Elasticsearch frozen, then killed and started again, while the job keeps writing: the aggregator spools, drains, and every line is in Elasticsearch exactly once', async (t) => {
  const cluster = await startElasticsearch({ log: (line) => t.diagnostic(line) });
  const es = esClient(cluster.url);
  let frozen = false;
  const relaunched: { pid?: number } = {};
  // After the aggregator and agent have stopped.
  const dir = await workspace(t, 'esdown', async () => {
    await es.close();
    if (frozen) signalCluster(cluster.pid, 'SIGCONT');
    if (relaunched.pid !== undefined) await stopProcessGroup(relaunched.pid);
    // Removes the cluster's folder (its first process group is gone already after a relaunch).
    await cluster.stop();
  });
  const namespace = uniqueNamespace('esdown');
  const port = await freePort();
  const aggregatorConfig = await writeAggregatorConfig({ dir, port, namespace, spoolDir: join(dir, 'spool'), esRequestTimeoutMs: 3_000 });
  const aggregator = await startAggregator(t, aggregatorConfig, cluster.url);
  const log = join(dir, 'job.log');
  writeFileSync(log, '');
  await startAgent(t, await writeAgentConfig({ dir, url: `http://127.0.0.1:${port}`, log, buffer: 'disk' }));

  const before = numberedLines('esdown', 0, 5_000);
  await appendSlowly(log, before, 500, 50);
  await untilIndexed(es, namespace, 1_000, 60_000);

  signalCluster(cluster.pid, 'SIGSTOP');
  frozen = true;
  const spool = join(dir, 'spool');
  const during = numberedLines('esdown', before.length, 20_000);
  const writing = appendSlowly(log, during, 1_000, 100);
  // The aggregator's bulk requests time out; it takes records into its spool (answering the agent 200).
  await until(() => spooledBatches(spool) > 0, 60_000, 'records in the spool while Elasticsearch is frozen');
  await writing;
  await new Promise((r) => setTimeout(r, 3_000));
  assert.ok(spooledBatches(spool) > 0, 'records still in the spool while Elasticsearch is frozen');

  signalCluster(cluster.pid, 'SIGCONT');
  frozen = false;
  const after = numberedLines('esdown', before.length + during.length, 5_000);
  await appendSlowly(log, after, 500, 50);
  await until(() => spooledBatches(spool) === 0, 120_000, 'the spool to drain into Elasticsearch');
  assert.ok(aggregator.lines.some((l) => l.code === 'CIA_ERR_ES_UNAVAILABLE'), 'the aggregator reported Elasticsearch unavailable');

  // A crash: connections refused until the cluster, restarted on its data, answers again.
  const killedAt = Date.now();
  relaunched.pid = await killAndRelaunch(cluster.pid, cluster.baseUrl, cluster.tmpDir);
  const whileDown = numberedLines('esdown', before.length + during.length + after.length, 10_000);
  const writingWhileDown = appendSlowly(log, whileDown, 1_000, 100);
  await until(() => spooledBatches(spool) > 0, 60_000, 'records in the spool while Elasticsearch is down');
  await writingWhileDown;
  await untilHealthy(es, 180_000);
  t.diagnostic(`Elasticsearch answered again ${Date.now() - killedAt} ms after SIGKILL`);
  const last = numberedLines('esdown', before.length + during.length + after.length + whileDown.length, 5_000);
  await appendSlowly(log, last, 500, 50);
  await until(() => spooledBatches(spool) === 0, 120_000, 'the spool to drain after the restart');

  const written = [...before, ...during, ...after, ...whileDown, ...last];
  await untilIndexed(es, namespace, written.length, 120_000);
  // Bulk requests cut off by the freeze or the kill may have been applied before it: their re-sends
  // from the spool are conflicts on the same _id, not second documents.
  assertEveryLineOnce(await indexedLines(es, namespace), written, { noDuplicates: true });
  assert.ok(aggregator.running, 'the aggregator still runs');
});
