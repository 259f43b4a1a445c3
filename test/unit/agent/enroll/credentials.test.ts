// The stored credential: 0600, in a state folder no one else may write to, refused otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsPath, readCredential, writeCredential } from '../../../../agent/enroll/credentials.ts';

const credential = { version: 1 as const, agent_id: 'runner-01', token: 'cia_agent_secret', url: 'https://agg:4318/', enrolled_at: '2026-11-26T10:00:00.000Z' };

void test('a credential is written with mode 0600 in a 0700 folder and read back', async () => {
  const stateDir = join(await mkdtemp(join(tmpdir(), 'ci-audit-cred-')), 'state');
  assert.equal(await readCredential(stateDir), undefined, 'not enrolled yet');
  const file = await writeCredential(stateDir, credential);
  assert.equal(file, credentialsPath(stateDir));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
  assert.deepEqual(await readCredential(stateDir), credential);
});

void test('a credential readable by others, a writable state folder and a garbled file are refused with CIA_ERR_AUTH_CREDENTIALS', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'ci-audit-cred-'));
  const file = await writeCredential(stateDir, credential);
  await chmod(file, 0o644);
  await assert.rejects(readCredential(stateDir), { code: 'CIA_ERR_AUTH_CREDENTIALS', message: /readable or writable by group or others \(mode 644\); run chmod 600/ });
  await chmod(file, 0o600);
  await writeFile(file, '{"version":1}');
  await assert.rejects(readCredential(stateDir), (err: Error) => {
    assert.equal((err as { code?: string }).code, 'CIA_ERR_AUTH_CREDENTIALS');
    assert.match(err.message, /not a version 1 credential/);
    return true;
  });
  await chmod(stateDir, 0o777);
  await assert.rejects(writeCredential(stateDir, credential), { code: 'CIA_ERR_AUTH_CREDENTIALS', message: /writable by group or others \(mode 777\); run chmod 700/ });
});
