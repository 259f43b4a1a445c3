import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signCheckpoint } from '../../../../core/integrity/checkpoint.ts';
import { AnchorFile, anchorLine } from '../../../../aggregator/verify/anchor.ts';
import { newKey } from './chain-fixtures.ts';

void test('verified checkpoints are appended as one JSON line each; a repeat adds no line; reopening appends', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'anchor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'anchors.jsonl');
  const key = newKey();
  const next = newKey();
  const first = signCheckpoint({ type: 'checkpoint', agent: 'a', key: key.id, seq: 10, hash: 'ab'.repeat(32), timeUnixNano: 5n }, key.privateKey);
  const rotation = signCheckpoint({ type: 'key_rotation', agent: 'a', key: key.id, seq: 11, hash: 'cd'.repeat(32), timeUnixNano: 6n, nextKey: next.id, nextPublicKey: next.pem }, key.privateKey);
  const anchor = await AnchorFile.open(file);
  await anchor.append([first]);
  await anchor.append([first, rotation]);
  await anchor.close();
  await anchor.close();
  const reopened = await AnchorFile.open(file);
  await reopened.append([first]);
  await reopened.close();
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  assert.deepEqual(lines, [anchorLine(first), anchorLine(rotation), anchorLine(first)]);
  assert.deepEqual(JSON.parse(lines[1]!), {
    v: 1, type: 'key_rotation', agent: 'a', key: key.id, seq: 11, hash: 'cd'.repeat(32), time: '6', signature: rotation.signature, next_key: next.id, next_public_key: next.pem,
  });
});

void test('an anchor file that cannot be opened fails with CIA_ERR_INTEGRITY_ANCHOR naming the option', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'anchor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(AnchorFile.open(dir), (err: Error & { code?: string }) => err.code === 'CIA_ERR_INTEGRITY_ANCHOR' && /integrity\.anchor_file/.test(err.message));
});
