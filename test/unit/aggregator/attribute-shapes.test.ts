// The attributes object the decoder builds from a copy of a recent record's shape must be the object
// that assigning the attributes one by one builds: the same own keys in the same order (the mapping
// writes the document's attributes in that order), the same values, the same prototype.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeCollector, assignAttribute } from '../../../aggregator/receiver/attribute-shapes.ts';
import type { AttributeValue, Attributes } from '../../../aggregator/log-record.ts';
import { decodeProtobufLogs } from '../../../aggregator/receiver/otlp-decode.ts';
import { emitRecords, protobufBody } from './otlp-fixtures.ts';

function assignedOneByOne(pairs: ReadonlyArray<readonly [string, AttributeValue]>): Attributes {
  const attributes: Attributes = {};
  for (const [key, value] of pairs) assignAttribute(attributes, key, value);
  return attributes;
}

function assertSameObject(actual: Attributes, expected: Attributes, what: string): void {
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${what}: prototype`);
  assert.deepEqual(Reflect.ownKeys(actual), Reflect.ownKeys(expected), `${what}: own keys in order`);
  for (const key of Reflect.ownKeys(expected)) {
    const a = Object.getOwnPropertyDescriptor(actual, key);
    const e = Object.getOwnPropertyDescriptor(expected, key);
    assert.ok(a !== undefined && e !== undefined && Object.is(a.value, e.value), `${what}: value of ${String(key)}`);
    assert.deepEqual({ ...a, value: undefined }, { ...e, value: undefined }, `${what}: attributes of ${String(key)}`);
  }
}

/** A small seeded generator (LCG), so that a failure can be replayed. */
function generator(seed: number): { rnd: () => number; pick: <T>(xs: readonly T[]) => T } {
  let state = seed;
  const rnd = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  return { rnd, pick: <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]! };
}

const oddKeys = ['__proto__', 'constructor', 'toString', '0', '12', '01', '4294967295', '', ' ', 'é', '\ud800', 'a.b', 'hasOwnProperty'];
const values: AttributeValue[] = ['x', '', 0, -0, NaN, 2 ** 60, 5n, true, undefined, new Uint8Array([1]), ['a', 1], { nested: 'map' }];

void test('a record built from a recent shape is the object assignment builds, whatever the keys', () => {
  const { rnd, pick } = generator(2026);
  // Shapes around the size where copying starts, more of them than are kept, some with odd keys.
  const shapes = Array.from({ length: 7 }, (_, s) => {
    const size = pick([1, 11, 12, 13, 29, 40]);
    return Array.from({ length: size }, (_, i) => (rnd() < 0.08 ? pick(oddKeys) : `shape${s}.key.${i}`));
  });
  const collector = new AttributeCollector();
  for (let n = 0; n < 3000; n++) {
    const keys = [...pick(shapes)];
    // Now and then a repeated key, a missing one or one more: a near miss of a known shape.
    const change = rnd();
    if (change < 0.05 && keys.length > 1) keys.push(keys[Math.floor(rnd() * keys.length)]!);
    else if (change < 0.1 && keys.length > 1) keys.splice(Math.floor(rnd() * keys.length), 1);
    else if (change < 0.15) keys.push(`extra.${n % 3}`);
    const pairs = keys.map((key) => [key, pick(values)] as const);
    collector.start();
    for (const [key, value] of pairs) collector.add(key, value);
    assertSameObject(collector.build(), assignedOneByOne(pairs), `record ${n}`);
  }
});

void test('decoded records keep their attributes in the order sent, as records of several shapes alternate', async () => {
  // Sizes prime to 7, so that each shape's keys are distinct and not in creation order.
  const shape = (prefix: string, size: number): string[] => Array.from({ length: size }, (_, i) => `${prefix}.field.${(i * 7) % size}`);
  const shapes = [shape('a', 29), shape('b', 15), shape('c', 29), shape('d', 20), shape('e', 16), shape('f', 3)];
  const sent: string[][] = [];
  const records = Array.from({ length: 60 }, (_, n) => {
    const keys = shapes[(n * 5) % shapes.length]!;
    sent.push(keys);
    return { body: `line ${n}`, attributes: Object.fromEntries(keys.map((key, i) => [key, i % 2 === 0 ? `v${n}.${i}` : n * 100 + i])) };
  });
  const decoded = decodeProtobufLogs(protobufBody(await emitRecords({ records })));
  assert.equal(decoded.length, records.length);
  for (const [n, record] of decoded.entries()) {
    assert.deepEqual(Object.keys(record.attributes), sent[n], `record ${n}: keys in the order sent`);
    assertSameObject(record.attributes, assignedOneByOne(Object.entries(records[n]!.attributes)), `record ${n}`);
  }
});
