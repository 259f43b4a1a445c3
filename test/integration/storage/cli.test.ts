// `ci-audit setup`, `retention show` and `retention apply [--force]` as real child processes against
// the real Elasticsearch in ES_URL (the child reads it from its environment, like an operator's
// shell): what they print, their exit codes, --force for shortening a compliance-bound dataset, and
// `setup --rollover` after a template upgrade. Each test uses a dataset of its own: templates are
// cluster-wide and other test files share the cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataStreamName } from '../../../core/wire.ts';
import { datasetTemplateName, settingsComponentName } from '../../../aggregator/index/templates.ts';
import { esClient, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';

/** Backing indices of a data stream, oldest first (the test cluster has no GET _data_stream). */
async function backing(es: ReturnType<typeof esClient>, stream: string): Promise<string[]> {
  const resolved = await es.indices.resolveIndex({ name: stream, expand_wildcards: 'all' });
  return ([] as string[]).concat(resolved.data_streams[0]?.backing_indices ?? []).sort((a, b) => Number(a.slice(-6)) - Number(b.slice(-6)));
}

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, LOG_LEVEL: 'silent', ...env }, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ status: code, stdout, stderr });
    });
  });
}

/** The full default retention plus one dataset of the test's own, so that the shared templates keep their defaults. */
function retentionYaml(dataset: string, maxAge: string): string {
  return [
    'retention:',
    '  mechanism: own',
    '  datasets:',
    '    auth: { max_age: 400d, compliance: true }',
    '    ci: { max_age: 90d }',
    '    integrity: { max_age: 3650d, compliance: true }',
    '    deadletter: { max_age: 400d }',
    `    ${dataset}: { max_age: ${maxAge}, compliance: true }`,
    '',
  ].join('\n');
}

async function configFile(t: { after: (fn: () => Promise<void>) => void }, namespace: string, dataset: string, maxAge: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-cli-es-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'aggregator.yaml');
  await writeFile(file, `elasticsearch:\n  namespace: ${namespace}\n${retentionYaml(dataset, maxAge)}`);
  return { dir, file };
}

void test('setup prints what it created, changed or left alone; the second run changes nothing', async (t) => {
  requireEsUrl();
  const namespace = uniqueNamespace('clisetup');
  const dataset = `cs_${namespace.slice(-6)}`;
  const { file } = await configFile(t, namespace, dataset, '30d');
  const first = await cli(['setup', '--config', file]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /^retention mechanism: (own|lifecycle|ilm)$/m);
  // The dataset of this test is new: its index template is created now.
  assert.match(first.stdout, new RegExp(`^created +index_template ${datasetTemplateName(dataset)} \\(version \\d+\\)$`, 'm'));
  assert.match(first.stdout, new RegExp(`^retention ${dataset}: 30d \\(compliance\\) \\[new\\]$`, 'm'));
  const second = await cli(['setup', '--config', file]);
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(second.stdout.split('\n').filter((l) => /^(created|updated) /.test(l)), [], second.stdout);
  assert.match(second.stdout, new RegExp(`^unchanged +index_template ${datasetTemplateName(dataset)} `, 'm'));
  assert.match(second.stdout, /^unchanged +component_template ci-audit-logs@mappings /m);
  assert.match(second.stdout, new RegExp(`^retention ${dataset}: 30d -> 30d \\(compliance\\) \\[unchanged\\]$`, 'm'));
});

void test('retention apply and show round trip; shortening a compliance-bound dataset exits 1 unless --force', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const namespace = uniqueNamespace('cliret');
  const dataset = `cr_${namespace.slice(-6)}`;
  const long = await configFile(t, namespace, dataset, '60d');
  const applied = await cli(['retention', 'apply', '--config', long.file]);
  assert.equal(applied.status, 0, applied.stderr);
  await es.create({ index: dataStreamName(dataset, namespace), id: 'x', document: { '@timestamp': new Date().toISOString(), message: 'x' }, refresh: 'true' });

  const shown = await cli(['retention', 'show', '--config', long.file]);
  assert.equal(shown.status, 0, shown.stderr);
  assert.match(shown.stdout, /^cluster offers: data stream lifecycle (yes|no), ILM (yes|no); mechanism: own$/m);
  assert.match(shown.stdout, new RegExp(`^${dataStreamName(dataset, namespace).replaceAll('.', '\\.')}\\t60d\\tyes\\town\\tapplied\\t1$`, 'm'));

  const short = await configFile(t, namespace, dataset, '7d');
  const refused = await cli(['retention', 'apply', '--config', short.file]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /CIA_ERR_RETENTION_SHORTEN: .*--force/);
  assert.match(refused.stderr, new RegExp(`${dataset} \\(60d -> 7d\\)`));
  const still = await cli(['retention', 'show', '--config', short.file]);
  assert.match(still.stdout, new RegExp(`\\t60d\\tyes\\town\\tapplied\\t1$`, 'm'), 'the refused apply changed something');

  const forced = await cli(['retention', 'apply', '--force', '--config', short.file]);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, new RegExp(`^retention ${dataset}: 60d -> 7d \\(compliance\\) \\[shorter\\]$`, 'm'));
  const after = await cli(['retention', 'show', '--config', short.file]);
  assert.match(after.stdout, new RegExp(`^${dataStreamName(dataset, namespace).replaceAll('.', '\\.')}\\t7d\\tyes\\town\\tapplied\\t1$`, 'm'));
  // Re-applying is safe: nothing changes, no --force needed.
  const again = await cli(['retention', 'apply', '--config', short.file]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`\\[unchanged\\]$`, 'm'));
});

void test('setup --rollover rolls over a data stream created before a template upgrade, once', async (t) => {
  const url = requireEsUrl();
  const es = esClient(url);
  t.after(() => es.close());
  const namespace = uniqueNamespace('cliroll');
  const dataset = `ro_${namespace.slice(-6)}`;
  const stream = dataStreamName(dataset, namespace);
  const { file } = await configFile(t, namespace, dataset, '30d');
  // What an older ci-audit installed for this dataset: settings only, no ECS mappings.
  await es.indices.putIndexTemplate({
    name: datasetTemplateName(dataset),
    index_patterns: [`logs-ci_audit.${dataset}-*`],
    priority: 210,
    data_stream: {},
    composed_of: [settingsComponentName],
    version: 1,
    _meta: { managed_by: 'ci-audit', version: 1, digest: 'old' },
  });
  await es.create({ index: stream, id: 'before', document: { '@timestamp': new Date().toISOString(), message: 'before the upgrade' }, refresh: 'true' });
  const oldWrite = await backing(es, stream).then((b) => b.at(-1)!);

  // Without --rollover: the template is upgraded, the stream is left alone, and the option is offered.
  const plain = await cli(['setup', '--config', file]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, new RegExp(`^updated +index_template ${datasetTemplateName(dataset)} `, 'm'));
  assert.match(plain.stdout, /setup --rollover/);
  assert.equal((await backing(es, stream)).length, 1);

  const rolled = await cli(['setup', '--rollover', '--config', file]);
  assert.equal(rolled.status, 0, rolled.stderr);
  assert.match(rolled.stdout, new RegExp(`^rolled +data_stream ${stream.replaceAll('.', '\\.')}: ${oldWrite.replaceAll('.', '\\.')} -> \\S+ \\(\\d+ fields newer than its write index`, 'm'));
  const indices = await backing(es, stream);
  assert.equal(indices.length, 2);
  const newWrite = indices.at(-1)!;
  const mapping = (await es.indices.getMapping({ index: newWrite }))[newWrite]!.mappings.properties as Record<string, { type?: string }>;
  assert.equal(mapping['@timestamp']?.type, 'date_nanos', 'the new write index has the template mappings');

  const again = await cli(['setup', '--rollover', '--config', file]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`^unchanged data_stream ${stream.replaceAll('.', '\\.')} `, 'm'));
  assert.equal((await backing(es, stream)).length, 2, 'a second --rollover rolled over again');
});

void test('an unreachable Elasticsearch exits 1 with a code, and the password in ES_URL is not printed', async () => {
  const r = await cli(['retention', 'show'], { ES_URL: 'http://admin:hunter2-secret@127.0.0.1:1' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^ci-audit: CIA_ERR_ES_UNAVAILABLE: /);
  assert.doesNotMatch(r.stderr + r.stdout, /hunter2-secret/);
});
