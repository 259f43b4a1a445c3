// The agent registry on a real file: tokens stored hashed, enrollment tokens spent and expired,
// revocation seen by another registry instance on the same file (the CLI and a running aggregator).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { keysFromRegistry } from '../../../../admin/verify/keys.ts';
import { ChainChecker } from '../../../../admin/verify/chain-check.ts';
import type { Finding } from '../../../../admin/verify/findings.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import { hashToken, sameHash } from '../../../../aggregator/auth/tokens.ts';
import { asHit, buildChain, checkpoint, newSigningKey } from '../../verify/chain-fixture.ts';

async function registryFile(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'ci-audit-registry-')), 'state', 'agents.json');
}

void test('an enrolled token identifies its agent; the file holds only hashes and is mode 0600', async () => {
  const file = await registryFile();
  const registry = await AgentRegistry.open(file);
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 3600 });
  assert.match(grant.token, /^cia_enroll_[A-Za-z0-9_-]{43}$/);
  const key = newSigningKey();
  const { token } = await registry.enroll(grant.token, 'runner-01', key.publicPem);
  assert.match(token, /^cia_agent_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(await registry.checkToken(token), { kind: 'ok', agentId: 'runner-01' });
  assert.deepEqual(await registry.checkToken(`${token}x`), { kind: 'unknown' });

  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes(token) && !text.includes(grant.token), 'no secret is stored in clear');
  assert.ok(text.includes(hashToken(token)));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const listed = await registry.list();
  assert.equal(listed.agents[0]?.public_key, key.publicPem);
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
  assert.deepEqual(await server.checkToken(token), { kind: 'revoked', agentId: 'runner-07' }, 'the old token stays revoked');
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

void test('a public_key that is not an Ed25519 public key is refused before the enrollment token is spent, and never quoted', async () => {
  const file = await registryFile();
  const registry = await AgentRegistry.open(file);
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cases: Array<[string, string, RegExp]> = [
    ['the private key (PEM)', privatePem, /it is a PRIVATE key/],
    ['the private key (base64 PKCS#8 DER)', privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'), /it is a PRIVATE key/],
    ['junk', 'my-secret-junk-text', /neither PEM nor base64/],
    ['an RSA public key', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), /a rsa key, not Ed25519/],
    ['two keys', `${newSigningKey().publicPem}${newSigningKey().publicPem}`, /not exactly one PEM "PUBLIC KEY" block/],
  ];
  for (const [what, text, reason] of cases) {
    await assert.rejects(registry.enroll(grant.token, 'runner-01', text), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'CIA_ERR_AUTH_ENROLL', what);
      assert.match(err.message, /^public_key is not an Ed25519 public key in PEM \(SPKI/, what);
      assert.match(err.message, reason, what);
      assert.ok(!err.message.includes(text.trim().split('\n')[1] ?? text) && !err.message.includes('my-secret'), `${what}: the text is not quoted`);
      return true;
    });
  }
  const listed = await registry.list();
  assert.deepEqual(listed.agents, [], 'nothing stored');
  assert.equal(listed.enrollmentTokens[0]?.uses_left, 1, 'the enrollment token is not spent');
  assert.ok(!(await readFile(file, 'utf8')).includes('PRIVATE'));
  // The base64 of the SPKI DER alone is taken too, and stored as PEM.
  const key = newSigningKey();
  const bare = key.publicPem.replace(/-----[A-Z ]+-----|\s/g, '');
  await registry.enroll(grant.token, 'runner-01', bare);
  assert.equal((await registry.list()).agents[0]?.public_key, key.publicPem);
});

void test('re-enrolling a revoked agent keeps its earlier keys: verify passes on a genuine chain across the re-enrollment', async () => {
  const file = await registryFile();
  const registry = await AgentRegistry.open(file);
  const oldKey = newSigningKey();
  const rotatedKey = newSigningKey();
  const newKey = newSigningKey();
  // Records 1-40; checkpoints 10 and 20 signed before the re-enrollment, 30 and 40 with the new key.
  const chain = buildChain('runner-1', 'unit', 40, 10, oldKey);
  chain.checkpoints = chain.checkpoints.map((cp) => (cp.statement.seq <= 20 ? cp : checkpoint('runner-1', 'unit', newKey, cp.statement.seq, cp.statement.hash)));
  await registry.enroll((await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 })).token, 'runner-1', oldKey.publicPem);
  // The old key rotated at seq 20, after its last checkpoint there: it signs for seqs up to 20 only.
  await registry.addSigningKey('runner-1', { id: rotatedKey.id, public_key: rotatedKey.publicPem, rotated_from: oldKey.id, rotated_at_seq: 20 });
  await registry.revoke('runner-1');
  await registry.enroll((await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 })).token, 'runner-1', newKey.publicPem);

  // The aggregator still checks checkpoints of the earlier keys (records from the agent's buffer).
  assert.deepEqual(new Set(await registry.signingKeys('runner-1')), new Set([newKey.publicPem, oldKey.publicPem, rotatedKey.publicPem]));
  const listed = (await registry.list()).agents;
  assert.equal(listed.length, 1);
  assert.equal(listed[0]?.public_key, newKey.publicPem);
  assert.equal(listed[0]?.revoked_at, undefined);
  assert.equal(listed[0]?.previous?.[0]?.public_key, oldKey.publicPem);
  assert.match(listed[0]?.previous?.[0]?.revoked_at ?? '', /^\d{4}-/);
  assert.ok(!JSON.stringify(listed).includes('sha256'), 'list shows no hashes, of earlier enrollments neither');

  const findings: Finding[] = [];
  const checker = new ChainChecker({ finding: (f) => findings.push(f), notice: () => undefined }, { keys: await keysFromRegistry(file), fromStart: true, toEnd: true });
  for (const r of chain.records) {
    checker.record(asHit(r.doc));
    for (const cp of chain.checkpoints) if (cp.statement.seq === r.seq) checker.attestation({ origin: 'index', statement: cp.statement, _id: cp.doc._id });
  }
  checker.end();
  assert.deepEqual(findings.map((f) => `${f.kind} ${f.seq}: ${f.detail}`), []);
});

void test('a key learned again from the same old key at a lower seq (the first announcement arrived late) takes the lower seq', async () => {
  const registry = await AgentRegistry.open(await registryFile());
  const oldKey = newSigningKey();
  const next = newSigningKey();
  await registry.enroll((await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 })).token, 'runner-2', oldKey.publicPem);
  const learned = { id: next.id, public_key: next.publicPem, rotated_from: oldKey.id };
  assert.equal(await registry.addSigningKey('runner-2', { ...learned, rotated_at_seq: 9 }), true);
  assert.equal(await registry.addSigningKey('runner-2', { ...learned, rotated_at_seq: 12 }), false);
  assert.equal(await registry.addSigningKey('runner-2', { ...learned, rotated_at_seq: 5 }), true);
  assert.deepEqual(await registry.trustedKeys('runner-2'), [{ publicKey: oldKey.publicPem }, { publicKey: next.publicPem, rotation: { from: oldKey.id, seq: 5 } }]);
});

void test('after re-enrolling, the old token and client certificates issued before the revocation stay refused', async () => {
  let now = new Date('2026-11-26T10:00:00Z');
  const registry = await AgentRegistry.open(await registryFile(), { now: () => now, recheckMs: 0 });
  const grant = await registry.createEnrollmentToken({ uses: 3, ttlSeconds: 86_400 });
  const first = await registry.enroll(grant.token, 'runner-07');
  const certBefore = Date.parse('2026-11-26T09:00:00Z');
  const certAfter = Date.parse('2026-11-26T12:00:00Z');
  assert.equal(await registry.isRevoked('runner-07', certBefore), false);
  now = new Date('2026-11-26T11:00:00Z');
  await registry.revoke('runner-07');
  assert.equal(await registry.isRevoked('runner-07', certAfter), true, 'while revoked, every certificate is refused');
  now = new Date('2026-11-26T13:00:00Z');
  const second = await registry.enroll(grant.token, 'runner-07');
  assert.deepEqual(await registry.checkToken(second.token), { kind: 'ok', agentId: 'runner-07' });
  assert.deepEqual(await registry.checkToken(first.token), { kind: 'revoked', agentId: 'runner-07' });
  assert.equal(await registry.isRevoked('runner-07', certBefore), true, 'a certificate issued before the revocation');
  assert.equal(await registry.isRevoked('runner-07'), true, 'a certificate of unknown issue time');
  assert.equal(await registry.isRevoked('runner-07', certAfter), false, 'a certificate issued after the revocation');
  // Revoked and enrolled a second time: the first two tokens stay revoked, the history grows.
  await registry.revoke('runner-07');
  now = new Date('2026-11-26T14:00:00Z');
  const third = await registry.enroll(grant.token, 'runner-07');
  for (const old of [first, second]) assert.deepEqual(await registry.checkToken(old.token), { kind: 'revoked', agentId: 'runner-07' });
  assert.deepEqual(await registry.checkToken(third.token), { kind: 'ok', agentId: 'runner-07' });
  assert.equal(await registry.isRevoked('runner-07', certAfter), true, 'issued before the second revocation');
  assert.equal((await registry.list()).agents[0]?.previous?.length, 2);
});

void test('a private key or junk left in a registry by an older version is never listed, and leaves the file when the agent enrolls again', async () => {
  const file = await registryFile();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const agents = [
    { id: 'leaked', token_sha256: hashToken('cia_agent_a'), enrolled_at: '2026-11-26T09:00:00.000Z', public_key: privatePem },
    { id: 'junk', token_sha256: hashToken('cia_agent_b'), enrolled_at: '2026-11-26T09:00:00.000Z', public_key: 'hello' },
  ];
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify({ version: 1, agents, enrollment_tokens: [] }));
  const registry = await AgentRegistry.open(file);
  assert.ok(!JSON.stringify(await registry.list()).includes('PRIVATE KEY-----'), 'agents list does not show the private key');
  const grant = await registry.createEnrollmentToken({ uses: 2, ttlSeconds: 600 });
  for (const id of ['leaked', 'junk']) {
    await registry.revoke(id);
    await registry.enroll(grant.token, id, newSigningKey().publicPem);
  }
  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes('PRIVATE') && !text.includes('hello'), 'neither stays in the file');
  const listed = (await registry.list()).agents;
  assert.equal(listed[0]?.previous?.[0]?.public_key, publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'the public half of the leaked key stays, for its checkpoints');
  assert.equal(listed[1]?.previous?.[0]?.public_key, undefined);
  const keys = await keysFromRegistry(file);
  assert.equal(keys.get('leaked')?.length, 2);
  assert.equal(keys.get('junk')?.length, 1);
});
