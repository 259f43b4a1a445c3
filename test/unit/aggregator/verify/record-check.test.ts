import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainAttr } from '../../../../core/wire.ts';
import { checkRecord } from '../../../../aggregator/verify/record-check.ts';
import { ChainBuilder, decoded } from './chain-fixtures.ts';

void test('a record hashed by the agent checks out with the same agent id, and its canonical text is returned', () => {
  const chain = new ChainBuilder('runner-01');
  const record = chain.next('sshd[1]: Accepted publickey for deploy', { attributes: { 'user.name': 'deploy', 'process.pid': 2811n } });
  const check = checkRecord(record, 'runner-01');
  assert.equal(check.kind, 'chained');
  if (check.kind !== 'chained') return;
  assert.equal(check.hashOk, true);
  assert.equal(check.computedHash, chain.head.hash);
  assert.deepEqual(check.position, { seq: 1, hash: chain.head.hash, prevHash: '0'.repeat(64) });
  const parsed = JSON.parse(check.canonical) as Record<string, unknown>;
  assert.equal(parsed.agent, 'runner-01');
  assert.equal((parsed.attributes as Record<string, unknown>)[chainAttr.hash], undefined, 'the chain attributes are not part of the record');
});

void test('a changed body, attribute, time or agent id no longer matches the hash', () => {
  const chain = new ChainBuilder('runner-01');
  const variants = [
    (r: ReturnType<ChainBuilder['next']>) => (r.body = 'sshd[1]: Accepted publickey for root'),
    (r: ReturnType<ChainBuilder['next']>) => (r.attributes['user.name'] = 'root'),
    (r: ReturnType<ChainBuilder['next']>) => (r.timeUnixNano += 1n),
    (r: ReturnType<ChainBuilder['next']>) => (r.resource['host.name'] = 'elsewhere'),
  ];
  for (const change of variants) {
    const record = chain.next('sshd[1]: Accepted publickey for deploy', { attributes: { 'user.name': 'deploy' } });
    change(record);
    const check = checkRecord(record, 'runner-01');
    assert.ok(check.kind === 'chained' && !check.hashOk, String(change));
  }
  const record = chain.next('x');
  const asOther = checkRecord(record, 'runner-02');
  assert.ok(asOther.kind === 'chained' && !asOther.hashOk, 'the same record claimed by another agent');
});

void test('records without (well-formed) chain attributes are not chained', () => {
  assert.deepEqual(checkRecord(decoded('a', {}, 'plain'), 'a'), { kind: 'unchained' });
  assert.deepEqual(checkRecord(decoded('a', { [chainAttr.seq]: 1, [chainAttr.hash]: 'nothex', [chainAttr.prevHash]: '0'.repeat(64) }, 'x'), 'a'), { kind: 'unchained' });
});
