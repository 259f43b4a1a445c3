import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { findFiles, matchesFile, watchPlan } from '../../../../agent/sources/file/finder.ts';
import { tempDir } from '../helpers.ts';

void test('matchesFile applies include and exclude (with and without a slash)', () => {
  const m = { include: ['/var/log/*.log', '/var/log/ci/**/*.log'], exclude: ['**/*.gz', 'debug-*'] };
  assert.ok(matchesFile('/var/log/auth.log', m));
  assert.ok(matchesFile('/var/log/ci/a/b/job.log', m));
  assert.ok(!matchesFile('/var/log/auth.log.1', m));
  assert.ok(!matchesFile('/var/log/debug-x.log', m));
  assert.ok(!matchesFile('/var/log/ci/old.log.gz', { include: ['/var/log/ci/*'], exclude: ['**/*.gz'] }));
});

void test('findFiles lists existing matches, sorted, and nothing for a missing folder', async (t) => {
  const dir = await tempDir(t);
  await mkdir(`${dir}/sub`);
  for (const f of ['b.log', 'a.log', 'c.txt', 'old.log.gz', 'sub/d.log']) await writeFile(`${dir}/${f}`, '');
  assert.deepEqual(await findFiles({ include: [`${dir}/*.log`], exclude: [] }), [`${dir}/a.log`, `${dir}/b.log`]);
  assert.deepEqual(await findFiles({ include: [`${dir}/**/*.log*`], exclude: ['*.gz'] }), [`${dir}/a.log`, `${dir}/b.log`, `${dir}/sub/d.log`]);
  assert.deepEqual(await findFiles({ include: [`${dir}/missing/*.log`], exclude: [] }), []);
});

void test('watchPlan watches the folder before the first glob segment, with the depth the patterns need', () => {
  assert.deepEqual(watchPlan(['/var/log/auth.log']), { roots: ['/var/log'], depth: 0 });
  assert.deepEqual(watchPlan(['/var/log/*.log', '/var/log/gitlab/*/job.log']), { roots: ['/var/log'], depth: 2 });
  assert.deepEqual(watchPlan(['/var/log/*.log', '/srv/ci/**/*.log']), { roots: ['/srv/ci', '/var/log'], depth: undefined });
  assert.deepEqual(watchPlan(['/a/*/x.log', '/b/y.log']), { roots: ['/a', '/b'], depth: 1 });
});
