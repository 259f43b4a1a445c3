import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpointAttr } from '../../../../core/wire.ts';
import { checkCheckpoint, keysById } from '../../../../aggregator/verify/checkpoint-check.ts';
import { checkpointRecord, decoded, newKey } from './chain-fixtures.ts';

const head = { seq: 42, hash: 'ab'.repeat(32) };

void test('a checkpoint signed by a registered key is valid; by another key it is invalid; by an unknown key id it is unknown', () => {
  const key = newKey();
  const other = newKey();
  const { keys } = keysById([key.pem]);
  assert.equal(checkCheckpoint(checkpointRecord('a', head, key).attributes, 'a', keys).kind, 'valid');
  assert.equal(checkCheckpoint(checkpointRecord('a', head, key, { signer: other }).attributes, 'a', keys).kind, 'signature_invalid');
  assert.equal(checkCheckpoint(checkpointRecord('a', head, other).attributes, 'a', keys).kind, 'key_unknown');
  // Signed as agent a, presented by agent b: the statement names the agent, so it does not verify.
  assert.equal(checkCheckpoint(checkpointRecord('a', head, key).attributes, 'b', keys).kind, 'signature_invalid');
});

void test('an altered statement (seq, hash) no longer verifies', () => {
  const key = newKey();
  const { keys } = keysById([key.pem]);
  const record = checkpointRecord('a', head, key);
  record.attributes[checkpointAttr.hash] = 'cd'.repeat(32);
  assert.equal(checkCheckpoint(record.attributes, 'a', keys).kind, 'signature_invalid');
});

void test('a key rotation is valid only when its next public key is the key it names', () => {
  const key = newKey();
  const next = newKey();
  const { keys } = keysById([key.pem]);
  const rotation = checkpointRecord('a', head, key, { type: 'key_rotation', next });
  const check = checkCheckpoint(rotation.attributes, 'a', keys);
  assert.equal(check.kind, 'valid');
  if (check.kind === 'valid') assert.equal(check.checkpoint.nextPublicKey, next.pem);
  // Signed correctly, but the public key carried is not the one named.
  const liar = checkpointRecord('a', head, key, { type: 'key_rotation', next: { ...next, pem: newKey().pem } });
  assert.equal(checkCheckpoint(liar.attributes, 'a', keys).kind, 'next_key_mismatch');
});

void test('records without checkpoint attributes are none; malformed statements say what is wrong', () => {
  assert.deepEqual(checkCheckpoint({}, 'a', new Map()), { kind: 'none' });
  const bad = checkCheckpoint(decoded('a', { [checkpointAttr.type]: 'checkpoint', [checkpointAttr.seq]: 1 }, 'x').attributes, 'a', new Map());
  assert.equal(bad.kind, 'malformed');
  assert.match((bad as { reason: string }).reason, /ci_audit\.checkpoint\.hash/);
});

void test('keysById takes PEM or bare base64 SPKI, and leaves out what is not an Ed25519 key', () => {
  const key = newKey();
  const other = newKey();
  const bare = other.pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const { keys, invalid } = keysById([key.pem, bare, 'not a key']);
  assert.deepEqual([...keys.keys()], [key.id, other.id]);
  assert.equal(invalid.length, 1);
});
