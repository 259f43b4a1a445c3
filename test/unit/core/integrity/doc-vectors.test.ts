// docs/integrity.md gives test vectors for third-party verifiers; this keeps them true.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { chainHash, genesisHash } from '../../../../core/integrity/chain.ts';
import { canonicalRecord, parseCanonicalRecord } from '../../../../core/integrity/record.ts';

const doc = readFileSync(new URL('../../../../docs/integrity.md', import.meta.url), 'utf8');

function block(name: string): string {
  const match = new RegExp('```' + name + '\\n([^\\n]*)\\n```').exec(doc);
  assert.ok(match, `docs/integrity.md has a \`\`\`${name} block`);
  return match[1] ?? '';
}

describe('docs/integrity.md test vectors', () => {
  it('hash 1 and hash 2 follow from the canonical texts and the genesis hash', () => {
    const h1 = chainHash(genesisHash, block('canonical-1'));
    assert.equal(h1, block('hash-1'));
    assert.equal(chainHash(h1, block('canonical-2')), block('hash-2'));
  });

  it('the canonical texts are what the code writes for their records', () => {
    for (const name of ['canonical-1', 'canonical-2']) {
      const text = block(name);
      const r = parseCanonicalRecord(text);
      const again = canonicalRecord({
        agent: r.agent,
        seq: r.seq,
        timeUnixNano: BigInt(r.time),
        observedTimeUnixNano: BigInt(r.observed),
        severityNumber: r.severity,
        body: r.body,
        attributes: r.attributes,
        resource: r.resource,
      });
      assert.equal(again, text);
    }
  });
});
