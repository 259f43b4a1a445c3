// The walking skeleton end to end, with real processes: a file on a "runner" -> `ci-audit agent run`
// -> `ci-audit aggregator run` -> the real Elasticsearch -> each line found by its text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { clusterInfo } from '../../aggregator/index/cluster-info.ts';
import { startAgentProcess, startAggregatorProcess } from '../helpers/pipeline-processes.ts';
import { CliProcess } from '../../scripts/lib/cli-process.ts';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../helpers/elasticsearch.ts';

interface EcsDoc {
  '@timestamp'?: string;
  message?: string;
  agent?: { id?: string };
  host?: { name?: string };
  log?: { file?: { path?: string } };
  event?: { dataset?: string; original?: string };
}

test('lines written to a followed file are found in Elasticsearch, each exactly once', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const info = await clusterInfo(es);
  t.diagnostic(`Elasticsearch ${info.version} (cluster ${info.clusterName})`);

  const dir = await mkdtemp(join(tmpdir(), 'cia-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const namespace = uniqueNamespace('e2e');
  t.after(async () => {
    await cleanupNamespace(es, namespace);
    await es.close();
  });

  const authLog = join(dir, 'auth.log');
  const runnerLog = join(dir, 'Runner_20261126-091500-utc.log');
  const before = [
    '2026-11-26T09:12:01.482113+00:00 runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2',
    '2026-11-26T09:13:44.019532+00:00 runner-01 sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/id',
  ];
  await writeFile(authLog, before.map((l) => `${l}\n`).join(''));
  await writeFile(runnerLog, '[2026-11-26 09:16:12Z INFO JobDispatcher] Job request 88213 received.\r\n');

  const { aggregator, url } = await startAggregatorProcess(t, dir, namespace, esUrl);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const agent = await startAgentProcess(
    t,
    dir,
    [
        'agent:',
        '  id: e2e-runner-01',
        '  state_dir: state',
        'sources:',
        '  - type: file',
        '    id: auth',
        '    include: [auth.log]',
        '    dataset: auth',
        '  - type: file',
        '    id: gha',
        '    include: ["Runner_*.log"]',
        '    dataset: ci',
    ],
    url,
  );

  // Lines appended while the agent runs, including one whose newline arrives later.
  const during = Array.from({ length: 20 }, (_, i) => `2026-11-26T09:20:${String(i).padStart(2, '0')}.000000+00:00 runner-01 sshd[3000]: Failed password for invalid user admin${i} from 198.51.100.23 port ${40000 + i} ssh2`);
  for (const line of during.slice(0, 10)) await appendFile(authLog, `${line}\n`);
  await appendFile(authLog, during[10]!.slice(0, 30));
  await new Promise((r) => setTimeout(r, 300));
  await appendFile(authLog, `${during[10]!.slice(30)}\n`);
  for (const line of during.slice(11)) await appendFile(authLog, `${line}\n`);

  const expected = [...before, ...during];
  const pattern = `logs-ci_audit.*-${namespace}`;
  // Counted per dataset: the agent's signed checkpoints (dataset integrity) must not end the wait early.
  const countOf = async (dataset: string): Promise<number> =>
    (await es.count({ index: `logs-ci_audit.${dataset}-${namespace}`, allow_no_indices: true, ignore_unavailable: true })).count;
  await eventually(
    async () => {
      await es.indices.refresh({ index: pattern, allow_no_indices: true });
      return (await countOf('auth')) >= expected.length && (await countOf('ci')) >= 1;
    },
    `${expected.length} auth and 1 ci documents in ${pattern}`,
  );

  // The parsers make `message` the event's own text; `event.original` keeps the whole line.
  const all = await es.search<EcsDoc>({ index: `logs-ci_audit.auth-${namespace}`, size: 1000 });
  for (const line of expected) {
    const exact = all.hits.hits.filter((h) => h._source?.event?.original === line);
    assert.equal(exact.length, 1, `exactly one document for: ${line}`);
    const hit = exact[0]!;
    assert.equal(hit._index.startsWith(`.ds-logs-ci_audit.auth-${namespace}-`), true, hit._index);
    const doc = hit._source!;
    assert.equal(doc.agent?.id, 'e2e-runner-01');
    assert.equal(doc.host?.name, hostname());
    assert.equal(doc.log?.file?.path, authLog);
    assert.equal(doc.event?.dataset, 'ci_audit.auth');
    assert.ok(doc.message !== undefined && line.endsWith(doc.message), `message is the event's text: ${doc.message}`);
    assert.equal(typeof doc['@timestamp'], 'string');
  }

  const ci = await es.search<EcsDoc>({ index: `logs-ci_audit.ci-${namespace}`, size: 10 });
  assert.equal(ci.hits.hits.length, 1);
  assert.equal(ci.hits.hits[0]!._source!.event?.original, '[2026-11-26 09:16:12Z INFO JobDispatcher] Job request 88213 received.');

  // A graceful stop of both ends, with the exit codes a service manager expects.
  assert.equal(await agent.stop(), 0);
  assert.equal(await aggregator.stop(), 0);
});

test('an unreachable Elasticsearch is reported with its URL, without the password, and the aggregator keeps retrying', async (t) => {
  // Port 9 (discard) on loopback: nothing listens there on these machines, so connections are refused.
  const dir = await mkdtemp(join(tmpdir(), 'cia-es-down-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'aggregator.yaml'), 'listen:\n  port: 0\nlog:\n  format: json\n');
  const aggregator = new CliProcess(['aggregator', 'run', '--config', join(dir, 'aggregator.yaml')], {
    ES_URL: 'http://elastic:hunter2-not-logged@127.0.0.1:9',
  });
  t.after(() => aggregator.stop());
  const listening = await aggregator.waitForLog((l) => l.msg === 'receiver listening');
  const complaint = await aggregator.waitForLog((l) => (l.level ?? 0) >= 40 && JSON.stringify(l).includes('127.0.0.1:9'));
  assert.ok(!JSON.stringify(complaint).includes('hunter2'), 'the password never reaches a log line');

  const health = await fetch(`${String(listening.url)}/healthz`);
  assert.equal(health.status, 503);
  await new Promise((r) => setTimeout(r, 2000));
  assert.ok(aggregator.running, 'the aggregator is still running');
  assert.ok(!aggregator.rawStderr.join('\n').includes('hunter2'), 'the password never reaches stderr');
  assert.equal(await aggregator.stop(), 0);
});
