// The stored credential: 0600, in a state folder no one else may write to, refused otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { credentialsPath, readCredential, writeCredential } from '../../../../agent/enroll/credentials.ts';
import { enroll } from '../../../../agent/enroll/enroll.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import { MemoryIngest } from '../../../helpers/memory-ingest.ts';

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

void test('enroll checks the state folder before the aggregator is asked: a folder others may write costs no enrollment token and gets no signing key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-cred-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The aggregator's own enrollment endpoint, on a real registry file.
  const registry = await AgentRegistry.open(join(dir, 'agents.json'));
  const app = createReceiver({ ingest: new MemoryIngest(), limits: { maxBodyBytes: 1 << 20, maxDecompressedBytes: 1 << 20 }, logger: pino({ level: 'silent' }), auth: { mode: 'token', registry } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const stateDir = join(dir, 'state');
  const configFile = join(dir, 'agent.yaml');
  await writeFile(configFile, JSON.stringify({ agent: { id: 'runner-01', state_dir: stateDir }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url } }));
  await mkdir(stateDir);
  await chmod(stateDir, 0o777);
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });

  await assert.rejects(enroll({ configFile, enrollmentToken: grant.token }), { code: 'CIA_ERR_AUTH_CREDENTIALS', message: /writable by group or others \(mode 777\); run chmod 700/ });
  const listed = await registry.list();
  assert.deepEqual(listed.agents, [], 'the aggregator was not asked');
  assert.equal(listed.enrollmentTokens[0]?.uses_left, 1, 'the one-use token is not spent');
  await assert.rejects(access(join(stateDir, 'signing-key.pem')), 'no signing key is written into the refused folder');

  // A folder where the credential cannot be created at all: refused before asking too.
  const blocked = join(dir, 'not-a-folder');
  await writeFile(blocked, '');
  await writeFile(configFile, JSON.stringify({ agent: { id: 'runner-01', state_dir: join(blocked, 'state') }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url } }));
  await assert.rejects(enroll({ configFile, enrollmentToken: grant.token }), { code: 'CIA_ERR_AUTH_CREDENTIALS', message: /cannot create the state folder/ });
  assert.equal((await registry.list()).enrollmentTokens[0]?.uses_left, 1);

  // Fixed, the same token enrolls.
  await writeFile(configFile, JSON.stringify({ agent: { id: 'runner-01', state_dir: stateDir }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url } }));
  await chmod(stateDir, 0o700);
  const result = await enroll({ configFile, enrollmentToken: grant.token });
  assert.equal(result.agentId, 'runner-01');
  assert.equal((await readCredential(stateDir))?.agent_id, 'runner-01');
  assert.equal((await stat(join(stateDir, 'signing-key.pem'))).mode & 0o777, 0o600);
});
