// verify's inputs and outputs on real files and processes: the anchor file, the keys from a
// registry or a keys file, the re-map comparison, the reports, and the command's refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAnchorFile } from '../../../admin/verify/anchor.ts';
import { dataStreamOfIndex } from '../../../admin/verify/chain-check.ts';
import { keysFromFile, keysFromRegistry } from '../../../admin/verify/keys.ts';
import { remapDiff } from '../../../admin/verify/remap.ts';
import { jsonReport, textReport } from '../../../admin/verify/report.ts';
import { parseCanonicalRecord } from '../../../core/integrity/record.ts';
import { hasErrorCode } from '../../../core/errors.ts';
import { anchorLine, asHit, buildChain, chainRecord, checkpoint, lineRecord, newSigningKey } from './chain-fixture.ts';
import { genesisHash } from '../../../core/integrity/chain.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-verify-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the anchor file: lines per agent in seq order, repeated lines once, a malformed line named by number', async (t) => {
  const dir = await tempDir(t);
  const key = newSigningKey();
  const s20 = checkpoint('a', 'ns', key, 20, 'b'.repeat(64)).statement;
  const s10 = checkpoint('a', 'ns', key, 10, 'a'.repeat(64)).statement;
  const other = checkpoint('b', 'ns', key, 5, 'c'.repeat(64)).statement;
  const file = join(dir, 'anchor.jsonl');
  await writeFile(file, [s20, s10, s20, other].map((s) => `${anchorLine(s)}\n`).join('') + '\n');
  const all = await readAnchorFile(file, () => true);
  assert.deepEqual([...all.keys()], ['a', 'b']);
  assert.deepEqual(all.get('a')!.map((x) => [x.statement.seq, x.line]), [[10, 2], [20, 1]]);
  assert.deepEqual(all.get('a')![0]!.statement, s10);
  const onlyB = await readAnchorFile(file, (agent) => agent === 'b');
  assert.deepEqual([...onlyB.keys()], ['b']);

  await writeFile(file, `${anchorLine(s10)}\n{"type":"checkpoint","agent":"a"}\n`);
  await assert.rejects(readAnchorFile(file, () => true), (err: Error) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_ANCHOR') && /line 2 is not a checkpoint statement/.test(err.message));
  await writeFile(file, `${anchorLine(s10).replace('"v":1', '"v":2')}\n`);
  await assert.rejects(readAnchorFile(file, () => true), /line 1 has anchor version 2/);
  await assert.rejects(readAnchorFile(join(dir, 'none'), () => true), (err: Error) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_ANCHOR'));
});

test('public keys from the aggregator registry (PEM or bare base64) and from a keys file', async (t) => {
  const dir = await tempDir(t);
  const k1 = newSigningKey();
  const k2 = newSigningKey();
  const bare = k2.publicPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, '');
  const registry = join(dir, 'agents.json');
  const learned = { id: k2.id, public_key: k2.publicPem, added_at: '2026-01-01T00:00:00Z', rotated_from: k1.id, rotated_at_seq: 10 };
  await writeFile(registry, JSON.stringify({ version: 1, agents: [{ id: 'a', public_key: k1.publicPem, signing_keys: [learned] }, { id: 'b', public_key: bare, revoked_at: '2026-01-01T00:00:00Z' }, { id: 'c' }], enrollment_tokens: [] }));
  const fromRegistry = await keysFromRegistry(registry);
  assert.deepEqual([...fromRegistry.keys()], ['a', 'b']);
  // A learned key comes with the rotation that introduced it: it is valid from that seq on.
  assert.deepEqual(fromRegistry.get('a'), [k1.publicPem, { publicKey: k2.publicPem, rotation: { from: k1.id, seq: 10 } }]);
  assert.equal(fromRegistry.get('b')![0], k2.publicPem);

  const keys = join(dir, 'keys.json');
  await writeFile(keys, JSON.stringify({ a: [k1.publicPem, k2.publicPem], b: k2.publicPem }));
  const fromFile = await keysFromFile(keys);
  assert.equal(fromFile.get('a')!.length, 2);
  await writeFile(keys, JSON.stringify({ a: 'not a key' }));
  await assert.rejects(keysFromFile(keys), (err: Error) => hasErrorCode(err, 'CIA_ERR_INTEGRITY_KEY') && /agent a/.test(err.message));
  await writeFile(keys, '[1]');
  await assert.rejects(keysFromFile(keys), /must be a JSON object/);
  await assert.rejects(keysFromRegistry(keys), /not an agent registry/);
});

test('the re-map check: an intact document has no differing field; structured values compare by content', () => {
  const key = 'agent-r';
  const record = lineRecord(key, 1, { extra: { 'ci_audit.tags': [{ z: 1, a: 'x' }], nested: { b: 2, a: 1 } }, body: 'plain' });
  record.body = { z: 'last', a: 'first' };
  const r = chainRecord(key, 'ns', 1, genesisHash, record);
  const hit = asHit(r.doc);
  const parsed = parseCanonicalRecord(r.canonical);
  // The body and the list of key-value lists were kept in the sender's order at ingest; the canonical form sorted them.
  assert.deepEqual(remapDiff(parsed, { seq: 1, hash: r.hash, prevHash: genesisHash }, hit._source, 'ns').fields, []);
  (hit._source.ci_audit as { attributes: Record<string, unknown> }).attributes['nested.a'] = 9;
  delete (hit._source.event as Record<string, unknown>).outcome;
  assert.deepEqual(remapDiff(parsed, { seq: 1, hash: r.hash, prevHash: genesisHash }, hit._source, 'ns').fields.sort(), ['ci_audit.attributes.nested.a', 'event.outcome']);
});

test('backing index names give back their data stream', () => {
  assert.equal(dataStreamOfIndex('.ds-logs-ci_audit.auth-prod_1-2026.11.26-000001'), 'logs-ci_audit.auth-prod_1');
  assert.equal(dataStreamOfIndex('logs-ci_audit.auth-prod'), undefined);
});

test('the text and JSON reports: findings as found, then notices and the summary', () => {
  const summary = { records: 3, agents: 1, checkpoints: 1, findings: 1, notices: 1, seconds: 0.5, records_per_second: 6 };
  const finding = { kind: 'missing' as const, agent: 'a', seq: 2, last_seq: 3, '@timestamp': '2026-11-26T10:00:00.000000000Z', _id: 'a:seq:4', _index: '.ds-x', detail: 'seqs 2..3 are missing' };
  const notice = { kind: 'not_signed' as const, agent: 'a', seq: 4, last_seq: 4, detail: 'not yet signed' };
  let text = '';
  const t = textReport({ write: (s) => (text += s) });
  t.finding(finding);
  t.notice(notice);
  t.end(summary);
  assert.equal(
    text,
    'FINDING missing agent=a seq=2..3 @timestamp=2026-11-26T10:00:00.000000000Z _id=a:seq:4 _index=.ds-x: seqs 2..3 are missing\n' +
      'notice not_signed agent=a seq=4..4: not yet signed\n' +
      'verified 3 records of 1 agent and 1 checkpoint in 0.5 s (6 records/s): 1 finding, 1 notice\n',
  );
  let json = '';
  const j = jsonReport({ write: (s) => (json += s) });
  j.finding(finding);
  j.finding({ ...finding, seq: 9 });
  j.notice(notice);
  j.end(summary);
  assert.deepEqual(JSON.parse(json), { findings: [finding, { ...finding, seq: 9 }], notices: [notice], summary: { ...summary, ok: false } });
  let empty = '';
  const e = jsonReport({ write: (s) => (empty += s) });
  e.end({ ...summary, findings: 0, notices: 0 });
  assert.deepEqual((JSON.parse(empty) as { findings: unknown[] }).findings, []);
});

test('the command refuses bad options before connecting, and an unreachable cluster is an error (exit 1), not a clean result', async (t) => {
  const dir = await tempDir(t);
  const env = { ...process.env, ES_URL: 'http://127.0.0.1:9' };
  const run = (args: string[]): { status: number | null; stderr: string; stdout: string } => {
    const r = spawnSync(process.execPath, [bin, 'verify', ...args], { encoding: 'utf8', env });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  };
  const both = run(['--keys', 'k', '--registry', 'r']);
  assert.equal(both.status, 64);
  assert.match(both.stderr, /give either --keys or --registry/);
  assert.match(run(['--page-size', '0']).stderr, /--page-size "0" must be a whole number/);
  assert.match(run(['--namespace', 'Bad-NS']).stderr, /--namespace "Bad-NS" is not a dataset\/namespace name/);
  assert.match(run(['--from', 'yesterday']).stderr, /--from "yesterday" is neither/);
  const anchor = join(dir, 'anchor.jsonl');
  await writeFile(anchor, 'garbage\n');
  const badAnchor = run(['--anchor', anchor]);
  assert.equal(badAnchor.status, 1);
  assert.match(badAnchor.stderr, /CIA_ERR_INTEGRITY_ANCHOR: .*line 1/);
  const down = run(['--registry', join(dir, 'none.json')]);
  assert.equal(down.status, 1);
  assert.match(down.stderr, /CIA_ERR_INTEGRITY_KEY: cannot read the agent registry/);
  const unreachable = run([]);
  assert.equal(unreachable.status, 1, unreachable.stderr);
  assert.match(unreachable.stderr, /CIA_ERR_ES_UNAVAILABLE/);
  assert.equal(unreachable.stdout, '');
});

test('a chain built by the fixture verifies its own checkpoints (sanity of the test data)', () => {
  const chain = buildChain('agent-s', 'ns', 10, 5);
  assert.equal(chain.checkpoints.length, 2);
  assert.equal(chain.checkpoints[1]!.statement.hash, chain.records[9]!.hash);
});
