import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchLine } from '../../../../aggregator/index/bulk-batcher.ts';
import { bulkBody } from '../../../../aggregator/index/elasticsearch-writer.ts';

/** The body as NDJSON text encoded in one go: what bulkBody must write, byte for byte. */
function expected(lines: readonly BatchLine[], positions: readonly number[]): Buffer {
  return Buffer.from(positions.map((i) => `${lines[i]!.action}\n${lines[i]!.document}\n`).join(''));
}

const texts = ['{"a":1}', '', 'é', 'ключ 😀', '\ud800', 'x\udfffy', '\u2028', 'a'.repeat(5000), `${'b'.repeat(3000)}é`, '€'.repeat(700), '😀'.repeat(300)];

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

void test('the bulk body is the lines as NDJSON in UTF-8, wherever the non-ASCII lines are', () => {
  const next = random(7);
  for (let round = 0; round < 500; round++) {
    const count = 1 + Math.floor(next() * 12);
    const lines: BatchLine[] = Array.from({ length: count }, () => ({
      action: next() < 0.8 ? '{"create":{"_index":"logs-ci_audit.auth-default"}}' : texts[Math.floor(next() * texts.length)]!,
      document: texts[Math.floor(next() * texts.length)]!,
    }));
    const all = lines.map((_, i) => i);
    assert.deepEqual(bulkBody(lines, all), expected(lines, all));
    // A retry sends some lines again, in their order.
    const some = all.filter(() => next() < 0.5);
    assert.deepEqual(bulkBody(lines, some), expected(lines, some));
  }
});

void test('a body of only multi-byte text, and an empty one', () => {
  const lines: BatchLine[] = texts.map((t) => ({ action: t, document: '😀'.repeat(50) + t }));
  const all = lines.map((_, i) => i);
  assert.deepEqual(bulkBody(lines, all), expected(lines, all));
  assert.equal(bulkBody(lines, []).byteLength, 0);
});
