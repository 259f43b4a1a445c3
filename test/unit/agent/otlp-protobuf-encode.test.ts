// The agent's ExportLogsServiceRequest encoder against the one it replaced: otlp-transformer's
// ProtobufLogsSerializer. Both encode the same generated batches (every value type, unicode and lone
// surrogates, empty strings, big and negative numbers, nested arrays and key-value lists, several
// resources and scopes) and must write the same bytes; the aggregator's decoder must read ours back
// to the values the agent's canonical form (the chain's hash input) was computed from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { encodeLogRecord, encodeLogRecordTransient, encodeLogsRequest } from '../../../agent/sinks/otlp-protobuf-encode.ts';
import { decodeProtobufLogs } from '../../../aggregator/receiver/otlp-decode.ts';
import { canonicalAttributes, canonicalValue, hrTimeNanos, type AttestedInput } from '../../../core/integrity/record.ts';
import { makeRecords } from './helpers.ts';
import { seededRandom } from '../../helpers/random.ts';
import { visitPositionChanges } from '../../helpers/position-changes.ts';

type Resource = ReadableLogRecord['resource'];
type Scope = ReadableLogRecord['instrumentationScope'];

/** UTF-16 units that exercise the UTF-8 writer: ASCII, two- and three-byte, pairs, lone halves. */
const units = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0000', '\u007f', 'é', '\u07ff', '\u0800', '€', '中', '\uffff', '😀', '\ud800', '\udbff', '\udc00', '\udfff'];

class Generator {
  readonly #random: () => number;
  /** Whether values the data model cannot carry (bigint, other typed arrays) may appear. */
  readonly #exotic: boolean;

  constructor(seed: number, exotic: boolean) {
    this.#random = seededRandom(seed);
    this.#exotic = exotic;
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  int(below: number): number {
    return Math.floor(this.#random() * below);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  string(): string {
    const shape = this.int(60);
    if (shape < 6) return '';
    // Lengths around the one-, two- and three-byte varint boundaries of the length prefixes; the
    // long ones repeat a short piece, which is as good a test and much cheaper to make.
    const length = shape < 12 ? 100 + this.int(100) : shape === 12 ? 16_000 + this.int(800) : this.int(14);
    const piece = this.#piece(Math.min(length, 24));
    return length <= piece.length ? piece : piece.repeat(Math.ceil(length / Math.max(piece.length, 1))).slice(0, length);
  }

  #piece(length: number): string {
    let s = '';
    if (this.chance(0.5)) {
      for (let i = 0; i < length; i++) s += String.fromCharCode(32 + this.int(95));
    } else {
      for (let i = 0; i < length; i++) s += this.pick(units);
    }
    return s;
  }

  number(): number {
    return this.pick<() => number>([
      () => this.int(200) - 100,
      () => this.int(2 ** 31),
      () => 2 ** 32 - 1 + this.int(3),
      () => (this.chance(0.5) ? -1 : 1) * this.int(2 ** 53),
      () => Number.MAX_SAFE_INTEGER + 1 + this.int(3) * 2,
      () => (this.chance(0.5) ? -1 : 1) * 2 ** (53 + this.int(10)),
      () => 2 ** 63,
      () => -(2 ** 63),
      () => -(2 ** 63) - 2 ** 11,
      () => 2 ** 64 + 2 ** 13,
      () => -0,
      () => (this.#random() - 0.5) * 10 ** this.int(30),
      () => Number.NaN,
      () => Number.POSITIVE_INFINITY,
      () => Number.NEGATIVE_INFINITY,
      () => Number.MIN_VALUE,
      () => Number.MAX_VALUE,
    ])();
  }

  value(depth: number): unknown {
    const kinds = depth < 3 ? 9 : 6;
    switch (this.int(this.#exotic ? kinds + 2 : kinds)) {
      case 0:
      case 1:
        return this.string();
      case 2:
        return this.number();
      case 3:
        return this.chance(0.5);
      case 4: {
        const bytes = Uint8Array.from({ length: this.pick([0, 1, 16, 40, 200]) }, () => this.int(256));
        return this.chance(0.3) ? Buffer.from(bytes) : bytes;
      }
      case 5:
        return this.pick([null, undefined]);
      case 6:
      case 7:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      case 8:
        return this.attributes(depth + 1, 4);
      case 9:
        return BigInt(this.int(1000)) - 500n;
      default:
        return this.pick([new Int16Array([1, -2, 3]), new Float64Array([0.5]), new Date(0)]);
    }
  }

  attributes(depth: number, most: number): Attributes {
    const out: Record<string, unknown> = {};
    // Generated keys start with their index: two keys that differ only in a lone surrogate would be
    // one key once decoded (both become U+FFFD).
    for (let i = this.int(most + 1); i > 0; i--) out[this.chance(0.7) ? this.pick(commonKeys) : `${i}${this.string()}`] = this.value(depth);
    return out;
  }

  hrTime(): HrTime {
    const seconds = this.pick([0, 1, 1_795_688_521, 2 ** 31, 2 ** 32 - 1, this.int(2 ** 32)]);
    const nanos = this.pick([0, 1, 999_999_999, this.int(1e9), this.int(1e9) + 0.5]);
    return [seconds, nanos];
  }

  hex(bytes: number): string {
    let s = '';
    for (let i = 0; i < bytes * 2; i++) s += this.pick(hexDigits);
    return s;
  }

  spanContext(): SpanContext | undefined {
    if (this.chance(0.7)) return undefined;
    return {
      traceId: this.pick(['', this.hex(16)]),
      spanId: this.pick(['', this.hex(8)]),
      traceFlags: this.pick([0, 1, 255, 2 ** 32 - 1]),
    };
  }

  resource(): Resource {
    if (this.chance(0.3)) return resourceFromAttributes(this.attributes(0, 4));
    const attributes = this.attributes(0, 5);
    const plain: Record<string, unknown> = { attributes };
    if (this.chance(0.4)) plain.schemaUrl = this.pick(['', 'https://opentelemetry.io/schemas/1.26.0', this.string()]);
    return plain as unknown as Resource;
  }

  scope(): Scope {
    const scope: Record<string, unknown> = { name: this.pick(['', 'ci-audit-agent', this.string()]) };
    if (this.chance(0.5)) scope.version = this.pick(['', '1.2.3', this.string()]);
    if (this.chance(0.3)) scope.schemaUrl = this.pick(['', 'https://opentelemetry.io/schemas/1.26.0']);
    if (this.chance(0.3)) scope.attributes = this.attributes(0, 3);
    if (this.chance(0.3)) scope.droppedAttributesCount = this.pick([0, 1, 300, 2 ** 32 - 1]);
    return scope as unknown as Scope;
  }

  record(resources: readonly Resource[], scopes: readonly Scope[]): ReadableLogRecord {
    const r: Record<string, unknown> = {
      hrTime: this.hrTime(),
      hrTimeObserved: this.hrTime(),
      attributes: this.attributes(0, 8),
      droppedAttributesCount: this.pick([0, 0, 0, 1, 127, 128, 2 ** 31]),
      resource: this.pick(resources),
      instrumentationScope: this.pick(scopes),
    };
    if (this.chance(0.7)) r.severityNumber = this.int(25);
    if (this.chance(0.5)) r.severityText = this.pick(['', 'INFO', 'WARN', this.string()]);
    if (this.chance(0.9)) r.body = this.chance(0.6) ? this.string() : this.value(0);
    if (this.chance(0.3)) r.eventName = this.pick(['', 'ci.job.start', this.string()]);
    const span = this.spanContext();
    if (span !== undefined) r.spanContext = span;
    return r as unknown as ReadableLogRecord;
  }

  batch(): ReadableLogRecord[] {
    const resources = Array.from({ length: 1 + this.int(3) }, () => this.resource());
    const scopes = Array.from({ length: 1 + this.int(3) }, () => this.scope());
    return Array.from({ length: this.pick([1, 2, 5, 10, 30]) }, () => this.record(resources, scopes));
  }
}

/** A record as the pipeline builds its own (a plain object), with `fields` changed. */
function plainRecord(fields: Partial<Record<keyof ReadableLogRecord, unknown>>): ReadableLogRecord {
  const [sdk] = makeRecords(['t']);
  return {
    hrTime: sdk!.hrTime,
    hrTimeObserved: sdk!.hrTimeObserved,
    body: sdk!.body,
    attributes: sdk!.attributes,
    droppedAttributesCount: 0,
    resource: sdk!.resource,
    instrumentationScope: sdk!.instrumentationScope,
    ...fields,
  } as ReadableLogRecord;
}

const hexDigits = [...'0123456789abcdefABCDEF'];
const commonKeys = ['ci_audit.dataset', 'ci_audit.record.id', 'log.file.path', 'log.offset', 'user.name', 'é', '\ud800key', ''];

function reference(records: ReadableLogRecord[]): Uint8Array {
  const bytes = ProtobufLogsSerializer.serializeRequest(records);
  assert.ok(bytes !== undefined);
  return bytes;
}

function assertSameBytes(records: ReadableLogRecord[], what: string): void {
  const ours = encodeLogsRequest(records);
  const theirs = reference(records);
  if (Buffer.compare(ours, theirs) !== 0) {
    let at = 0;
    while (at < ours.length && ours[at] === theirs[at]) at++;
    assert.fail(`${what}: ${ours.length} bytes, the serializer's ${theirs.length}; first difference at byte ${at}\n${inspect(records, { depth: 6 })}`);
  }
}

void test('writes the bytes ProtobufLogsSerializer writes, on 2,000 generated batches', () => {
  for (let seed = 1; seed <= 2000; seed++) assertSameBytes(new Generator(seed, false).batch(), `seed ${seed}`);
});

void test('writes an empty AnyValue, as the serializer does, for values OTLP has no form for (bigint) and kvlists of other typed arrays', () => {
  for (let seed = 1; seed <= 500; seed++) assertSameBytes(new Generator(seed, true).batch(), `seed ${seed} (exotic values)`);
});

void test('writes the same bytes for real SDK records with the agent resource', () => {
  const records = makeRecords(['first line', 'second line', 'x'.repeat(300), 'lone \ud800 surrogate']);
  assertSameBytes(records, 'SDK records');
  assert.equal(encodeLogsRequest([]).length, 0);
  assert.equal(reference([]).length, 0);
});

void test('bodies and batches around the length boundaries move their bodies correctly', () => {
  for (const length of [0, 1, 11, 12, 120, 122, 123, 124, 125, 126, 127, 128, 129, 16_370, 16_380, 16_383, 16_384, 2 ** 21 + 5]) {
    const records = makeRecords([`${'y'.repeat(length)}`, `${'€'.repeat(Math.ceil(length / 3))}`]);
    assertSameBytes(records, `body of ${length} units`);
  }
  const many = makeRecords(Array.from({ length: 20_000 }, (_, i) => `line ${i}: ${'z'.repeat(i % 300)}`));
  assertSameBytes(many, 'a batch of 20,000 records');
});

void test('records encoded into the slabs (encodeLogRecord) splice into the bytes the serializer writes, and keep them while later ones are encoded', () => {
  // The generated records fill slabs quickly (16,000-unit strings) and move to a new one in the
  // middle of nested values; the bodies of 40,000 and 300,000 units take the large records' path.
  const kept: { encoded: ReadableLogRecord[]; expected: Uint8Array }[] = [];
  for (let seed = 1; seed <= 600; seed++) {
    const batch = new Generator(seed, false).batch();
    if (seed % 50 === 0) batch.push(plainRecord({ body: 'b'.repeat(seed % 100 === 0 ? 300_000 : 40_000) }));
    const encoded = batch.map((r) => encodeLogRecord(r));
    const expected = reference(batch);
    const ours = encodeLogsRequest(encoded);
    assert.equal(Buffer.compare(ours, expected), 0, `seed ${seed}: ${ours.length} bytes, the serializer's ${expected.length}`);
    kept.push({ encoded, expected });
  }
  for (const [i, { encoded, expected }] of kept.entries()) assert.equal(Buffer.compare(encodeLogsRequest(encoded), expected), 0, `seed ${i + 1}, encoded again after the others`);
});

void test('a record that reaches the end of its slab wherever it may (in a nested length too) moves to the next one whole', () => {
  // The slab is filled to `gap` bytes before its end, for each gap up to 400, so that the record
  // below reaches the end at every point of its writing, inside its nested lengths too. A record
  // with a bytes body of `n` bytes can be had at any size.
  const filler = (n: number): ReadableLogRecord => plainRecord({ body: new Uint8Array(n), attributes: {} });
  const record = plainRecord({ body: { k: Uint8Array.from({ length: 200 }, (_, i) => i) }, attributes: { 'user.name': 'deploy' } });
  const expected = reference([record]);
  const left = (): number => {
    const { encoded } = encodeLogRecord(plainRecord({ body: '', attributes: {} }));
    return encoded.buffer.byteLength - encoded.byteOffset - encoded.length;
  };
  const size = (r: ReadableLogRecord): number => encodeLogRecordTransient(r).length;
  for (let gap = 0; gap <= 400; gap++) {
    let room = left();
    if (room < gap + 2000) {
      encodeLogRecord(filler(room + 1)); // does not fit: the next slab
      room = left();
    }
    while (room - gap > 16_000) {
      room -= size(filler(12_000));
      encodeLogRecord(filler(12_000));
    }
    // Sizes from 2,000 to 16,000 bytes: no length crosses a varint boundary, each size can be had.
    let n = room - gap - 40;
    while (size(filler(n)) < room - gap) n++;
    assert.equal(size(filler(n)), room - gap);
    encodeLogRecord(filler(n));
    const ours = encodeLogsRequest([encodeLogRecord(record)]);
    assert.equal(Buffer.compare(ours, expected), 0, `${gap} bytes left in the slab`);
  }
});

void test('values that repeat from record to record (whose KeyValues are kept) are written as the serializer writes them', () => {
  // Each key draws from a few values, so that a key often holds what it held in the record before,
  // or something close to it: an array with one item changed or one more, a string one unit
  // longer past the kept length, 0 after -0, the same key inside a key-value list.
  const pools: Record<string, unknown[]> = {
    'user.name': ['deploy', 'root', '', 'é€😀', 'x'.repeat(64), 'x'.repeat(65)],
    'process.pid': [2811, 2812, 0, -0, -1, 2 ** 32, 2 ** 53, 0.5, Number.NaN],
    'related.user': [['deploy'], ['root'], ['deploy', 'root'], ['deploy', 'root', 'a', 'b'], ['deploy', 'root', 'a', 'b', 'c'], [], ['x'.repeat(65)], ['deploy', 1]],
    'event.category': [['authentication', 'session'], ['authentication', 'sessions'], 'authentication', true, null],
    'ci_audit.record.id': ['f0:1', 'f0:2'],
  };
  const keys = Object.keys(pools);
  const random = seededRandom(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  for (let batch = 0; batch < 300; batch++) {
    const records = Array.from({ length: 1 + Math.floor(random() * 8) }, () => {
      const attributes: Record<string, unknown> = {};
      for (const key of keys) if (random() < 0.9) attributes[key] = pick(pools[key]!);
      if (random() < 0.3) attributes.nested = { 'user.name': pick(pools['user.name']!), 'related.user': pick(pools['related.user']!) };
      return plainRecord({ attributes });
    });
    assertSameBytes(records, `batch ${batch}`);
    const expected = reference(records);
    assert.equal(Buffer.compare(encodeLogsRequest(records.map((r) => encodeLogRecord(r))), expected), 0, `batch ${batch}, encoded one by one`);
  }
});

void test('timestamps are exact nanoseconds: as the serializer writes them from 1970 on, two\'s complement before', () => {
  const at = (seconds: number, nanos: number): ReadableLogRecord[] => [plainRecord({ hrTime: [seconds, nanos], hrTimeObserved: [seconds, nanos] })];
  for (const seconds of [0, 1, 1_795_688_521, 2 ** 32 - 1, 2 ** 32, 2 ** 36 + 7, 253_402_300_799]) {
    for (const nanos of [0, 1, 999_999_999, 123_456_789.75]) assertSameBytes(at(seconds, nanos), `time [${seconds}, ${nanos}]`);
  }
  const timeOf = (bytes: Buffer): bigint => decodeProtobufLogs(bytes)[0]!.timeUnixNano;
  assert.equal(timeOf(encodeLogsRequest(at(2 ** 34, 5))), 2n ** 34n * 1_000_000_000n + 5n);
  assert.equal(timeOf(encodeLogsRequest(at(-1, 0))), 2n ** 64n - 1_000_000_000n);
});

void test('a trace id of odd length: its last digit is dropped, as the serializer drops it', () => {
  const odd = plainRecord({ spanContext: { traceId: 'abc', spanId: '0102030405060708', traceFlags: 1 } });
  assertSameBytes([odd], 'odd trace id');
  const [decoded] = decodeProtobufLogs(encodeLogsRequest([odd]));
  assert.equal(decoded!.traceId, 'ab');
  assert.equal(decoded!.spanId, '0102030405060708');
});

void test('the aggregator decodes our requests to the values the canonical form was computed from', () => {
  for (let seed = 1; seed <= 1000; seed++) {
    const records = new Generator(seed, false).batch();
    const decoded = decodeProtobufLogs(encodeLogsRequest(records));
    // The request holds the records grouped by resource, then by scope, in the order first seen.
    const expected = [...Map.groupBy(records, (r) => r.resource).values()].flatMap((byResource) => [...Map.groupBy(byResource, (r) => r.instrumentationScope).values()].flat());
    assert.equal(decoded.length, expected.length, `seed ${seed}`);
    for (const [i, d] of decoded.entries()) {
      const r = expected[i]!;
      const where = `seed ${seed}, record ${i}`;
      assert.equal(d.timeUnixNano, hrTimeNanos(r.hrTime), where);
      assert.equal(d.observedTimeUnixNano, hrTimeNanos(r.hrTimeObserved), where);
      assert.equal(d.severityNumber, r.severityNumber ?? 0, where);
      assert.equal(d.severityText, (r.severityText ?? '').toWellFormed(), where);
      assert.equal(d.eventName, (r.eventName ?? '').toWellFormed(), where);
      assert.equal(canonicalValue(d.body as AttestedInput), canonicalValue(r.body as AttestedInput), where);
      assert.equal(canonicalAttributes(d.attributes as Record<string, AttestedInput>), canonicalAttributes(r.attributes as Record<string, AttestedInput>), where);
      assert.equal(canonicalAttributes(d.resource as Record<string, AttestedInput>), canonicalAttributes(r.resource.attributes as Record<string, AttestedInput>), where);
      assert.equal(d.droppedAttributesCount, r.droppedAttributesCount, where);
      assert.equal(d.scope.name, r.instrumentationScope.name.toWellFormed(), where);
      assert.equal(d.scope.version, (r.instrumentationScope.version ?? '').toWellFormed(), where);
      assert.equal(d.traceId, (r.spanContext?.traceId ?? '').toLowerCase(), where);
      assert.equal(d.spanId, (r.spanContext?.spanId ?? '').toLowerCase(), where);
      assert.equal(d.flags, r.spanContext?.traceFlags ?? 0, where);
    }
  }
});

void test('runs of unchanged KeyValues copied from the last attributes: a change at every position, in place, across key lists and tags', () => {
  // The encoder copies runs of neighbouring KeyValues whose values are the ones written before from
  // the bytes of the attributes last written with the same keys and tag. Each step below changes
  // one key (or two neighbours, or an array in place) at every position of the list, to a value of
  // another length, type or emptiness, and goes back; other key lists and the same keys under other
  // tags (the resource's, a key-value list's) come in between.
  const keys = Array.from({ length: 12 }, (_, i) => `k${i}.${'x'.repeat(i)}`);
  const shared = ['deploy', 'root'];
  const base = (): Record<string, unknown> => Object.fromEntries(keys.map((key, i) => [key, i % 4 === 0 ? 'v'.repeat(i + 1) : i % 4 === 1 ? i * 1000 : i % 4 === 2 ? shared : `s${i}`]));
  const changes: ((value: unknown) => unknown)[] = [
    (v) => `${String(v)}!`,
    () => 'z'.repeat(130),
    () => 7,
    () => 2 ** 40,
    () => -1,
    () => true,
    () => ['a', 'b'],
    () => undefined,
    () => null,
    () => ({ nested: 'kv' }),
    () => 'é',
  ];
  const resource = resourceFromAttributes(base());
  const records: ReadableLogRecord[] = [];
  const push = (attributes: Record<string, unknown>, fields: Partial<Record<keyof ReadableLogRecord, unknown>> = {}): void => {
    records.push(plainRecord({ attributes, ...fields }));
  };
  visitPositionChanges(
    {
      keys,
      base,
      changes,
      shared,
      otherValue: 'other',
      between: (c) => {
        if (c % 3 === 1) push(base(), { body: { kv: base() }, resource });
      },
    },
    (attributes) => push(attributes),
  );
  for (let from = 0; from < records.length; from += 50) {
    const batch = records.slice(from, from + 50);
    assertSameBytes(batch, `records ${from} to ${from + batch.length}`);
    assert.equal(Buffer.compare(encodeLogsRequest(batch.map((r) => encodeLogRecord(r))), reference(batch)), 0, `records ${from} on, encoded one by one`);
  }
});

void test('attributes nested in themselves with the same keys, and attributes too large to keep, are written as the serializer writes them', () => {
  const nested = (depth: number): Record<string, unknown> => ({ a: depth === 0 ? 'leaf' : nested(depth - 1), b: depth });
  const large = (fill: string): Record<string, unknown> => ({ small: 'same', big: fill.repeat(70_000), after: 'same too' });
  const records = [
    plainRecord({ attributes: { a: nested(3), b: 1 } }),
    plainRecord({ attributes: { a: nested(3), b: 1 } }),
    plainRecord({ body: nested(4), attributes: nested(2) }),
    plainRecord({ attributes: large('x') }),
    plainRecord({ attributes: large('x') }),
    plainRecord({ attributes: { ...large('y'), small: 'changed' } }),
    plainRecord({ attributes: { small: 'changed', big: 'short now', after: 'same too' } }),
    plainRecord({ attributes: { small: 'changed', big: 'short now', after: 'same too' } }),
  ];
  assertSameBytes(records, 'nested and large attributes');
  for (const r of records) assert.equal(Buffer.compare(encodeLogsRequest([encodeLogRecord(r)]), reference([r])), 0);
});
