// chainHashAndText writes a record's canonical bytes once and gives both the hash and the text (the
// aggregator's verify stage): both must be exactly what chainHash(prev, canonicalRecord(record))
// gives, the path every verifier documents, over records with odd values of every kind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chainHash, chainHashAndText, chainHashOfRecord, genesisHash } from '../../../../core/integrity/chain.ts';
import { canonicalAttributes, canonicalRecord, type AttestedInput, type AttestedRecord } from '../../../../core/integrity/record.ts';
import { seededPicks } from '../../../helpers/random.ts';

const oddStrings = [
  '', 'plain', 'quote "', '"', '\\', 'back\\slash \\"', 'new\nline\r\t', 'nul \u0000', 'unit \u001f', 'del \u007f', 'e\u0301 é', '€ ключ',
  '\ud83d\ude00', 'lone \ud800', '\udc00 lone', 'x\ud800\ud800y', '\u2028\u2029', '</script>', 'literal \\u0041', 'a'.repeat(40), `${'b'.repeat(30)}"`,
];
const oddNumbers = [0, -0, 1, -1, 0.5, 1e21, 1e-7, 2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63), 2 ** 64, Number.MAX_VALUE, Number.NaN, Infinity, -Infinity];
const oddBigints = [0n, 5n, -5n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n];

function value(g: ReturnType<typeof seededPicks>, depth: number): AttestedInput {
  switch (g.int(depth > 2 ? 6 : 9)) {
    case 0:
    case 1:
      return g.pick(oddStrings) + g.pick(oddStrings);
    case 2:
      return g.pick(oddNumbers);
    case 3:
      return g.pick(oddBigints);
    case 4:
      return g.pick([true, false, null, undefined]);
    case 5:
      return new Uint8Array([g.int(256), 0x22, 0x5c, g.int(256)]);
    case 6:
      return Array.from({ length: g.int(4) }, () => value(g, depth + 1));
    default:
      return attributes(g, depth + 1, 4);
  }
}

function attributes(g: ReturnType<typeof seededPicks>, depth: number, most: number): Record<string, AttestedInput> {
  const out: Record<string, AttestedInput> = {};
  for (let i = g.int(most); i > 0; i--) out[g.pick(oddStrings) + g.pick(['', 'k', '.x', 'ci_audit.chain.seq'])] = value(g, depth);
  return out;
}

function records(seed: number, count: number): AttestedRecord[] {
  const g = seededPicks(seed);
  return Array.from({ length: count }, (_, i) => ({
    agent: g.pick(['runner-01', 'a"b', 'é\ud800']),
    seq: i + 1,
    timeUnixNano: g.pick<AttestedRecord['timeUnixNano']>([0n, 1_795_688_521_482_113_789n, '1795688521000000005', [1795688521, 482113789], [0, 5]]),
    observedTimeUnixNano: g.pick<AttestedRecord['observedTimeUnixNano']>([0n, 1_795_688_522_000_000_000n, [12.7, 999_999_999.9]]),
    severityNumber: g.pick([0, 9, 24]),
    body: value(g, 0),
    attributes: attributes(g, 0, 30),
    resource: g.int(2) === 0 ? { 'host.name': 'runner-01', 'ci_audit.agent.id': 'runner-01' } : attributes(g, 1, 5),
  }));
}

void test('chainHashAndText gives chainHash of canonicalRecord and that text, for generated odd records, with and without a kept resource text', () => {
  const previous = [genesisHash, 'ab'.repeat(32), 'AB'.repeat(32), 'not hex', ''];
  let n = 0;
  for (const seed of [1, 2, 3]) {
    for (const record of records(seed, 700)) {
      const prev = previous[n++ % previous.length]!;
      const resourceText = n % 2 === 0 ? canonicalAttributes(record.resource) : undefined;
      const text = canonicalRecord(record, resourceText);
      const got = chainHashAndText(prev, record, resourceText);
      assert.deepEqual(got, { hash: chainHash(prev, text), canonical: text }, `seed ${seed}, record ${record.seq}`);
      assert.equal(chainHashOfRecord(prev, record, resourceText), got.hash);
    }
  }
});

void test('chainHashAndText is right for a record larger than the reused buffer, and for the next one', () => {
  const base = { agent: 'runner-01', seq: 7, timeUnixNano: 1n, observedTimeUnixNano: 0n, severityNumber: 9, resource: {} };
  const large: AttestedRecord = { ...base, body: `"${'x'.repeat(100_000)}\\`, attributes: { long: 'é'.repeat(50_000), quote: '"'.repeat(1000) } };
  const small: AttestedRecord = { ...base, body: 'after', attributes: { k: 'v' } };
  for (const record of [large, small]) {
    const text = canonicalRecord(record);
    assert.deepEqual(chainHashAndText(genesisHash, record), { hash: chainHash(genesisHash, text), canonical: text });
  }
});
