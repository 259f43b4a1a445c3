// The committed Kibana saved objects: generated from the saved query table, every reference
// resolves, every field they use is mapped by the index templates with a type that fits its use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildSavedObjects, dashboardId, dataViewId, savedSearchId, toNdjson, type SavedObject } from '../../../admin/kibana/objects.ts';
import { savedObjectsFile } from '../../../admin/kibana/import.ts';
import { conditionsToKql, savedQueries } from '../../../admin/search/queries.ts';
import { builtInDatasets, composedMappings } from '../../../aggregator/index/templates.ts';

const committed = await readFile(savedObjectsFile, 'utf8');
const objects = committed.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as SavedObject);
const byKey = new Map(objects.map((o) => [`${o.type}:${o.id}`, o]));

test('the committed NDJSON is exactly what the saved query table generates', () => {
  // A plain comparison: a diff of two whole files would bury the one thing to do.
  assert.ok(committed === toNdjson(buildSavedObjects()), 'deploy/kibana/ci-audit.ndjson is out of date: run node scripts/kibana-objects.ts');
  const script = fileURLToPath(new URL('../../../scripts/kibana-objects.ts', import.meta.url));
  assert.equal(spawnSync(process.execPath, [script, '--check']).status, 0);
});

test('a data view per dataset and one for all, a saved search per audit question, one dashboard', () => {
  const views = objects.filter((o) => o.type === 'index-pattern');
  assert.deepEqual(views.map((v) => v.attributes.title).sort(), ['logs-ci_audit.*-*', ...builtInDatasets.map((d) => `logs-ci_audit.${d}-*`)].sort());
  for (const v of views) assert.equal(v.attributes.timeFieldName, '@timestamp');
  const searches = objects.filter((o) => o.type === 'search');
  assert.deepEqual(searches.map((s) => s.id).sort(), savedQueries.map(savedSearchId).sort());
  for (const id of ['failed-ssh-logins', 'successful-logins', 'sudo-commands', 'account-changes', 'pipeline-runs', 'failed-jobs', 'integrity-alerts', 'unverified-sources']) {
    assert.ok(byKey.has(`search:ci-audit-search-${id}`), id);
  }
  assert.equal(objects.filter((o) => o.type === 'dashboard').length, 1);
  assert.equal(new Set(objects.map((o) => `${o.type}:${o.id}`)).size, objects.length, 'no duplicate ids');
});

test('every reference resolves to an object of the file with the right type', () => {
  for (const o of objects) {
    for (const r of o.references) assert.ok(byKey.has(`${r.type}:${r.id}`), `${o.id} -> ${r.type}:${r.id}`);
  }
  for (const s of objects.filter((o) => o.type === 'search')) {
    const source = JSON.parse((s.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON) as { indexRefName: string; query: { query: string; language: string } };
    assert.ok(s.references.some((r) => r.name === source.indexRefName && r.type === 'index-pattern'), `${s.id}: its indexRefName is among its references`);
    const q = savedQueries.find((x) => savedSearchId(x) === s.id)!;
    assert.deepEqual(source.query, { query: conditionsToKql(q.conditions), language: 'kuery' });
    assert.equal(s.references[0]!.id, dataViewId(q.dataset));
  }
  const dash = byKey.get(`dashboard:${dashboardId}`)!;
  const panels = JSON.parse(dash.attributes.panelsJSON as string) as Array<{ panelIndex: string; panelRefName: string; type: string }>;
  assert.ok(panels.length >= 6);
  for (const p of panels) {
    const ref = dash.references.find((r) => r.name === `${p.panelIndex}:${p.panelRefName}`);
    assert.ok(ref !== undefined, `panel ${p.panelIndex} has its reference`);
    assert.equal(ref.type, p.type);
  }
});

/** The mapping of a dotted field in a properties tree, or undefined. */
function mappingOf(properties: Record<string, unknown>, field: string): { type?: string; index?: boolean } | undefined {
  const parts = field.split('.');
  let node: Record<string, unknown> | undefined = { properties };
  for (const part of parts) {
    node = (node?.properties as Record<string, Record<string, unknown>> | undefined)?.[part];
    if (node === undefined) return undefined;
  }
  return node;
}

test('every field used exists in the index templates with a type that fits its use', () => {
  for (const q of savedQueries) {
    const datasets = q.dataset === undefined ? [...builtInDatasets] : [q.dataset];
    for (const dataset of datasets) {
      const { properties } = composedMappings(dataset);
      assert.match(mappingOf(properties, '@timestamp')?.type ?? '', /^date(_nanos)?$/, 'the time field is a date');
      for (const c of q.conditions) {
        const m = mappingOf(properties, c.field);
        const wanted = typeof c.values[0] === 'boolean' ? 'boolean' : 'keyword';
        assert.equal(m?.type, wanted, `${q.id}: ${c.field} is ${wanted} in ${dataset}, so exact matches work`);
        assert.notEqual(m?.index, false, `${q.id}: ${c.field} is indexed`);
      }
      for (const column of q.columns) {
        if (q.dataset === undefined || dataset === q.dataset) assert.ok(mappingOf(properties, column) !== undefined, `${q.id}: column ${column} is mapped in ${dataset}`);
      }
    }
  }
  assert.equal(mappingOf(composedMappings('auth').properties, 'source.ip')?.type, 'ip');
});
