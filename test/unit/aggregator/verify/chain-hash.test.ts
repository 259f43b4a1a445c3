// chainHash writes into one reused buffer and hashes it in one shot; the chain's definition is
// SHA-256(raw previous hash || UTF-8 of the canonical text), which a Hash object fed twice states plainly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chainHash, genesisHash } from '../../../../core/integrity/chain.ts';

function reference(previousHex: string, canonical: string): string {
  return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(canonical, 'utf8').digest('hex');
}

void test('chainHash is SHA-256 of the previous hash bytes and the canonical text, for short, long and non-ASCII texts', () => {
  const previous = [genesisHash, 'ab'.repeat(32), 'F0'.repeat(32)];
  const texts = ['', '{"v":1}', 'é ключ 😀 \u2028', 'x'.repeat(21_845), 'é'.repeat(40_000), '😀'.repeat(30_000), 'y'.repeat(200_000)];
  for (const prev of previous) for (const text of texts) assert.equal(chainHash(prev, text), reference(prev, text), `${prev.slice(0, 4)} / ${text.length}`);
  // A long text between two short ones: nothing of it may stay in what the short ones hash.
  assert.equal(chainHash(genesisHash, 'a'), reference(genesisHash, 'a'));
});

void test('a previous hash that is not 64 hex digits hashes as Buffer.from(hex) reads it', () => {
  for (const prev of ['', 'abc', 'zz'.repeat(32), `${'ab'.repeat(31)}zz`, 'ab'.repeat(40)]) {
    assert.equal(chainHash(prev, '{"v":1}'), reference(prev, '{"v":1}'), prev);
  }
});
