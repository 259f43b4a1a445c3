// decodeBody sizes gunzip's output from the gzip trailer: whatever the trailer says, the bytes are
// gunzip's and the limits hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
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
