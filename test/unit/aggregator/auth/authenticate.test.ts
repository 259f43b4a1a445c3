// The pure auth decisions: mode defaults, the Authorization header, token and certificate outcomes,
// the listen policy, and the agent identity check on decoded records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, bearerToken, effectiveAuthMode } from '../../../../aggregator/auth/authenticate.ts';
import { enforceAgentIdentity } from '../../../../aggregator/auth/identity.ts';
import { checkListenSecurity, isLoopbackHost } from '../../../../aggregator/auth/listen-security.ts';
import type { TokenCheck } from '../../../../aggregator/auth/registry.ts';
import type { DecodedLogRecord } from '../../../../aggregator/log-record.ts';

const registry = {
  checkToken: (token: string): Promise<TokenCheck> =>
    Promise.resolve(token === 'good' ? { kind: 'ok', agentId: 'a' } : token === 'old' ? { kind: 'revoked', agentId: 'b' } : { kind: 'unknown' }),
  isRevoked: (id: string) => Promise.resolve(id === 'b'),
};

void test('auth mode defaults to none only on loopback without TLS', () => {
  assert.equal(effectiveAuthMode(undefined, true, false), 'none');
  assert.equal(effectiveAuthMode(undefined, true, true), 'token');
  assert.equal(effectiveAuthMode(undefined, false, true), 'token');
  assert.equal(effectiveAuthMode('mtls', true, false), 'mtls');
});

void test('bearerToken reads "Bearer <token>" and tells absent from malformed', () => {
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.equal(bearerToken('bearer  abc '), 'abc');
  assert.equal(bearerToken('Basic abc'), null);
  assert.equal(bearerToken('Bearer a b'), null);
});

void test('token decisions: missing, malformed, unknown, revoked are 401 with a code and never the token', async () => {
  const cases: Array<[string | undefined, string]> = [
    [undefined, 'CIA_ERR_AUTH_MISSING'],
    ['Token secret-value', 'CIA_ERR_AUTH_INVALID'],
    ['Bearer secret-value', 'CIA_ERR_AUTH_INVALID'],
    ['Bearer old', 'CIA_ERR_AUTH_REVOKED'],
  ];
  for (const [authorization, code] of cases) {
    const decision = await authenticate('token', { authorization, peer: undefined }, registry);
    assert.equal(decision.ok, false);
    if (!decision.ok) {
      assert.equal(decision.status, 401);
      assert.equal(decision.code, code);
      assert.ok(!decision.message.includes('secret-value'));
    }
  }
  assert.deepEqual(await authenticate('token', { authorization: 'Bearer good', peer: undefined }, registry), { ok: true, agentId: 'a', via: 'token' });
  assert.deepEqual(await authenticate('none', { authorization: undefined, peer: undefined }, registry), { ok: true, via: 'none' });
});

void test('certificate decisions: a trusted CN is the agent, a foreign or revoked one is refused, token_or_mtls falls back to the token', async () => {
  assert.deepEqual(await authenticate('mtls', { authorization: undefined, peer: { authorized: true, commonName: 'a' } }, registry), { ok: true, agentId: 'a', via: 'mtls' });
  const foreign = await authenticate('mtls', { authorization: 'Bearer good', peer: { authorized: false, commonName: 'a' } }, registry);
  assert.equal(foreign.ok ? '' : foreign.code, 'CIA_ERR_AUTH_INVALID');
  const none = await authenticate('mtls', { authorization: 'Bearer good', peer: undefined }, registry);
  assert.equal(none.ok ? '' : none.code, 'CIA_ERR_AUTH_MISSING');
  const revoked = await authenticate('token_or_mtls', { authorization: undefined, peer: { authorized: true, commonName: 'b' } }, registry);
  assert.equal(revoked.ok ? '' : revoked.code, 'CIA_ERR_AUTH_REVOKED');
  assert.deepEqual(await authenticate('token_or_mtls', { authorization: 'Bearer good', peer: undefined }, registry), { ok: true, agentId: 'a', via: 'token' });
});

void test('the receiver refuses clear text beyond loopback unless allowed, with a warning then', () => {
  for (const host of ['127.0.0.1', '127.8.9.1', '::1', '[::1]', 'localhost']) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'aggregator.example']) assert.equal(isLoopbackHost(host), false, host);
  assert.deepEqual(checkListenSecurity({ host: '127.0.0.1', allow_insecure: false }), {});
  assert.deepEqual(checkListenSecurity({ host: '0.0.0.0', tls: {}, allow_insecure: false }), {});
  assert.throws(() => checkListenSecurity({ host: '0.0.0.0', allow_insecure: false }), { code: 'CIA_ERR_TLS_CONFIG', message: /refusing to listen on 0\.0\.0\.0 without TLS/ });
  assert.match(checkListenSecurity({ host: '0.0.0.0', allow_insecure: true }).warning ?? '', /WITHOUT TLS/);
});

function record(resource: DecodedLogRecord['resource']): DecodedLogRecord {
  return {
    resource, scope: { name: '', version: '', attributes: {} }, timeUnixNano: 0n, observedTimeUnixNano: 0n, severityNumber: 0, severityText: '',
    body: 'x', attributes: {}, droppedAttributesCount: 0, flags: 0, traceId: '', spanId: '', eventName: '',
  };
}

void test('records claiming another agent are refused as a whole; records claiming none are stamped', () => {
  const own = record({ 'ci_audit.agent.id': 'a' });
  const anonymous = record({ 'service.name': 'some-sdk' });
  assert.deepEqual(enforceAgentIdentity([own, anonymous], 'a'), { ok: true });
  assert.equal(anonymous.resource['ci_audit.agent.id'], 'a');

  const untouched = record({});
  const forged = record({ 'ci_audit.agent.id': 'b' });
  assert.deepEqual(enforceAgentIdentity([untouched, forged], 'a'), { ok: false, claimed: 'b', index: 1 });
  assert.equal(untouched.resource['ci_audit.agent.id'], undefined, 'nothing is changed in a refused request');
  assert.deepEqual(enforceAgentIdentity([record({ 'ci_audit.agent.id': 7 })], 'a'), { ok: false, claimed: '(a number)', index: 0 });
});

void test('a certificate refused for another reason than its CA says why (an expired one is not "not signed by a CA we trust")', async () => {
  const expired = await authenticate('mtls', { authorization: undefined, peer: { authorized: false, commonName: 'a', refusedBecause: 'CERT_HAS_EXPIRED' } }, registry);
  assert.equal(expired.ok ? undefined : expired.code, 'CIA_ERR_AUTH_INVALID');
  assert.match(expired.ok ? '' : expired.message, /the client certificate has expired \(CERT_HAS_EXPIRED\); issue the agent a new one$/);
  const foreign = await authenticate('mtls', { authorization: undefined, peer: { authorized: false, commonName: 'a', refusedBecause: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } }, registry);
  assert.match(foreign.ok ? '' : foreign.message, /not signed by a CA the aggregator trusts/);
});
