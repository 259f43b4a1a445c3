import assert from 'node:assert/strict';
import { test } from 'node:test';
import { roomyAttributes } from '../../../../agent/pipeline/roomy-attributes.ts';

void test('a roomy attributes object is an ordinary empty object, a new one each time', () => {
  const a = roomyAttributes();
  const b = roomyAttributes();
  assert.notEqual(a, b);
  assert.equal(Object.getPrototypeOf(a), Object.prototype);
  assert.deepEqual(Object.keys(a), []);
  assert.equal(JSON.stringify(a), '{}');
  a['user.name'] = 'alice';
  assert.deepEqual(b, {});
  assert.deepEqual(a, { 'user.name': 'alice' });
});

void test('attributes keep the order they were set in, within its room and past it', () => {
  const attributes = roomyAttributes();
  const keys = Array.from({ length: 45 }, (_, i) => `key.${(45 - i) * 7}`);
  keys.forEach((key, i) => (attributes[key] = i));
  assert.deepEqual(Object.keys(attributes), keys);
  const seen: string[] = [];
  for (const key in attributes) seen.push(key);
  assert.deepEqual(seen, keys);
  assert.equal(attributes['key.315'], 0);
  delete attributes['key.315'];
  assert.deepEqual(Object.keys(attributes), keys.slice(1));
});
