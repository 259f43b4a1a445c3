// The receiver over real TLS (certificates made by openssl for this run) with a real registry file,
// and the agent's side of it: `enroll`, the exporter with CA, pin and client certificate. Elasticsearch
// is replaced by an in-memory Ingest here (test/integration/auth covers the real one).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ExportResultCode } from '@opentelemetry/core';
import pino from 'pino';
import { request } from 'undici';
import { enroll } from '../../../../agent/enroll/enroll.ts';
import { readCredential } from '../../../../agent/enroll/credentials.ts';
import { OtlpHttpLogExporter } from '../../../../agent/sinks/otlp-http-exporter.ts';
import { agentConnectOptions } from '../../../../agent/sinks/tls-connect.ts';
import type { AuthMode } from '../../../../aggregator/auth/authenticate.ts';
import { AgentRegistry } from '../../../../aggregator/auth/registry.ts';
import { receiverTlsOptions } from '../../../../aggregator/auth/tls-options.ts';
import { createReceiver } from '../../../../aggregator/receiver/server.ts';
import { MemoryIngest } from '../../../helpers/memory-ingest.ts';
import { createTestPki } from '../../../helpers/tls.ts';
import type { TestPki } from '../../../helpers/tls.ts';
import { makeRecords } from '../../agent/helpers.ts';

const silent = pino({ level: 'silent' });

let pki: TestPki;
let work: string;
before(async () => {
  pki = await createTestPki();
  work = await mkdtemp(join(tmpdir(), 'ci-audit-auth-'));
});

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
  await rm(pki.dir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

async function startReceiver(mode: AuthMode, clientCa = false) {
  const ingest = new MemoryIngest();
  const registry = await AgentRegistry.open(join(await mkdtemp(join(work, 'reg-')), 'agents.json'), { recheckMs: 0 });
  const https = await receiverTlsOptions({ cert_file: pki.serverCertFile, key_file: pki.serverKeyFile, ...(clientCa ? { client_ca_file: pki.caFile } : {}) });
  const app = createReceiver({ ingest, limits: { maxBodyBytes: 1 << 20, maxDecompressedBytes: 4 << 20 }, logger: silent, auth: { mode, registry }, https });
  await app.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => app.close());
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return { ingest, registry, url };
}

async function exporter(url: string, tls: Parameters<typeof agentConnectOptions>[0], token?: string) {
  const e = new OtlpHttpLogExporter({ url, token, timeoutMs: 5000, logger: silent, tls: await agentConnectOptions(tls) });
  closers.push(() => e.shutdown());
  return e;
}

async function agentConfig(url: string, agentId: string): Promise<{ file: string; stateDir: string }> {
  const dir = await mkdtemp(join(work, 'agent-'));
  const file = join(dir, 'agent.yaml');
  await writeFile(file, `agent:\n  id: ${agentId}\n  state_dir: ./state\nsources:\n  - { type: file, id: f, include: [./logs/*.log], dataset: ci }\noutput:\n  url: ${url}\n`);
  return { file, stateDir: join(dir, 'state') };
}

void test('enroll over TLS stores a 0600 credential whose token ships records as that agent', async () => {
  const { ingest, registry, url } = await startReceiver('token');
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
  const { file, stateDir } = await agentConfig(url, 'test-agent');
  const result = await enroll({ configFile: file, enrollmentToken: grant.token, caFile: pki.caFile });
  assert.equal(result.agentId, 'test-agent');
  const credential = await readCredential(stateDir);
  assert.ok(credential !== undefined);
  assert.equal(credential.agent_id, 'test-agent');
  // The enrollment token is spent: a second enrollment is refused with the server's reason.
  await assert.rejects(enroll({ configFile: file, enrollmentToken: grant.token, caFile: pki.caFile }), {
    code: 'CIA_ERR_AUTH_ENROLL',
    message: /refused to enroll agent test-agent: CIA_ERR_AUTH_INVALID: the enrollment token is unknown, used up or expired/,
  });

  const sender = await exporter(url, { ca_file: pki.caFile }, credential.token);
  const sent = await sender.send(makeRecords(['one', 'two']));
  assert.equal(sent.code, ExportResultCode.SUCCESS, sent.error?.message);
  assert.deepEqual(ingest.records.map((r) => [r.body, r.resource['ci_audit.agent.id']]), [['one', 'test-agent'], ['two', 'test-agent']]);
});

void test('missing, invalid and revoked tokens and a forged agent id are refused, and nothing reaches the ingest', async () => {
  const { ingest, registry, url } = await startReceiver('token');
  const grant = await registry.createEnrollmentToken({ uses: 2, ttlSeconds: 600 });
  const other = await registry.enroll(grant.token, 'other-agent');
  const revoked = await registry.enroll(grant.token, 'test-agent');
  await registry.revoke('test-agent');
  const cases: Array<[string | undefined, RegExp]> = [
    [undefined, /HTTP 401: CIA_ERR_AUTH_MISSING: missing credential/],
    ['cia_agent_not-a-real-token', /HTTP 401: CIA_ERR_AUTH_INVALID: invalid token/],
    [revoked.token, /HTTP 401: CIA_ERR_AUTH_REVOKED: the token of agent test-agent was revoked/],
    // other-agent's valid token, records that say test-agent:
    [other.token, /HTTP 403: CIA_ERR_AUTH_FORBIDDEN: authenticated as agent other-agent, but record 0 claims ci_audit.agent.id test-agent/],
  ];
  for (const [token, expected] of cases) {
    const result = await (await exporter(url, { ca_file: pki.caFile }, token)).send(makeRecords(['forged']));
    assert.equal(result.code, ExportResultCode.FAILED);
    assert.equal((result.error as { code?: string } | undefined)?.code, 'CIA_ERR_SHIP_UNAVAILABLE', 'kept for retry, not set aside');
    assert.match(result.error!.message, expected);
    if (token !== undefined) assert.ok(!result.error!.message.includes(token), 'the token is never echoed');
  }
  assert.equal(ingest.records.length, 0);
});

void test('the agent refuses an aggregator signed by another CA, a pin mismatch, and plain HTTP gets no answer from the TLS port', async () => {
  const { ingest, registry, url } = await startReceiver('token');
  const grant = await registry.createEnrollmentToken({ uses: 1, ttlSeconds: 600 });
  const { token } = await registry.enroll(grant.token, 'test-agent');

  const wrongCa = await (await exporter(url, { ca_file: pki.otherCaFile }, token)).send(makeRecords(['x']));
  assert.match(wrongCa.error?.message ?? '', /unavailable: .*(self-signed|unable to verify|UNABLE_TO_VERIFY|SELF_SIGNED)/i);

  const spki = new X509Certificate(await readFile(pki.serverCertFile)).publicKey.export({ type: 'spki', format: 'der' });
  const pin = createHash('sha256').update(spki).digest('base64');
  const wrongPin = `${pin.startsWith('A') ? 'B' : 'A'}${pin.slice(1)}`;
  const mismatch = await (await exporter(url, { ca_file: pki.caFile, pin: wrongPin }, token)).send(makeRecords(['x']));
  assert.match(mismatch.error?.message ?? '', /does not match output\.tls\.pin/);
  assert.equal(ingest.records.length, 0);

  const pinned = await (await exporter(url, { ca_file: pki.caFile, pin }, token)).send(makeRecords(['pinned']));
  assert.equal(pinned.code, ExportResultCode.SUCCESS, pinned.error?.message);

  const plain = url.replace('https:', 'http:');
  await assert.rejects(
    (async () => {
      const response = await request(`${plain}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{"resourceLogs":[]}' });
      await response.body.text();
      throw new Error(`plain HTTP got an answer: ${response.statusCode}`);
    })(),
    (err: Error) => !err.message.startsWith('plain HTTP got an answer'),
  );
  assert.deepEqual(ingest.records.map((r) => r.body), ['pinned']);
});

void test('mTLS: a client certificate of the trusted CA is the agent id; a foreign one or none is refused', async () => {
  const { ingest, url } = await startReceiver('mtls', true);
  const good = await pki.clientCert('test-agent');
  const foreign = await pki.clientCert('test-agent', 'other');
  const ok = await (await exporter(url, { ca_file: pki.caFile, cert_file: good.certFile, key_file: good.keyFile })).send(makeRecords(['by cert']));
  assert.equal(ok.code, ExportResultCode.SUCCESS, ok.error?.message);
  const refused = await (await exporter(url, { ca_file: pki.caFile, cert_file: foreign.certFile, key_file: foreign.keyFile })).send(makeRecords(['x']));
  assert.match(refused.error?.message ?? '', /HTTP 401: CIA_ERR_AUTH_INVALID: the client certificate is not signed by a CA the aggregator trusts/);
  const none = await (await exporter(url, { ca_file: pki.caFile })).send(makeRecords(['x']));
  assert.match(none.error?.message ?? '', /HTTP 401: CIA_ERR_AUTH_MISSING: a client certificate is required/);
  const impostor = await pki.clientCert('someone-else');
  const forged = await (await exporter(url, { ca_file: pki.caFile, cert_file: impostor.certFile, key_file: impostor.keyFile })).send(makeRecords(['x']));
  assert.match(forged.error?.message ?? '', /HTTP 403: CIA_ERR_AUTH_FORBIDDEN: authenticated as agent someone-else/);
  assert.deepEqual(ingest.records.map((r) => r.body), ['by cert']);
});

void test('mTLS: after revoke and enrolling again, a certificate issued before the revocation stays refused and one issued after it is accepted', async () => {
  const { ingest, registry, url } = await startReceiver('mtls', true);
  const oldCert = await pki.clientCert('test-agent');
  const grant = await registry.createEnrollmentToken({ uses: 2, ttlSeconds: 600 });
  await registry.enroll(grant.token, 'test-agent');
  const send = async (cert: { certFile: string; keyFile: string }, body: string) =>
    (await exporter(url, { ca_file: pki.caFile, cert_file: cert.certFile, key_file: cert.keyFile })).send(makeRecords([body]));
  assert.equal((await send(oldCert, 'before revoke')).code, ExportResultCode.SUCCESS);
  await registry.revoke('test-agent');
  // A certificate's notBefore has whole seconds: the new one is made in a later second than the revocation.
  await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
  const newCert = await pki.clientCert('test-agent');
  await registry.enroll(grant.token, 'test-agent');
  const refused = await send(oldCert, 'old certificate');
  assert.match(refused.error?.message ?? '', /HTTP 401: CIA_ERR_AUTH_REVOKED: the client certificate's agent test-agent was revoked, and a certificate issued before a revocation stays refused/);
  const accepted = await send(newCert, 'new certificate');
  assert.equal(accepted.code, ExportResultCode.SUCCESS, accepted.error?.message);
  assert.deepEqual(ingest.records.map((r) => r.body), ['before revoke', 'new certificate']);
});

void test('listen.tls.client_ca_file must hold readable CA certificates: an empty file, junk or a key is refused at start, naming the option', async () => {
  for (const [name, text] of [
    ['empty', ''],
    ['junk', 'not a certificate\n'],
    ['a private key', await readFile(pki.serverKeyFile, 'utf8')],
    ['a broken certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
  ] as const) {
    const file = join(work, `client-ca-${name.replaceAll(' ', '-')}.pem`);
    await writeFile(file, text);
    await assert.rejects(
      receiverTlsOptions({ cert_file: pki.serverCertFile, key_file: pki.serverKeyFile, client_ca_file: file }),
      (err: unknown) => (err as { code?: string }).code === 'CIA_ERR_TLS_CONFIG' && (err as Error).message.startsWith(`listen.tls.client_ca_file ${file}: `),
      name,
    );
  }
  // The real CA file is taken.
  assert.ok((await receiverTlsOptions({ cert_file: pki.serverCertFile, key_file: pki.serverKeyFile, client_ca_file: pki.caFile })).ca);
});
