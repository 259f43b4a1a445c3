import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpointAttr, recordAttr } from '../../../../core/wire.ts';
import { checkpointDocumentId } from '../../../../core/integrity/document.ts';
import { mapToEcs } from '../../../../aggregator/map/ecs.ts';
import { checkCheckpoint, keysById } from '../../../../aggregator/verify/checkpoint-check.ts';
import { KeyRing } from '../../../../core/integrity/key-ring.ts';
import { checkpointRecord, decoded, newKey, type TestKey } from './chain-fixtures.ts';

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
  assert.deepEqual(checkCheckpoint({}, 'a', new KeyRing()), { kind: 'none' });
  const bad = checkCheckpoint(decoded('a', { [checkpointAttr.type]: 'checkpoint', [checkpointAttr.seq]: 1 }, 'x').attributes, 'a', new KeyRing());
  assert.equal(bad.kind, 'malformed');
  assert.match((bad as { reason: string }).reason, /ci_audit\.checkpoint\.hash/);
});

void test('keysById takes PEM or bare base64 SPKI, and leaves out what is not an Ed25519 key', () => {
  const key = newKey();
  const other = newKey();
  const bare = other.pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const { keys, invalid } = keysById([key.pem, bare, 'not a key']);
  assert.deepEqual(keys.ids(), [key.id, other.id]);
  assert.equal(invalid.length, 1);
});

void test('a rotation and a checkpoint of one key at one seq have their own record id and _id (both are stored)', () => {
  const key = newKey();
  const next = newKey();
  const checkpoint = checkpointRecord('a', head, key);
  const rotation = checkpointRecord('a', head, key, { type: 'key_rotation', next });
  assert.equal(checkpoint.attributes[recordAttr.recordId], `checkpoint:${key.id}:42`);
  assert.equal(rotation.attributes[recordAttr.recordId], `key_rotation:${key.id}:42`);
  const ids = [checkpoint, rotation].map((r) => mapToEcs(r, { namespace: 'default', ingested: new Date(0) }).id);
  assert.deepEqual(ids, [`a:checkpoint:${key.id}:42`, `a:key_rotation:${key.id}:42`]);
  assert.deepEqual(ids, [checkpointDocumentId('a', 'checkpoint', key.id, 42), checkpointDocumentId('a', 'key_rotation', key.id, 42)]);
});

void test('after a rotation K0 -> K1 at seq S, K0 signs only for seqs up to S and K1 only from S on', () => {
  const k0 = newKey();
  const k1 = newKey();
  const evil = newKey();
  const at = (seq: number) => ({ seq, hash: 'ab'.repeat(32) });
  const { keys } = keysById([k0.pem]);
  const rotation = checkCheckpoint(checkpointRecord('a', at(5), k0, { type: 'key_rotation', next: k1 }).attributes, 'a', keys);
  assert.equal(rotation.kind, 'valid');
  keys.learn({ key: k0.id, seq: 5, nextKey: k1.id, nextPublicKey: k1.pem });
  const kind = (seq: number, key: TestKey, options: Parameters<typeof checkpointRecord>[3] = {}) => checkCheckpoint(checkpointRecord('a', at(seq), key, options).attributes, 'a', keys).kind;
  // A late batch: K0's checkpoints up to the rotation's seq stay valid, whatever the arrival order.
  assert.equal(kind(3, k0), 'valid');
  assert.equal(kind(5, k0), 'valid');
  assert.equal(kind(5, k1), 'valid');
  assert.equal(kind(100, k1), 'valid');
  // Whoever still holds K0: a checkpoint beyond its range, a rotation to a key of theirs.
  assert.equal(kind(100, k0), 'key_out_of_range');
  assert.equal(kind(200, k0, { type: 'key_rotation', next: evil }), 'key_out_of_range');
  assert.equal(kind(4, k1), 'key_out_of_range', 'K1 signs nothing before the rotation that introduced it');
  // The agent announces the same rotation again after a crash before it switched: accepted.
  assert.equal(kind(9, k0, { type: 'key_rotation', next: k1 }), 'valid');
  const out = checkCheckpoint(checkpointRecord('a', at(100), k0).attributes, 'a', keys);
  assert.deepEqual(out.kind === 'key_out_of_range' ? [out.from, out.until] : out.kind, [0, 5]);
});

void test('the registry\'s learned keys are replayed in seq order: a rotation by a key already retired at its seq is left untrusted', () => {
  const k0 = newKey();
  const k1 = newKey();
  const k2 = newKey();
  const evil = newKey();
  const at = (seq: number) => ({ seq, hash: 'ab'.repeat(32) });
  // As the registry holds them after K0 -> evil at 200 arrived before the genuine K0 -> K1 at 5, and
  // K1 -> K2 at 5 as well (two rotations while the chain stood still).
  const { keys } = keysById([
    k0.pem,
    { publicKey: evil.pem, rotation: { from: k0.id, seq: 200 } },
    { publicKey: k2.pem, rotation: { from: k1.id, seq: 5 } },
    { publicKey: k1.pem, rotation: { from: k0.id, seq: 5 } },
  ]);
  assert.deepEqual(keys.ignored, [evil.id]);
  const kind = (seq: number, key: TestKey) => checkCheckpoint(checkpointRecord('a', at(seq), key).attributes, 'a', keys).kind;
  assert.equal(kind(5, k0), 'valid');
  assert.equal(kind(5, k1), 'valid');
  assert.equal(kind(6, k1), 'key_out_of_range');
  assert.equal(kind(6, k2), 'valid');
  assert.equal(kind(300, evil), 'key_unknown');
});
