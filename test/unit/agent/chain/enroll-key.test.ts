// Enrollment registers the public half of the agent's signing key, creating the key (0600) when
// there is none yet, so that the aggregator can verify the agent's checkpoints from the start.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { readSigningKey } from '../../../../agent/chain/signing-key.ts';
import { enroll } from '../../../../agent/enroll/enroll.ts';
import { scratch } from './capture.ts';

void test('enroll sends the public key of integrity.signing_key (created 0600 when missing), never the private key', async (t) => {
  const { dir } = await scratch(t);
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
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
