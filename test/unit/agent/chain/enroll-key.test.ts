// Enrollment registers the public half of the agent's signing key, creating the key (0600) when
// there is none yet, so that the aggregator can verify the agent's checkpoints from the start.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { ensureSigningKey, readSigningKey } from '../../../../agent/chain/signing-key.ts';
import { enroll } from '../../../../agent/enroll/enroll.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import type { WriterState } from '../../../../aggregator/index/document-writer.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import { scratch } from './capture.ts';

/** An enrollment endpoint that issues a token to every request and keeps their bodies. */
async function enrollEndpoint(t: { after: (fn: () => Promise<void>) => void }): Promise<{ url: string; requests: Record<string, unknown>[] }> {
  const requests: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'issued-token' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

void test('enroll sends the public key of integrity.signing_key (created 0600 when missing), never the private key', async (t) => {
  const { dir } = await scratch(t);
  const { url, requests } = await enrollEndpoint(t);
  const configFile = `${dir}/agent.yaml`;
  await writeFile(configFile, JSON.stringify({ agent: { id: 'enrolling-agent', state_dir: `${dir}/state` }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url }, integrity: { signing_key: 'keys/agent.pem' } }));

  await enroll({ configFile, enrollmentToken: 'cia_enroll_x' });
  const keyFile = `${dir}/keys/agent.pem`;
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600, 'created private, relative to the config file');
  const key = (await readSigningKey(keyFile))!;
  assert.equal(requests[0]?.agent_id, 'enrolling-agent');
  assert.equal(requests[0]?.public_key, key.publicKeyPem);
  assert.ok(!JSON.stringify(requests).includes('PRIVATE KEY'));

  // Enrolling again keeps the key.
  await enroll({ configFile, enrollmentToken: 'cia_enroll_x' });
  assert.equal(requests[1]?.public_key, key.publicKeyPem);
});

void test('enroll refuses a --public-key-file holding the private signing key, junk or nothing, before the aggregator is asked', async (t) => {
  const { dir } = await scratch(t);
  // The aggregator's own enrollment endpoint, on a real registry file.
  const registry = await AgentRegistry.open(`${dir}/agents.json`);
  const ingest = { ready: true, state: 'ready' as WriterState, retryAfterSeconds: () => 1, ingest: () => Promise.reject(new Error('not called')) };
  const app = createReceiver({ ingest, limits: { maxBodyBytes: 1 << 20, maxDecompressedBytes: 1 << 20 }, logger: pino({ level: 'silent' }), auth: { mode: 'token', registry } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const configFile = `${dir}/agent.yaml`;
  await writeFile(configFile, JSON.stringify({ agent: { id: 'runner-01', state_dir: `${dir}/state` }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url } }));
  const { key } = await ensureSigningKey(`${dir}/state/signing-key.pem`);
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
  await writeFile(`${dir}/junk.txt`, 'not a key');
  const cases: Array<[string, RegExp]> = [
    [`${dir}/state/signing-key.pem`, /^--public-key-file \S+signing-key\.pem: not an Ed25519 public key in PEM \(SPKI.*it is a PRIVATE key, which must never leave the agent; give the public half .*nothing was sent to the aggregator$/],
    [`${dir}/junk.txt`, /^--public-key-file \S+junk\.txt: not an Ed25519 public key/],
    [`${dir}/missing.pem`, /^--public-key-file \S+missing\.pem: cannot read it: no such file$/],
  ];
  for (const [publicKeyFile, message] of cases) {
    await assert.rejects(enroll({ configFile, enrollmentToken: grant.token, publicKeyFile }), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'CIA_ERR_CLI_USAGE', publicKeyFile);
      assert.match(err.message, message);
      assert.ok(!err.message.includes(key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().split('\n')[1]!), 'no key material in the message');
      return true;
    });
  }
  const listed = await registry.list();
  assert.deepEqual(listed.agents, [], 'nothing was enrolled');
  assert.equal(listed.enrollmentTokens[0]?.uses_left, 1, 'the enrollment token is not spent');
  await assert.rejects(access(`${dir}/state/credentials.json`));

  // The public half is taken, and registered as sent.
  await writeFile(`${dir}/public.pem`, key.publicKeyPem);
  await enroll({ configFile, enrollmentToken: grant.token, publicKeyFile: `${dir}/public.pem` });
  assert.equal((await registry.list()).agents[0]?.public_key, key.publicKeyPem);
  assert.ok(!(await readFile(`${dir}/agents.json`, 'utf8')).includes('PRIVATE'));
});

void test('enroll refuses --ca-file with an http:// URL: the token would travel in clear text and nothing of the TLS be checked', async (t) => {
  const { dir } = await scratch(t);
  const { url, requests } = await enrollEndpoint(t);
  const configFile = `${dir}/agent.yaml`;
  await writeFile(configFile, JSON.stringify({ agent: { id: 'runner-01', state_dir: `${dir}/state` }, sources: [{ type: 'file', id: 'f', dataset: 'ci', include: [`${dir}/*.log`] }], output: { url: 'https://aggregator.invalid:4318' } }));
  await assert.rejects(enroll({ configFile, url, enrollmentToken: 'cia_enroll_x', caFile: `${dir}/ca.pem` }), { code: 'CIA_ERR_CLI_USAGE', message: /is an http:\/\/ URL, but TLS is configured/ });
  assert.deepEqual(requests, [], 'the aggregator was not asked');
});
