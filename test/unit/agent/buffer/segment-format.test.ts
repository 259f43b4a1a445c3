import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeEntry, entryHeaderBytes, maxEntryPayloadBytes, scanEntries, segmentFileName, segmentIndexOf } from '../../../../agent/buffer/segment-format.ts';

const payloads = ['first record', 'second, a bit longer record', 'third'].map((s) => Buffer.from(s));
const segment = Buffer.concat(payloads.map((p) => encodeEntry(p)));

test('entries read back in order, whole, with nothing left over', () => {
  const scan = scanEntries(segment, { final: true });
  assert.deepEqual(scan.payloads.map(String), payloads.map(String));
  assert.equal(scan.consumed, segment.length);
  assert.equal(scan.problem, undefined);
});

test('a torn tail (the last write cut short) is reported as torn at the start of the cut entry', () => {
  for (const cut of [1, 5, entryHeaderBytes + 2]) {
    const scan = scanEntries(segment.subarray(0, segment.length - cut), { final: true });
    assert.deepEqual(scan.payloads.map(String), payloads.slice(0, 2).map(String), `cut ${cut}`);
    assert.deepEqual(scan.problem, { reason: 'torn', offset: segment.length - encodeEntry(payloads[2]!).length });
    assert.equal(scan.consumed, scan.problem.offset);
  }
});

test('in a chunk that is not the end of the segment, an incomplete entry is where reading resumes, not damage', () => {
  const scan = scanEntries(segment.subarray(0, segment.length - 3), { final: false });
  assert.equal(scan.payloads.length, 2);
  assert.equal(scan.problem, undefined);
});

test('a changed byte in a payload is a CRC mismatch, and nothing after it is trusted', () => {
  const damaged = Buffer.from(segment);
  const second = encodeEntry(payloads[0]!).length;
  damaged.writeUInt8(damaged.readUInt8(second + entryHeaderBytes + 3) ^ 0x20, second + entryHeaderBytes + 3);
  const scan = scanEntries(damaged, { final: true });
  assert.deepEqual(scan.payloads.map(String), ['first record']);
  assert.deepEqual(scan.problem, { reason: 'crc', offset: second });
});

test('an impossible length field (0, or beyond the largest entry) is reported, not allocated', () => {
  for (const length of [0, maxEntryPayloadBytes + 1, 0xffffffff]) {
    const damaged = Buffer.from(segment);
    damaged.writeUInt32BE(length, 0);
    const scan = scanEntries(damaged, { final: true });
    assert.deepEqual(scan.payloads, []);
    assert.deepEqual(scan.problem, { reason: 'length', offset: 0 });
  }
});

test('maxEntries bounds one read', () => {
  const scan = scanEntries(segment, { final: true, maxEntries: 2 });
  assert.equal(scan.payloads.length, 2);
  assert.equal(scan.consumed, encodeEntry(payloads[0]!).length + encodeEntry(payloads[1]!).length);
});

test('segment names sort in index order and parse back; other files are not segments', () => {
  const names = [10, 2, 1_000_000].map(segmentFileName).sort();
  assert.deepEqual(names.map(segmentIndexOf), [2, 10, 1_000_000]);
  assert.equal(segmentIndexOf('acked.json'), undefined);
  assert.equal(segmentIndexOf('segment-1.buf'), undefined);
});
