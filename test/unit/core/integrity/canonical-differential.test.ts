// The canonical writer keeps state between records (per key list: the members' order, written keys
// and the bytes of values that repeat; the last agent id and resource text). Whatever it keeps, its
// text must be what a writer without memory gives: here, canonicalJson over a copy of the record
// normalized as docs/integrity.md describes, for long generated sequences of records whose key
// lists alternate, grow and shrink, and whose values repeat, change, switch type or change in place.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson, type CanonicalValue } from '../../../../core/integrity/canonical-json.ts';
import { chainHash, chainHashAndText, chainHashOfRecord, genesisHash } from '../../../../core/integrity/chain.ts';
import { canonicalAttributes, canonicalRecord, canonicalValue, hrTimeNanos, type AttestedInput, type AttestedRecord, type UnixNanos } from '../../../../core/integrity/record.ts';
import { seededPicks } from '../../../helpers/random.ts';
import { visitPositionChanges } from '../../../helpers/position-changes.ts';

const minInt64 = -(2 ** 63);
const maxInt64 = 2 ** 63;

/** A number as the canonical form holds it (record.ts's canonicalValue, written out plainly). */
function normalNumber(n: number): CanonicalValue {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n) && !Number.isSafeInteger(n) && n >= minInt64 && n < maxInt64) return BigInt(n).toString();
  return n;
}

function normal(value: AttestedInput): CanonicalValue {
  if (value === undefined || value === null) return null;
  switch (typeof value) {
    case 'string':
      return value.toWellFormed();
    case 'number':
      return normalNumber(value);
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
    case 'boolean':
      return value;
    default:
  }
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map((item: AttestedInput) => normal(item));
  return normalMembers(value as Readonly<Record<string, AttestedInput>>, false);
}

function normalMembers(members: Readonly<Record<string, AttestedInput>>, skipChain: boolean): { [key: string]: CanonicalValue } {
  const out: { [key: string]: CanonicalValue } = {};
  for (const [key, value] of Object.entries(members)) {
    if (value === undefined || value === null || (skipChain && key.startsWith('ci_audit.chain.'))) continue;
    out[key.toWellFormed()] = normal(value);
  }
  return out;
}

function nanos(time: UnixNanos): string {
  return typeof time === 'object' ? hrTimeNanos(time).toString() : time.toString();
}

/** The canonical text of `record`, from canonicalJson and nothing the writer keeps. */
function referenceRecord(record: AttestedRecord): string {
  const out: { [key: string]: CanonicalValue } = {
    agent: record.agent.toWellFormed(),
    attributes: normalMembers(record.attributes, true),
    observed: nanos(record.observedTimeUnixNano),
    resource: normalMembers(record.resource, false),
    seq: normalNumber(record.seq),
    severity: normalNumber(record.severityNumber),
    time: nanos(record.timeUnixNano),
    v: 1,
  };
  if (record.body !== undefined && record.body !== null) out.body = normal(record.body);
  return canonicalJson(out);
}

type Random = ReturnType<typeof seededPicks>;

const strings = [
  '', 'deploy', 'sshd', 'runner-01', 'quote "', '\\', 'new\nline', 'nul \u0000', 'del \u007f', 'é', '€ ключ', '\ud83d\ude00', 'lone \ud800', '\udc00',
  'literal \\ud800', '</script>', 'a'.repeat(23), 'b'.repeat(24), `${'c'.repeat(40)}"`, `${'d'.repeat(63)}é`, 'e'.repeat(64), 'f'.repeat(65), 'g'.repeat(300),
];
const numbers = [0, -0, 1, -1, 7, 0.5, 1e21, 1e-7, 2 ** 53, -(2 ** 53), 2 ** 63, Number.NaN, Infinity, -Infinity, 65535];
const bigints = [0n, 7n, -5n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n];

/** A value of any kind, often one that writes like another kind's (7, 7n, '7'), to catch a cache that compares loosely. */
function anyValue(g: Random, depth: number): AttestedInput {
  switch (g.int(depth > 1 ? 9 : 12)) {
    case 0:
    case 1:
      return g.pick(strings);
    case 2:
      return g.pick(numbers);
    case 3:
      return g.pick(bigints);
    case 4:
      return g.pick([true, false, null, undefined, '7', 'true', 'null']);
    case 5:
      return Array.from({ length: g.int(6) }, () => g.pick<AttestedInput>(strings));
    case 6:
      return g.pick<AttestedInput>([[], ['x'], ['x', 'y'], [7], ['7'], [null], [undefined, 'x']]);
    case 7:
      return new Uint8Array([g.int(256), 0x22, g.int(256)]);
    case 8:
      return Array.from({ length: g.int(3) }, () => anyValue(g, depth + 1));
    default:
      return nested(g, depth + 1);
  }
}

/** An object value, its keys sometimes those of the record's own attributes (one key list, two uses). */
function nested(g: Random, depth: number): Record<string, AttestedInput> {
  const out: Record<string, AttestedInput> = {};
  for (const key of g.pick(shapes).slice(0, 1 + g.int(4))) out[key] = anyValue(g, depth);
  return out;
}

/** Key lists; a record takes one (in its own order) and sometimes adds or drops a key. */
const shapes: readonly string[][] = [
  ['ci_audit.dataset', 'ci_audit.record.id', 'log.file.path', 'log.offset', 'event.kind', 'user.name', 'related.user', 'source.port', 'message', 'ci_audit.chain.seq', 'ci_audit.chain.hash'],
  ['ci_audit.dataset', 'ci_audit.record.id', 'log.file.path', 'log.offset', 'ci_audit.parse.status'],
  ['b', 'a', 'c', 'ci_audit.chain.prev_hash', 'ci_audit.chainy', 'ci_audit.chai'],
  ['k\ud800', 'k\ue000', 'k', 'kk', 'é', '\ud83d\ude00', '"', '\\', 'a\nb'],
  ['0', '10', '2', 'x', 'y'],
  ['only'],
  [],
  ...Array.from({ length: 8 }, (_, i) => [`s${i}.a`, `s${i}.b`, 'shared', `s${i}.c`]),
  // Key lists the writer keeps no plan for: too many keys, a key too long.
  Array.from({ length: 130 }, (_, i) => `many.${i}`),
  [`long.${'k'.repeat(300)}`, 'x', 'ci_audit.chain.seq'],
];

/**
 * Records of `sources` interleaved sources, each source's values mostly as in its record before (a
 * value kept, changed, switched to another kind, or an array changed in place).
 */
function* recordSequence(seed: number, count: number, sources: number): Generator<AttestedRecord> {
  const g = seededPicks(seed);
  const state = Array.from({ length: sources }, (_, s) => {
    const keys = shapes[(s * 7 + seed) % shapes.length]!;
    return { keys, values: new Map<string, AttestedInput>(keys.map((k) => [k, anyValue(g, 0)])) };
  });
  // Texts of the same length among them: a kept text must be told from another by more than that.
  const resources = [{ 'host.name': 'runner-01', 'service.name': 'ci-audit-agent' }, { 'host.name': 'runner-02' }, { 'host.name': 'runner-03' }];
  for (let seq = 1; seq <= count; seq++) {
    const source = state[g.int(g.int(4) === 0 ? sources : Math.min(2, sources))]!;
    for (const key of source.keys) {
      const roll = g.int(10);
      const value = source.values.get(key);
      if (roll < 6) continue;
      if (roll < 8) source.values.set(key, anyValue(g, 0));
      else if (roll === 8 && Array.isArray(value) && value.length > 0) (value as AttestedInput[])[g.int(value.length)] = g.pick(strings);
      else if (roll === 8 && value instanceof Uint8Array && value.length > 0) value[0] = (value[0]! + 1) & 0xff;
      else if (roll === 8 && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length > 0) (value as Record<string, AttestedInput>)[keys[0]!] = anyValue(g, 2);
      } else source.values.delete(key);
    }
    const attributes: Record<string, AttestedInput> = {};
    for (const key of source.keys) if (source.values.has(key)) attributes[key] = source.values.get(key);
    if (g.int(8) === 0) attributes[`extra.${g.int(3)}`] = anyValue(g, 0);
    yield {
      agent: g.pick(['runner-01', 'runner-01', 'runner-02', 'a"b', 'é\ud800']),
      seq,
      timeUnixNano: g.pick<UnixNanos>([0n, 1_795_688_521_482_113_789n, '1795688521000000005', [1795688521 + g.int(3), 482113789], [0, 5], [12.7, 1e9]]),
      observedTimeUnixNano: g.pick<UnixNanos>([[1795688521, g.int(1e9)], 1_795_688_522_000_000_000n]),
      severityNumber: g.pick([0, 9, 24, 2 ** 53, -1]),
      body: g.int(4) === 0 ? anyValue(g, 0) : g.pick(strings),
      attributes,
      resource: g.pick(resources),
    };
  }
}

describe('the canonical writer against a writer without memory', () => {
  it('writes every record of interleaved sources as canonicalJson writes its normalized copy', () => {
    let checked = 0;
    for (const [seed, sources] of [[1, 1], [2, 2], [3, 3], [4, 9], [5, 14]] as const) {
      for (const record of recordSequence(seed, 3000, sources)) {
        assert.equal(canonicalRecord(record), referenceRecord(record), `seed ${seed}, record ${record.seq}`);
        checked++;
      }
    }
    assert.equal(checked, 15_000);
  });

  it('gives the same bytes through every entry point, with and without the chain attributes and a kept resource text', () => {
    const resourceTexts = new Map<object, string>();
    let previous = genesisHash;
    for (const record of recordSequence(6, 4000, 4)) {
      const expected = referenceRecord(record);
      // The resource text as the agent and the aggregator keep it: one string per resource object.
      let resourceText = resourceTexts.get(record.resource);
      if (resourceText === undefined) resourceTexts.set(record.resource, (resourceText = canonicalAttributes(record.resource)));
      const kept = record.seq % 3 === 0 ? undefined : record.seq % 3 === 1 ? resourceText : `${resourceText}`;
      const context = `record ${record.seq}`;
      switch (record.seq % 4) {
        case 0:
          assert.equal(canonicalRecord(record, kept), expected, context);
          break;
        case 1:
          assert.equal(chainHashOfRecord(previous, record, kept), chainHash(previous, expected), context);
          break;
        case 2:
          assert.deepEqual(chainHashAndText(previous, record, kept), { hash: chainHash(previous, expected), canonical: expected }, context);
          break;
        default:
          // The attributes on their own, with the chain's attributes written (skipChain false) and left out.
          assert.equal(canonicalAttributes(record.attributes), canonicalJson(normalMembers(record.attributes, false)), context);
          assert.equal(canonicalAttributes(record.attributes, true), canonicalJson(normalMembers(record.attributes, true)), context);
          assert.equal(canonicalValue(record.attributes), canonicalJson(normalMembers(record.attributes, false)), context);
      }
      previous = chainHash(previous, expected);
    }
  });

  it('writes a value changed in place, or one that writes like the last but is another, from what it is now', () => {
    const list = ['deploy', 'root'];
    const bytes = new Uint8Array([1, 2, 3]);
    const inner: Record<string, AttestedInput> = { a: 'x' };
    const steps: AttestedInput[][] = [
      [list, bytes, inner, 7, 'same'],
      [list, bytes, inner, 7, 'same'],
      [list, bytes, inner, 7n, 'same'],
      [list, bytes, inner, '7', 'same'],
      [list, bytes, inner, 7, 'same'],
      [list, bytes, inner, 7, 'same'],
    ];
    for (const [i, values] of steps.entries()) {
      // Each step changes what the arrays and the object hold, not which ones they are.
      if (i === 3) list[1] = 'alice';
      if (i === 4) bytes[0] = 9;
      if (i === 5) {
        inner.a = 'y';
        list.push('bob');
      }
      const attributes = { 'related.user': values[0], bytes: values[1], inner: values[2], n: values[3], s: values[4] };
      assert.equal(canonicalAttributes(attributes), canonicalJson(normalMembers(attributes, false)), `step ${i}`);
    }
  });
  it('writes members that repeat, change at any one position or in place, or drop out, as a writer without memory, with and without the chain attributes', () => {
    // What the writer keeps of a member's bytes must go the moment its value changes. Each step
    // changes one member (or two neighbours, or an array in place) at every canonical position, to
    // a value of another length or kind, or to an empty one (left out), and goes back; the chain's
    // attributes are written and left out in turn, other key lists and the same keys nested in a
    // value come in between, and a member too large to keep changes along with a small one.
    const keys = ['user.name', 'ci_audit.chain.seq', 'a', 'related.user', 'b.long.key', 'ci_audit.dataset', 'n', 'z', 'ci_audit.chain.hash', 'm', 'big', 'é'];
    const shared = ['deploy', 'root'];
    const base = (): Record<string, AttestedInput> => Object.fromEntries(keys.map((key, i) => [key, i % 4 === 0 ? 'v'.repeat(i + 1) : i % 4 === 1 ? i * 1000 : i % 4 === 2 ? shared : `s${i}`]));
    const changes: ((value: AttestedInput) => AttestedInput)[] = [
      (v) => `${typeof v === 'string' ? v : 'was not a string'}!`,
      () => 'z'.repeat(70),
      () => 7,
      () => 7n,
      () => '7',
      () => true,
      () => ['a', 'b'],
      () => undefined,
      () => null,
      () => ({ a: 'nested', 'user.name': 'x' }),
      () => new Uint8Array([1, 2]),
    ];
    const steps: { attributes: Record<string, AttestedInput>; skipChain: boolean }[] = [];
    const push = (attributes: Record<string, AttestedInput>): void => {
      steps.push({ attributes, skipChain: steps.length % 3 !== 0 });
    };
    visitPositionChanges(
      {
        keys,
        base,
        changes,
        shared,
        otherValue: 'other',
        between: (c) => {
          if (c % 3 === 1) push({ ...base(), a: base() });
        },
      },
      push,
    );
    // A large member, and a small one that changes with it and then stays.
    push({ ...base(), big: 'x'.repeat(70_000) });
    push({ ...base(), big: 'x'.repeat(70_000), a: 'changed with the large one' });
    push({ ...base(), a: 'changed with the large one' });
    push({ ...base(), a: 'changed with the large one' });
    for (const [i, { attributes, skipChain }] of steps.entries()) {
      const expected = canonicalJson(normalMembers(attributes, skipChain));
      assert.equal(canonicalAttributes(attributes, skipChain), expected, `step ${i}`);
      if (i % 5 === 0) {
        const record: AttestedRecord = { agent: 'runner-01', seq: i + 1, timeUnixNano: [1795688521, i], observedTimeUnixNano: 5n, severityNumber: 9, body: 'b', attributes, resource: {} };
        assert.equal(canonicalRecord(record), referenceRecord(record), `step ${i}, as a record`);
      }
    }
  });
});
