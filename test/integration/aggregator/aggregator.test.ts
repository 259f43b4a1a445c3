// The aggregator against the real Elasticsearch in ES_URL: OTLP in, ECS documents in data streams out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import pino from 'pino';
import { aggregatorConfigSchema } from '../../../config/schema.ts';
import { dataStreamName } from '../../../core/wire.ts';
import { ElasticsearchWriter } from '../../../aggregator/index/elasticsearch-writer.ts';
import { ensureTemplates } from '../../../aggregator/index/setup.ts';
import { templateName, templateVersion } from '../../../aggregator/index/templates.ts';
import { startAggregator } from '../../../aggregator/run.ts';
import type { AggregatorHandle } from '../../../aggregator/run.ts';
import { agentAttributes, agentResource, emitRecords, jsonBody, protobufBody } from '../../unit/aggregator/otlp-fixtures.ts';
import { cleanupNamespace, esClient, esPassword, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

interface Hit {
  _index: string;
  _id: string;
  _source: Record<string, unknown> & {
    event: Record<string, unknown>;
    log?: Record<string, unknown>;
    agent?: Record<string, unknown>;
    host?: Record<string, unknown>;
    data_stream: Record<string, unknown>;
    ci_audit: Record<string, unknown>;
  };
}

function collectingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

void test('OTLP records of two datasets are stored once each in their data streams, also when re-sent', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace('agg_it');
  const started: { aggregator?: AggregatorHandle } = {};
  // One hook, in order: a failing step must not leave a server listening (the test would hang).
  t.after(async () => {
    try {
      await started.aggregator?.close();
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
    }
  });

  const { logger, lines } = collectingLogger();
  const config = aggregatorConfigSchema.parse({ listen: { port: 0 }, elasticsearch: { url, namespace } });
  started.aggregator = await startAggregator(config, logger);
  const receiverUrl = started.aggregator.url;
  await eventually(async () => (await fetch(`${receiverUrl}/healthz`)).status === 200, 'the aggregator to report Elasticsearch ready');

  const run = randomBytes(4).toString('hex');
  const agentId = `it-agent-${run}`;
  const lines3 = [
    `runner-01 sshd[2811]: Accepted publickey for deploy from 203.0.113.17 port 52144 ssh2 run=${run}`,
    `runner-01 sudo: deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/id run=${run}`,
    `runner-01 sshd[2811]: pam_unix(sshd:session): session closed for user deploy run=${run}`,
  ];
  const ciLines = [`[2026-11-26 09:16:12Z INFO JobDispatcher] Job request 88213 received. run=${run}`, `[2026-11-26 09:16:13Z INFO Worker] Job build completed run=${run}`];
  const records = await emitRecords({
    resource: agentResource(agentId, 'runner-01'),
    scope: { name: 'ci-audit.file', version: '0.1.0' },
    records: [
      ...lines3.map((body, i) => ({
        timestamp: [1795688521 + i, 482113789] as [number, number],
        severityNumber: 9,
        body,
        attributes: { ...agentAttributes('auth', `auth-${i}`, '/var/log/auth.log', 1000 * i), 'user.name': 'deploy' },
      })),
      ...ciLines.map((body, i) => ({
        timestamp: [1795688600 + i, 1] as [number, number],
        body,
        attributes: agentAttributes('ci', `ci-${i}`, '/home/runner/_diag/Runner_20261126-091500-utc.log', 77 * i),
      })),
    ],
  });
  const otel = await emitRecords({
    resource: { 'service.name': 'checkout', 'telemetry.sdk.language': 'nodejs' },
    records: [{ timestamp: [1795688700, 42], body: `plain OpenTelemetry record run=${run}`, attributes: { 'http.response.status_code': 502 } }],
  });
  const body = gzipSync(protobufBody([...records, ...otel]));

  const post = (payload: Buffer, headers: Record<string, string>) => fetch(`${receiverUrl}/v1/logs`, { method: 'POST', headers, body: payload });
  const first = await post(body, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
  assert.equal(first.status, 200, await first.clone().text());
  assert.deepEqual(ProtobufLogsSerializer.deserializeResponse(new Uint8Array(await first.arrayBuffer())), {});

  await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}` });
  const find = async (text: string): Promise<Hit[]> => {
    const result = await es.search({ index: `logs-ci_audit.*-${namespace}`, query: { match_phrase: { message: text } }, size: 10 });
    return result.hits.hits as unknown as Hit[];
  };

  for (const [i, text] of lines3.entries()) {
    const hits = await find(text);
    assert.equal(hits.length, 1, text);
    const hit = hits[0]!;
    assert.ok(hit._index.startsWith(`.ds-${dataStreamName('auth', namespace)}-`), hit._index);
    assert.equal(hit._id, `${agentId}:id:auth-${i}`);
    assert.equal(hit._source['@timestamp'], new Date((1795688521 + i) * 1000).toISOString().replace('.000Z', '.482113789Z'));
    assert.equal(hit._source.message, text);
    assert.equal(hit._source.event.original, text);
    assert.equal(hit._source.event.dataset, 'ci_audit.auth');
    assert.equal(hit._source.event.id, `auth-${i}`);
    assert.deepEqual(hit._source.log, { level: 'info', file: { path: '/var/log/auth.log' }, offset: 1000 * i });
    assert.deepEqual(hit._source.host, { name: 'runner-01' });
    assert.deepEqual(hit._source.agent, { id: agentId, type: 'ci-audit-agent', version: '0.1.0' });
    assert.deepEqual(hit._source.data_stream, { type: 'logs', dataset: 'ci_audit.auth', namespace });
    assert.equal(hit._source.ci_audit.verified, false);
    // An ECS-named attribute lands at its ECS path, not among the leftover attributes.
    assert.deepEqual(hit._source.user, { name: 'deploy' });
    assert.equal((hit._source.ci_audit.attributes as Record<string, unknown> | undefined)?.['user.name'], undefined);
  }
  for (const [i, text] of ciLines.entries()) {
    const hits = await find(text);
    assert.equal(hits.length, 1, text);
    assert.ok(hits[0]!._index.startsWith(`.ds-${dataStreamName('ci', namespace)}-`), hits[0]!._index);
    assert.equal(hits[0]!._id, `${agentId}:id:ci-${i}`);
    assert.equal(hits[0]!._source.log?.offset, 77 * i);
  }
  const [plain] = await find(`plain OpenTelemetry record run=${run}`);
  assert.ok(plain);
  assert.ok(plain._index.startsWith(`.ds-${dataStreamName('generic', namespace)}-`));
  assert.equal(plain._source.ci_audit.verified, false);
  assert.deepEqual(plain._source.ci_audit.issues, ['dataset_missing', 'record_id_missing']);

  // @timestamp keeps its nanoseconds in the index too (date_nanos), not only in _source.
  const sorted = await es.search({
    index: dataStreamName('auth', namespace),
    sort: [{ '@timestamp': 'asc' }],
    docvalue_fields: [{ field: '@timestamp', format: 'strict_date_optional_time_nanos' }],
    size: 1,
  });
  assert.match(String((sorted.hits.hits[0]?.fields as Record<string, unknown[]>)['@timestamp']?.[0]), /\.482113789Z$/);

  // The same records again, as gzip protobuf and as JSON: acknowledged, and still one document each
  // (409 on create is "already there"). The plain OpenTelemetry record has no id, so Elasticsearch
  // gives each copy its own: that one is doubled, as documented.
  const again = await post(body, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
  assert.equal(again.status, 200);
  const asJson = await post(jsonBody(records), { 'content-type': 'application/json' });
  assert.equal(asJson.status, 200);
  assert.deepEqual(await asJson.json(), {});
  await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}` });
  assert.equal((await es.count({ index: dataStreamName('auth', namespace) })).count, 3);
  assert.equal((await es.count({ index: dataStreamName('ci', namespace) })).count, 2);
  for (const text of [...lines3, ...ciLines]) assert.equal((await find(text)).length, 1, text);

  // What the cluster made of the names: data streams, auto-created from the template.
  const resolved = await es.indices.resolveIndex({ name: `logs-ci_audit.*-${namespace}`, expand_wildcards: 'all' });
  assert.deepEqual(
    resolved.data_streams.map((d) => d.name).sort(),
    [dataStreamName('auth', namespace), dataStreamName('ci', namespace), dataStreamName('generic', namespace)],
    'the data streams were not auto-created: this cluster cannot create data streams on first write',
  );

  const password = esPassword(url);
  if (password !== '') assert.ok(!lines.some((l) => l.includes(password)), 'a log line carries the Elasticsearch password');
});

void test('index templates are installed once; ensuring them again is a no-op', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  // The first run on a fresh cluster creates it (the aggregator may already have); after that, never again.
  const first = await ensureTemplates(es, url);
  assert.ok(first.every((r) => ['created', 'unchanged', 'updated'].includes(r.action)));
  const second = await ensureTemplates(es, url);
  assert.deepEqual(second.filter((r) => r.action !== 'unchanged'), []);
  assert.ok(second.some((r) => r.name === templateName && r.version === templateVersion));
  const { index_templates: templates } = await es.indices.getIndexTemplate({ name: templateName });
  const installed = templates[0]!.index_template;
  assert.equal(installed.priority, 200);
  assert.deepEqual(installed.index_patterns, ['logs-ci_audit.*-*']);
  assert.equal((installed._meta as { version: number }).version, templateVersion);
  assert.ok(installed.data_stream !== undefined);
});

void test('a document Elasticsearch refuses is reported as rejected, next to created and duplicate ones', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  const namespace = uniqueNamespace('agg_rej');
  const writer = new ElasticsearchWriter({ elasticsearch: aggregatorConfigSchema.parse({ elasticsearch: { url, namespace } }).elasticsearch, logger: pino({ level: 'silent' }) });
  t.after(async () => {
    try {
      await writer.close();
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
    }
  });
  writer.start();
  await writer.whenReady();
  const stream = dataStreamName('auth', namespace);
  const good = { dataStream: stream, id: 'w:1', document: { '@timestamp': '2026-11-26T09:00:00.000000001Z', message: 'good' }, issues: [] };
  const bad = { dataStream: stream, id: 'w:2', document: { '@timestamp': '2026-11-26T09:00:00Z', source: { ip: 'not-an-ip' } }, issues: [] };
  const result = await writer.write([good, bad, good]);
  assert.equal(result.created, 1);
  assert.equal(result.duplicates, 1);
  // Refused for good: stored in the dead-letter stream instead (test/integration/storage has the details).
  assert.equal(result.rejected.length, 0);
  assert.equal(result.deadLettered.length, 1);
  assert.equal(result.deadLettered[0]!.index, 1);
  assert.equal(result.deadLettered[0]!.status, 400);
  assert.match(result.deadLettered[0]!.error, /^document_parsing_exception: .*failed to parse field \[source\.ip\] of type \[ip\]/);
});

void test('what the test cluster offers: data streams auto-create; report the APIs it lacks', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const probe = async (method: string, path: string): Promise<number> => {
    try {
      const res = await es.transport.request({ method, path }, { meta: true, ignore: [400, 404, 405, 410, 500] });
      return res.statusCode ?? 0;
    } catch (err) {
      return (err as { meta?: { statusCode?: number } }).meta?.statusCode ?? -1;
    }
  };
  const checks: Array<[string, string, string]> = [
    ['GET', '/', 'cluster info (GET /, client.info()): the aggregator must not use it for readiness'],
    ['GET', '/_data_stream', 'data stream API (get, delete): tests cannot delete data streams and clean up by namespace'],
    ['GET', '/_ilm/policy', 'index lifecycle management: retention needs data stream lifecycle or our own enforcement'],
    ['GET', '/_data_stream/_lifecycle/stats', 'data stream lifecycle service: data_retention in a template is accepted but not enforced'],
  ];
  for (const [method, path, meaning] of checks) {
    const status = await probe(method, path);
    t.diagnostic(`${method} ${path} -> ${status} ${status >= 200 && status < 300 ? 'available' : `MISSING: ${meaning}`}`);
  }
  const types = ['flattened', 'match_only_text', 'wildcard', 'constant_keyword'];
  for (const type of types) {
    try {
      await es.indices.simulateIndexTemplate({ name: `ci-audit-probe-${type}`, index_patterns: [`ci-audit-probe-${type}-*`], template: { mappings: { properties: { f: { type } } } } } as never);
      t.diagnostic(`field type ${type}: available`);
    } catch {
      t.diagnostic(`field type ${type}: MISSING`);
    }
  }
});
