// The agent registry on a real file: tokens stored hashed, enrollment tokens spent and expired,
// revocation seen by another registry instance on the same file (the CLI and a running aggregator).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import { hashToken, sameHash } from '../../../../aggregator/auth/tokens.ts';

async function registryFile(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'ci-audit-registry-')), 'state', 'agents.json');
}

void test('an enrolled token identifies its agent; the file holds only hashes and is mode 0600', async () => {
  const file = await registryFile();
  const registry = await AgentRegistry.open(file);
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 3600 });
  assert.match(grant.token, /^cia_enroll_[A-Za-z0-9_-]{43}$/);
  const { token } = await registry.enroll(grant.token, 'runner-01', 'ed25519-public-key');
  assert.match(token, /^cia_agent_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(await registry.checkToken(token), { kind: 'ok', agentId: 'runner-01' });
  assert.deepEqual(await registry.checkToken(`${token}x`), { kind: 'unknown' });

  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes(token) && !text.includes(grant.token), 'no secret is stored in clear');
  assert.ok(text.includes(hashToken(token)));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const listed = await registry.list();
  assert.equal(listed.agents[0]?.public_key, 'ed25519-public-key');
  assert.ok(!JSON.stringify(listed).includes('sha256'), 'list shows no hashes');
});

void test('an enrollment token is spent by its uses, expires, and cannot take over a live agent id', async () => {
  let now = new Date('2026-11-26T10:00:00Z');
  const registry = await AgentRegistry.open(await registryFile(), { now: () => now });
  const grant = await registry.createEnrollmentToken({ uses: 2, ttlSeconds: 600 });
  await registry.enroll(grant.token, 'a-1');
  await assert.rejects(registry.enroll(grant.token, 'a-1'), { code: 'CIA_ERR_AUTH_ENROLL', message: /already enrolled; revoke it first/ });
  await registry.enroll(grant.token, 'a-2');
  await assert.rejects(registry.enroll(grant.token, 'a-3'), { code: 'CIA_ERR_AUTH_INVALID', message: /unknown, used up or expired/ });

  const late = await registry.createEnrollmentToken({ uses: 5, ttlSeconds: 600 });
  now = new Date('2026-11-26T10:10:00Z');
  await assert.rejects(registry.enroll(late.token, 'a-4'), { code: 'CIA_ERR_AUTH_INVALID' });
  await assert.rejects(registry.enroll('cia_enroll_made-up', 'a-5'), (err: Error) => {
    assert.equal((err as { code?: string }).code, 'CIA_ERR_AUTH_INVALID');
    assert.ok(!err.message.includes('made-up'), 'the token is never echoed');
    return true;
  });
  const fresh = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
  await assert.rejects(registry.enroll(fresh.token, '../etc'), { code: 'CIA_ERR_AUTH_ENROLL', message: /not valid/ });
});

void test('a revocation by another process is seen, and a revoked id may enroll again with a new token', async () => {
  const file = await registryFile();
  const server = await AgentRegistry.open(file, { recheckMs: 0 });
  const grant = await server.createEnrollmentToken({ uses: 2, ttlSeconds: 600 });
  const { token } = await server.enroll(grant.token, 'runner-07');
  const admin = await AgentRegistry.open(file);
  assert.equal(await admin.revoke('runner-07'), true);
  assert.equal(await admin.revoke('nobody'), false);
  assert.deepEqual(await server.checkToken(token), { kind: 'revoked', agentId: 'runner-07' });
  assert.equal(await server.isRevoked('runner-07'), true);
  const again = await server.enroll(grant.token, 'runner-07');
  assert.deepEqual(await server.checkToken(again.token), { kind: 'ok', agentId: 'runner-07' });
  assert.deepEqual(await server.checkToken(token), { kind: 'unknown' }, 'the old token stays dead');
});

void test('a corrupt registry file is a clear CIA_ERR_AUTH_REGISTRY error naming the file', async () => {
  const file = await registryFile();
  const registry = await AgentRegistry.open(file);
  await registry.revoke('nobody'); // creates the file
  await writeFile(file, '{"version": 1, "agents": ');
  await assert.rejects(AgentRegistry.open(file), { code: 'CIA_ERR_AUTH_REGISTRY', message: new RegExp(`${file.replace(/[.]/g, '\\.')} is not valid JSON`) });
  await writeFile(file, '{"version": 2}');
  await assert.rejects(AgentRegistry.open(file), { code: 'CIA_ERR_AUTH_REGISTRY', message: /not a version 1 registry/ });
});

void test('sameHash compares equal hashes only', () => {
  const h = hashToken('cia_agent_x');
  assert.equal(sameHash(h, hashToken('cia_agent_x')), true);
  assert.equal(sameHash(h, hashToken('cia_agent_y')), false);
  assert.equal(sameHash(h, h.slice(1)), false);
});

void test('changes from two registries on the same file at once are all kept (the lock file serialises them)', async () => {
  const file = await registryFile();
  const first = await AgentRegistry.open(file);
  const second = await AgentRegistry.open(file);
  const grants = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? first : second).createEnrollmentToken({ uses: 1, ttlSeconds: 60 })));
  await Promise.all(grants.map((g, i) => (i % 2 === 0 ? second : first).enroll(g.token, `agent-${i}`)));
  const listed = await (await AgentRegistry.open(file)).list();
  assert.deepEqual(listed.agents.map((a) => a.id).sort(), Array.from({ length: 10 }, (_, i) => `agent-${i}`).sort());
  assert.ok(listed.enrollmentTokens.every((e) => e.uses_left === 0));
});
