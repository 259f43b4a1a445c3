// The admin commands' argument checks and the enrollment endpoint's refusals, on a real registry file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseTtl } from '../../../../aggregator/auth/commands.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import type { WriterState } from '../../../../aggregator/index/document-writer.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import { newSigningKey } from '../../verify/chain-fixture.ts';

void test('parseTtl reads s, m, h, d and refuses anything else with a usage error', () => {
  assert.equal(parseTtl('45s'), 45);
  assert.equal(parseTtl('30m'), 1800);
  assert.equal(parseTtl('1h'), 3600);
  assert.equal(parseTtl('7d'), 604_800);
  for (const bad of ['1', '0h', '1w', '-1h', '1.5h']) assert.throws(() => parseTtl(bad), { code: 'CIA_ERR_CLI_USAGE', message: /not a duration/ });
});

void test('POST /v1/enroll refuses a missing token, a bad body, an unknown token and a taken id, each with its status', async (t) => {
  const registry = await AgentRegistry.open(join(await mkdtemp(join(tmpdir(), 'ci-audit-enroll-')), 'agents.json'));
  const ingest = { ready: true, state: 'ready' as WriterState, retryAfterSeconds: () => 1, ingest: () => Promise.reject(new Error('not called')) };
  const app = createReceiver({ ingest, limits: { maxBodyBytes: 1 << 20, maxDecompressedBytes: 1 << 20 }, logger: pino({ level: 'silent' }), auth: { mode: 'token', registry } });
  t.after(() => app.close());
  const grant = await registry.createEnrollmentToken({ uses: 3, ttlSeconds: 60 });
  const post = (authorization: string | undefined, payload: string) =>
    app.inject({ method: 'POST', url: '/v1/enroll', headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) }, payload });

  const missing = await post(undefined, '{"agent_id":"a"}');
  assert.equal(missing.statusCode, 401);
  assert.match(missing.json<{ message: string }>().message, /CIA_ERR_AUTH_MISSING/);
  assert.equal((await post(`Bearer ${grant.token}`, '{"agent_id":')).statusCode, 400);
  assert.equal((await post(`Bearer ${grant.token}`, '{"agent_id": 5}')).statusCode, 400);
  const unknown = await post('Bearer cia_enroll_nope', '{"agent_id":"a"}');
  assert.equal(unknown.statusCode, 401);
  assert.ok(!unknown.body.includes('cia_enroll_nope'));
  const ok = await post(`Bearer ${grant.token}`, JSON.stringify({ agent_id: 'a', public_key: newSigningKey().publicPem }));
  assert.equal(ok.statusCode, 200);
  assert.match(ok.json<{ token: string }>().token, /^cia_agent_/);
  const taken = await post(`Bearer ${grant.token}`, '{"agent_id":"a"}');
  assert.equal(taken.statusCode, 409);
  assert.match(taken.json<{ message: string }>().message, /already enrolled; revoke it first/);
});

void test('POST /v1/enroll answers 400 to a public_key that is not an Ed25519 public key, never quotes it and stores nothing', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'ci-audit-enroll-')), 'agents.json');
  const registry = await AgentRegistry.open(file);
  const ingest = { ready: true, state: 'ready' as WriterState, retryAfterSeconds: () => 1, ingest: () => Promise.reject(new Error('not called')) };
  const app = createReceiver({ ingest, limits: { maxBodyBytes: 1 << 20, maxDecompressedBytes: 1 << 20 }, logger: pino({ level: 'silent' }), auth: { mode: 'token', registry } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/enroll`;
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 60 });
  const privatePem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const secretLine = privatePem.split('\n')[1]!;
  for (const [what, publicKey, reason] of [
    ['the private key', privatePem, /it is a PRIVATE key, which must never leave the agent/],
    ['junk', 'hunter2 is my password', /does not hold a SubjectPublicKeyInfo|neither PEM nor base64/],
    ['a certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', /a PEM "CERTIFICATE" block, not "PUBLIC KEY"/],
    ['an empty text', '', /neither PEM nor base64/],
  ] as const) {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${grant.token}` }, body: JSON.stringify({ agent_id: 'runner-01', public_key: publicKey }) });
    const body = await response.text();
    assert.equal(response.status, 400, what);
    const { code, message } = JSON.parse(body) as { code: string; message: string };
    assert.equal(code, 'CIA_ERR_AUTH_ENROLL', what);
    assert.match(message, /^CIA_ERR_AUTH_ENROLL: public_key is not an Ed25519 public key in PEM \(SPKI/, what);
    assert.match(message, reason, what);
    assert.ok(!body.includes(secretLine) && !body.includes('hunter2') && !body.includes('MIIB'), `${what}: not echoed`);
  }
  const listed = await registry.list();
  assert.deepEqual(listed.agents, []);
  assert.equal(listed.enrollmentTokens[0]?.uses_left, 1, 'the enrollment token is not spent');
  assert.ok(!(await readFile(file, 'utf8')).includes('PRIVATE'), 'the private key is not stored');
});
