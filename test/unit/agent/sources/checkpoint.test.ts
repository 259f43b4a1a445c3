import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hasErrorCode } from '../../../../core/errors.ts';
import {
  CheckpointStore,
  checkpointPath,
  checkpointVersion,
  readCheckpoints,
  writeCheckpoints,
} from '../../../../agent/sources/file/checkpoint.ts';
import { captureLogger, tempDir } from '../helpers.ts';

void test('checkpoints are written with a version tag and read back', async (t) => {
  const dir = await tempDir(t);
  const file = checkpointPath(dir, 'auth');
  assert.equal(file, `${dir}/checkpoints/auth.json`);
  const entries = [
    { dev: '2049', ino: '18446744073709551615', path: '/var/log/auth.log', offset: 1234, generation: 2, fingerprint: { bytes: 3, sha256: 'a'.repeat(64) } },
    { dev: '2049', ino: '7', path: '/var/log/ci.log', offset: 0, generation: 0, fingerprint: { bytes: 0, sha256: 'b'.repeat(64) } },
  ];
  await writeCheckpoints(file, 'auth', entries);
  const doc = JSON.parse(await readFile(file, 'utf8')) as { version: number; source: string; files: unknown[] };
  assert.equal(doc.version, checkpointVersion);
  assert.equal(doc.source, 'auth');
  assert.deepEqual(await readCheckpoints(file), entries);
  // Nothing but the checkpoint is left in the folder: the temp file was renamed over it.
  assert.deepEqual(await readdir(dirname(file)), ['auth.json']);
});

void test('a missing checkpoint is an empty one', async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual(await readCheckpoints(checkpointPath(dir, 'nothing')), []);
});

void test('a corrupt checkpoint or one of another version is refused with CIA_ERR_SOURCE_CHECKPOINT', async (t) => {
  const dir = await tempDir(t);
  const file = checkpointPath(dir, 'x');
  await mkdir(dirname(file), { recursive: true });
  const cases: [string, RegExp][] = [
    ['{"version":1,"files":[', /not valid JSON/],
    ['{"version":3,"files":[]}', /has version 3, this agent reads version 2/],
    ['{"version":2,"files":[{"dev":"1","ino":"2","path":"/a","offset":1,"generation":0,"fingerprint":{"bytes":1,"sha256":"zz"}}]}', /malformed fingerprint in files\[0\]/],
    ['{"version":1}', /no "files" list/],
    ['{"version":1,"files":[{"dev":"1","ino":"2","path":"/a","offset":-1}]}', /malformed entry files\[0\]/],
  ];
  for (const [text, message] of cases) {
    await writeFile(file, text);
    await assert.rejects(readCheckpoints(file), (err: unknown) => {
      assert.ok(hasErrorCode(err, 'CIA_ERR_SOURCE_CHECKPOINT'));
      assert.match((err as Error).message, message);
      assert.match((err as Error).message, /move it aside/);
      return true;
    });
  }
});

void test('a checkpoint write into a folder that cannot be created fails with CIA_ERR_SOURCE_CHECKPOINT', async (t) => {
  const dir = await tempDir(t);
  await writeFile(`${dir}/blocker`, '');
  await assert.rejects(writeCheckpoints(`${dir}/blocker/checkpoints/a.json`, 'a', []), (err: unknown) =>
    hasErrorCode(err, 'CIA_ERR_SOURCE_CHECKPOINT'),
  );
});

void test('the store coalesces updates into background writes and flush persists the latest', async (t) => {
  const dir = await tempDir(t);
  const { logger } = captureLogger();
  const store = await CheckpointStore.open(dir, 'ci', logger);
  const id = { dev: '1', ino: '2' };
  const fingerprint = { bytes: 4, sha256: 'c'.repeat(64) };
  for (let offset = 1; offset <= 100; offset++) store.set(id, '/a.log', offset, fingerprint, 1);
  await store.flush();
  assert.deepEqual(await readCheckpoints(store.file), [{ dev: '1', ino: '2', path: '/a.log', offset: 100, fingerprint, generation: 1 }]);

  const reopened = await CheckpointStore.open(dir, 'ci', logger);
  assert.equal(reopened.get(id)?.offset, 100);
  reopened.retainOnly(new Set());
  await reopened.flush();
  assert.deepEqual(await readCheckpoints(store.file), []);
});

void test('a version 1 checkpoint (no fingerprint, no generation) is read as generation 0 without fingerprint', async (t) => {
  const dir = await tempDir(t);
  const file = checkpointPath(dir, 'old');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify({ version: 1, source: 'old', files: [{ dev: '1', ino: '2', path: '/a.log', offset: 7 }] }));
  assert.deepEqual(await readCheckpoints(file), [{ dev: '1', ino: '2', path: '/a.log', offset: 7, generation: 0 }]);
});
