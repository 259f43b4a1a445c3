// decodeBody sizes its output from the size the body claims (the gzip trailer, the zstd frame header):
// whatever it says, the bytes are the codec's and the limits hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, gunzipSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { decodeBody } from '../../../../aggregator/receiver/body.ts';
import { hasErrorCode } from '../../../../core/errors.ts';

const limit = 32 * 1024 * 1024;

void test('gunzipped bodies are the bytes gzip was given, from empty to beyond one chunk, in one member or several', () => {
  const texts = [
    Buffer.alloc(0),
    Buffer.from('x'),
    randomBytes(64 * 1024),
    randomBytes(64 * 1024 - 1),
    Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 'a')]),
    Buffer.alloc(9 * 1024 * 1024, 'z'), // beyond the largest chunk
  ];
  for (const text of texts) assert.deepEqual(decodeBody(gzipSync(text), 'gzip', limit), text, `${text.byteLength} bytes`);
  // Several members: the trailer names only the last one's size.
  const members = Buffer.concat([gzipSync(Buffer.alloc(500_000, 'b')), gzipSync(Buffer.from('tail'))]);
  assert.deepEqual(decodeBody(members, 'gzip', limit), gunzipSync(members));
});

void test('a trailer that lies about the size is refused as corrupt gzip; a body beyond the limit as too large', () => {
  const body = gzipSync(Buffer.alloc(200_000, 'c'));
  for (const size of [0, 1, 199_999, 4_000_000, 0xffffffff]) {
    const lying = Buffer.from(body);
    lying.writeUInt32LE(size, lying.byteLength - 4);
    assert.throws(() => decodeBody(lying, 'gzip', limit), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING'), `size ${size}`);
  }
  assert.throws(() => decodeBody(body, 'gzip', 199_999), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'));
  assert.deepEqual(decodeBody(body, 'gzip', 200_000), Buffer.alloc(200_000, 'c'));
});

const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** A zstd frame of `text` at `level`, with the content size in its header (zstd writes it when given the whole input at once). */
function zstd(text: Buffer, params: Record<number, number> = {}): Buffer {
  return zstdCompressSync(text, { params });
}

/**
 * The frame of `compressed` (one frame, no dictionary, its header without a single-segment flag) with
 * its header rewritten: an 8-byte content size of `size`, or none, keeping its window descriptor.
 */
function withContentSize(compressed: Buffer, size: bigint | undefined): Buffer {
  const descriptor = compressed[4]!;
  assert.equal(descriptor & 0x23, 0, 'a frame with a window descriptor and no dictionary id');
  const fieldBytes = [0, 2, 4, 8][descriptor >> 6]!;
  const blocks = compressed.subarray(6 + fieldBytes);
  const field = Buffer.alloc(size === undefined ? 0 : 8);
  if (size !== undefined) field.writeBigUInt64LE(size);
  return Buffer.concat([zstdMagic, Buffer.from([size === undefined ? 0x00 : 0xc0, compressed[5]!]), field, blocks]);
}

void test('zstd bodies are the bytes zstd was given: empty to beyond one chunk, with or without a content size, several frames, any level', () => {
  const texts = [
    Buffer.alloc(0),
    Buffer.from('x'),
    randomBytes(64 * 1024),
    randomBytes(300), // a 2-byte content size field (stored as size - 256)
    Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 'a')]),
    Buffer.alloc(9 * 1024 * 1024, 'z'), // beyond the largest chunk
  ];
  for (const text of texts) {
    assert.deepEqual(decodeBody(zstd(text), 'zstd', limit), text, `${text.byteLength} bytes`);
    assert.deepEqual(decodeBody(zstd(text, { [constants.ZSTD_c_contentSizeFlag]: 0 }), 'zstd', limit), text, `${text.byteLength} bytes, no content size`);
  }
  const text = Buffer.concat([randomBytes(100_000), Buffer.alloc(400_000, 'q')]);
  for (const level of [1, 3, 19]) assert.deepEqual(decodeBody(zstd(text, { [constants.ZSTD_c_compressionLevel]: level }), 'zstd', limit), text, `level ${level}`);
  const frames = Buffer.concat([zstd(Buffer.alloc(500_000, 'b')), zstd(Buffer.from('tail'))]);
  assert.deepEqual(decodeBody(frames, 'zstd', limit), Buffer.concat([Buffer.alloc(500_000, 'b'), Buffer.from('tail')]));
});

void test('a zstd content size that lies is refused as corrupt zstd; a body beyond the limit as too large, whatever size it declares', () => {
  const text = Buffer.alloc(3 * 1024 * 1024, 'c');
  const body = zstd(text, { [constants.ZSTD_c_windowLog]: 20 });
  assert.equal(body[4]! & 0x20, 0, 'a frame larger than its window: not single-segment');
  assert.deepEqual(decodeBody(withContentSize(body, BigInt(text.byteLength)), 'zstd', limit), text);
  for (const size of [0n, 1n, 199_999n, 4_000_000n, 2n ** 63n]) {
    assert.throws(() => decodeBody(withContentSize(body, size), 'zstd', limit), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING'), `size ${size}`);
  }
  for (const declared of [undefined, BigInt(text.byteLength)]) {
    assert.throws(() => decodeBody(withContentSize(body, declared), 'zstd', text.byteLength - 1), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'), `declared ${declared}`);
  }
  // A huge size declared: the output stops at the limit or at the end of the content, which then falls short of it.
  assert.throws(
    () => decodeBody(withContentSize(body, 2n ** 40n), 'zstd', text.byteLength - 1),
    (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE') || hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING'),
  );
  assert.deepEqual(decodeBody(body, 'zstd', text.byteLength), text);
});

void test('zstd that needs a window beyond 8 MiB (RFC 9659) and corrupt zstd are refused as bad encoding', () => {
  const big = zstd(Buffer.alloc(20 * 1024 * 1024), { [constants.ZSTD_c_windowLog]: 27, [constants.ZSTD_c_contentSizeFlag]: 0 });
  assert.throws(() => decodeBody(big, 'zstd', 64 * 1024 * 1024), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING') && /window exceeds 8388608 bytes.*RFC 9659/.test(err.message));
  // Single-segment: the declared size is the window.
  const huge = Buffer.concat([zstdMagic, Buffer.from([0xe0]), Buffer.alloc(8, 0xff), Buffer.from([0x01, 0x00, 0x00])]);
  assert.throws(() => decodeBody(huge, 'zstd', limit), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING') && /window exceeds/.test(err.message));
  const valid = zstd(Buffer.from('a valid body, cut short'));
  for (const [corrupt, message] of [
    [Buffer.from('definitely not zstd'), /body is not valid zstd data: Unknown frame descriptor/],
    [valid.subarray(0, valid.byteLength - 3), /body is not valid zstd data: unexpected end of file/],
    [Buffer.concat([zstdMagic, Buffer.from([0x00, 0x00, 0xde, 0xad, 0xbe, 0xef])]), /body is not valid zstd data/],
  ] as const) {
    assert.throws(() => decodeBody(corrupt, 'zstd', limit), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING') && message.test(err.message), message.source);
  }
});

void test('every frame of a zstd body is decoded, skippable frames skipped; the limit holds over all of them; bytes after the frames are refused', () => {
  const skippable = Buffer.concat([Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
  const body = Buffer.concat([zstd(Buffer.alloc(200_000, 'd')), skippable, zstd(Buffer.alloc(0)), zstd(Buffer.from('end'), { [constants.ZSTD_c_checksumFlag]: 1 })]);
  assert.deepEqual(decodeBody(body, 'zstd', limit), Buffer.concat([Buffer.alloc(200_000, 'd'), Buffer.from('end')]));
  assert.deepEqual(decodeBody(body, 'zstd', 200_003), Buffer.concat([Buffer.alloc(200_000, 'd'), Buffer.from('end')]));
  assert.throws(() => decodeBody(body, 'zstd', 200_002), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'));
  assert.throws(() => decodeBody(body, 'zstd', 200_000), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_TOO_LARGE'));
  for (const tail of [Buffer.from('xx'), zstd(Buffer.from('cut short')).subarray(0, 12)]) {
    assert.throws(
      () => decodeBody(Buffer.concat([zstd(Buffer.from('first')), tail]), 'zstd', limit),
      (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING') && /bytes after its first frame are not whole zstd frames/.test(err.message),
    );
  }
});

void test('a zstd body of more than 16 frames is refused at once: each frame would cost a zstd context of its own', () => {
  // Node.js decodes one frame a call, 50-100 µs each whatever it holds: 1 MiB of empty frames (9 bytes
  // each, 116,508 of them) held the event loop for seconds and then decoded to nothing.
  const empty = zstd(Buffer.alloc(0));
  const many = Buffer.concat(Array.from({ length: Math.floor((1024 * 1024) / empty.byteLength) }, () => empty));
  const started = performance.now();
  assert.throws(
    () => decodeBody(many, 'zstd', limit),
    (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING') && err.message === 'body holds more than 16 zstd frames, the most the receiver decodes in one request; compress each request as one zstd frame',
  );
  const ms = performance.now() - started;
  assert.ok(ms < 250, `refused after ${Math.round(ms)} ms`);
  // 16 frames are decoded, skippable ones counted with them; the 17th refuses the body.
  const part = zstd(Buffer.from('part;'));
  assert.deepEqual(decodeBody(Buffer.concat(Array.from({ length: 16 }, () => part)), 'zstd', limit), Buffer.from('part;'.repeat(16)));
  const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
  assert.throws(() => decodeBody(Buffer.concat([...Array.from({ length: 16 }, () => part), skippable]), 'zstd', limit), (err) => hasErrorCode(err, 'CIA_ERR_RECEIVER_ENCODING'));
});
