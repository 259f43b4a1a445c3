// The hand-written protobuf decoder against the one it replaced: protobufjs (decode, the check for
// known fields with a wrong wire type, toObject) followed by the shared normalizer. Both read the same
// generated requests, valid and damaged, and must return deep-equal records or both refuse the body
// with CIA_ERR_RECEIVER_DECODE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect, isDeepStrictEqual } from 'node:util';
import protobuf from 'protobufjs';
import { CiAuditError, hasErrorCode } from '../../../core/errors.ts';
import type { DecodedLogRecord } from '../../../aggregator/log-record.ts';
import { decodeProtobufLogs, normalizeRequest } from '../../../aggregator/receiver/otlp-decode.ts';
import { ExportLogsServiceRequest } from '../../../aggregator/receiver/otlp-proto.ts';
import { seededRandom } from '../../helpers/random.ts';

// ---------------------------------------------------------------------------------------------
// The reference: the protobuf path of otlp-decode.ts before the hand-written decoder, unchanged.

function referenceDecode(body: Uint8Array): DecodedLogRecord[] {
  let plain: unknown;
  try {
    const reader = protobuf.Reader.create(body) as protobuf.Reader & { discardUnknown: boolean; raw(start: number, end: number): Uint8Array };
    reader.discardUnknown = false;
    let sawUnknown = false;
    const raw = reader.raw.bind(reader);
    reader.raw = (start, end) => {
      sawUnknown = true;
      return raw(start, end);
    };
    const message = ExportLogsServiceRequest.decode(reader);
    const misfit = sawUnknown ? misfitField(message, ExportLogsServiceRequest, '<request>') : undefined;
    if (misfit !== undefined) throw new CiAuditError('CIA_ERR_RECEIVER_DECODE', `body is not a protobuf ExportLogsServiceRequest: ${misfit}`);
    plain = ExportLogsServiceRequest.toObject(message, { longs: String, defaults: false, arrays: false });
  } catch (cause) {
    if (cause instanceof CiAuditError) throw cause;
    throw new CiAuditError('CIA_ERR_RECEIVER_DECODE', `body is not a protobuf ExportLogsServiceRequest: ${(cause as Error).message}`, { cause });
  }
  return normalizeRequest(plain, 'protobuf');
}

function misfitField(message: protobuf.Message, type: protobuf.Type, path: string): string | undefined {
  const unknowns = (message as { $unknowns?: Uint8Array[] }).$unknowns;
  for (const raw of unknowns ?? []) {
    const tag = protobuf.Reader.create(raw).uint32();
    const field = type.fieldsById[tag >>> 3];
    if (field !== undefined) return `${path}.${field.name}: field ${field.id} has wire type ${tag & 7}, which does not fit its type ${field.type}`;
  }
  for (const field of type.fieldsArray) {
    if (!(field.resolvedType instanceof protobuf.Type)) continue;
    const value = (message as unknown as Record<string, unknown>)[field.name];
    if (value === undefined || value === null) continue;
    const children = Array.isArray(value) ? (value as protobuf.Message[]) : [value as protobuf.Message];
    for (const [i, child] of children.entries()) {
      const found = misfitField(child, field.resolvedType, field.repeated ? `${path}.${field.name}[${i}]` : `${path}.${field.name}`);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// A small protobuf writer, so that requests can hold what no well-behaved encoder writes: unknown
// fields of every wire type, groups, fields out of order, message fields and oneof members twice.

type Bytes = Uint8Array;

function varint(value: bigint): number[] {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const cat = (parts: Bytes[]): Bytes => Buffer.concat(parts);
const tag = (field: number, wireType: number): number[] => varint((BigInt(field) << 3n) | BigInt(wireType));
const vField = (field: number, value: bigint): Bytes => Uint8Array.from([...tag(field, 0), ...varint(value)]);
const lenField = (field: number, payload: Bytes): Bytes => cat([Uint8Array.from([...tag(field, 2), ...varint(BigInt(payload.byteLength))]), payload]);
const strField = (field: number, value: string): Bytes => lenField(field, Buffer.from(value, 'utf8'));
function fixed64Field(field: number, value: bigint): Bytes {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, value));
  return cat([Uint8Array.from(tag(field, 1)), b]);
}
function fixed32Field(field: number, value: number): Bytes {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return cat([Uint8Array.from(tag(field, 5)), b]);
}
function doubleField(field: number, value: number): Bytes {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return cat([Uint8Array.from(tag(field, 1)), b]);
}

class Generator {
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = seededRandom(seed);
  }

  chance(p: number): boolean {
    return this.#random() < p;
  }

  int(below: number): number {
    return Math.floor(this.#random() * below);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  bytes(n: number): Bytes {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }

  u64(): bigint {
    return this.pick([
      0n,
      1n,
      2n ** 53n + 1n,
      2n ** 63n,
      2n ** 64n - 1n,
      1_795_688_521_482_113_789n,
      BigInt(this.int(2 ** 31)) * BigInt(this.int(2 ** 31)) + BigInt(this.int(2 ** 31)),
    ]);
  }

  i64(): bigint {
    return this.pick([
      0n,
      1n,
      -1n,
      42n,
      BigInt(Number.MAX_SAFE_INTEGER),
      BigInt(Number.MAX_SAFE_INTEGER) + 1n,
      BigInt(Number.MIN_SAFE_INTEGER),
      BigInt(Number.MIN_SAFE_INTEGER) - 1n,
      -(2n ** 53n),
      2n ** 63n - 1n,
      -(2n ** 63n),
      BigInt(this.int(2 ** 31)) * BigInt(this.int(2 ** 31)) * (this.chance(0.5) ? 1n : -1n),
      BigInt(this.int(1000) - 500),
    ]);
  }

  text(): string {
    const pieces = ['', 'a', 'host.name', 'ci_audit.record.id', 'runner-01', '/var/log/auth.log', '\u00e9t\u00e9', '\u{1F600}', '\uFEFFbom', '\u4e2d\u6587', 'x'.repeat(70), 'sp ace', '\u0000nul', '__proto__', 'constructor', 'toString'];
    let out = this.pick(pieces);
    while (this.chance(0.3)) out += this.pick(pieces);
    return out;
  }

  double(): number {
    return this.pick([0, -0, 1.5, -2.25, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324, 1.7976931348623157e308, 2 ** 53 + 2, this.#random() * 1e6]);
  }

  /** Unknown fields, some nested in groups, that both decoders must skip. */
  unknownField(): Bytes {
    const field = this.pick([13, 14, 15, 99, 1000, 2 ** 29 - 1]);
    switch (this.int(5)) {
      case 0:
        return vField(field, this.i64());
      case 1:
        return fixed64Field(field, this.u64());
      case 2:
        return lenField(field, this.bytes(this.int(12)));
      case 3:
        return fixed32Field(field, this.int(2 ** 31));
      default: {
        const inner = this.chance(0.5) ? this.unknownField() : new Uint8Array(0);
        return cat([Uint8Array.from(tag(field, 3)), vField(1, 7n), inner, Uint8Array.from(tag(field, 4))]);
      }
    }
  }

  /** A message from its fields, sometimes with unknown fields added and the order shuffled. */
  message(fields: Bytes[]): Bytes {
    const all = [...fields];
    if (this.chance(0.15)) all.push(this.unknownField());
    if (this.chance(0.1)) {
      for (let i = all.length - 1; i > 0; i--) {
        const j = this.int(i + 1);
        [all[i], all[j]] = [all[j]!, all[i]!];
      }
    }
    return cat(all);
  }

  anyValue(depth: number): Bytes {
    const members: Bytes[] = [];
    const count = this.chance(0.1) ? 0 : this.chance(0.1) ? 2 : 1;
    for (let i = 0; i < count; i++) members.push(this.anyMember(depth));
    return this.message(members);
  }

  anyMember(depth: number): Bytes {
    const kinds = depth < 4 ? 7 : 5;
    switch (this.int(kinds)) {
      case 0:
        return strField(1, this.text());
      case 1:
        return vField(2, this.pick([0n, 1n, 2n, 2n ** 63n]));
      case 2:
        return vField(3, this.i64());
      case 3:
        return doubleField(4, this.double());
      case 4:
        return lenField(7, this.bytes(this.int(20)));
      case 5:
        return lenField(5, this.message(Array.from({ length: this.int(4) }, () => lenField(1, this.anyValue(depth + 1)))));
      default:
        return lenField(6, this.message(Array.from({ length: this.int(4) }, () => lenField(1, this.keyValue(depth + 1)))));
    }
  }

  keyValue(depth: number): Bytes {
    const fields = [strField(1, this.pick(['k', 'k2', 'ci_audit.dataset', '', this.text()]))];
    if (!this.chance(0.1)) fields.push(lenField(2, this.anyValue(depth)));
    // A value sent twice is merged; a key sent twice: the last one counts.
    if (this.chance(0.05)) fields.push(lenField(2, this.anyValue(depth)));
    if (this.chance(0.05)) fields.push(strField(1, 'again'));
    return this.message(fields);
  }

  attributes(field: number): Bytes[] {
    return Array.from({ length: this.int(6) }, () => lenField(field, this.keyValue(0)));
  }

  logRecord(): Bytes {
    const fields: Bytes[] = [];
    if (this.chance(0.8)) fields.push(fixed64Field(1, this.u64()));
    if (this.chance(0.5)) fields.push(fixed64Field(11, this.u64()));
    if (this.chance(0.6)) fields.push(vField(2, this.pick([0n, 9n, 24n, -1n, 2n ** 40n])));
    if (this.chance(0.5)) fields.push(strField(3, this.pick(['INFO', 'WARN', '', this.text()])));
    if (this.chance(0.8)) fields.push(lenField(5, this.anyValue(0)));
    if (this.chance(0.05)) fields.push(lenField(5, this.anyValue(0)));
    fields.push(...this.attributes(6));
    if (this.chance(0.2)) fields.push(vField(7, this.pick([0n, 3n, 2n ** 32n - 1n, 2n ** 35n])));
    if (this.chance(0.3)) fields.push(fixed32Field(8, this.pick([0, 1, 2 ** 32 - 1])));
    if (this.chance(0.3)) fields.push(lenField(9, this.bytes(this.pick([0, 16, 3]))));
    if (this.chance(0.3)) fields.push(lenField(10, this.bytes(this.pick([0, 8, 5]))));
    if (this.chance(0.2)) fields.push(strField(12, this.text()));
    if (this.chance(0.05)) fields.push(strField(3, 'LAST'));
    return this.message(fields);
  }

  request(): Bytes {
    return this.message(
      Array.from({ length: this.int(4) }, () => {
        const rl: Bytes[] = [];
        if (this.chance(0.8)) rl.push(lenField(1, this.message([...this.attributes(1), ...(this.chance(0.2) ? [vField(2, 5n)] : [])])));
        if (this.chance(0.05)) rl.push(lenField(1, this.message(this.attributes(1))));
        for (let j = this.int(3); j > 0; j--) {
          const sl: Bytes[] = [];
          if (this.chance(0.7)) {
            const scope = [strField(1, this.text()), strField(2, this.pick(['', '0.1.0'])), ...this.attributes(3)];
            if (this.chance(0.1)) scope.push(vField(4, 2n));
            sl.push(lenField(1, this.message(scope)));
          }
          for (let k = this.int(5); k > 0; k--) sl.push(lenField(2, this.logRecord()));
          if (this.chance(0.1)) sl.push(strField(3, 'https://opentelemetry.io/schemas/1.26.0'));
          rl.push(lenField(2, this.message(sl)));
        }
        if (this.chance(0.1)) rl.push(strField(3, 'https://opentelemetry.io/schemas/1.26.0'));
        return lenField(1, this.message(rl));
      }),
    );
  }

  /**
   * A request of one source's records: each carries its predecessor's attributes, mostly the same
   * KeyValues at the same positions (the decoder compares them with the previous record's bytes),
   * some with the same key and another value, some replaced, added, left out or with a second key.
   */
  similarRequest(): Bytes {
    const keys = ['k', 'k2', 'ci_audit.dataset', '', '__proto__', 'user.name'];
    const withKey = (key: string): Bytes => this.message([strField(1, key), lenField(2, this.anyValue(0))]);
    let attributes = Array.from({ length: this.int(8) }, () => this.keyValue(0));
    const records: Bytes[] = [];
    for (let n = 1 + this.int(10); n > 0; n--) {
      attributes = attributes.map((kv) => {
        switch (this.int(12)) {
          case 0:
          case 1:
            return withKey(this.pick(keys));
          case 2:
            return this.keyValue(0);
          case 3:
            return cat([kv, strField(1, this.pick(keys))]);
          case 4:
            // The same key field, then a value cut off: the same prefix up to the damage.
            return this.chance(0.15) ? kv.subarray(0, this.int(kv.byteLength + 1)) : kv;
          default:
            return kv;
        }
      });
      if (this.chance(0.1)) attributes.splice(this.int(attributes.length + 1), 0, this.keyValue(0));
      if (this.chance(0.1) && attributes.length > 0) attributes.splice(this.int(attributes.length), 1);
      records.push(lenField(2, cat([fixed64Field(1, this.u64()), ...attributes.map((kv) => lenField(6, kv))])));
    }
    return lenField(1, lenField(2, cat(records)));
  }

  /** A damaged copy: bytes flipped, inserted, removed, or the body cut short. */
  damage(body: Bytes): Bytes {
    const out = [...body];
    for (let n = 1 + this.int(3); n > 0 && out.length > 0; n--) {
      const at = this.int(out.length);
      switch (this.int(4)) {
        case 0:
          out[at] = this.int(256);
          break;
        case 1:
          out.splice(at, 0, this.pick([0x00, 0x08, 0x0a, 0x0b, 0x0c, 0x0e, 0x80, 0xff, 0xc0, 0xed]));
          break;
        case 2:
          out.splice(at, 1 + this.int(4));
          break;
        default:
          out.length = at;
      }
    }
    return Uint8Array.from(out);
  }
}

type Outcome = { records: DecodedLogRecord[] } | { error: unknown };

function outcome(decode: (body: Uint8Array) => DecodedLogRecord[], body: Uint8Array): Outcome {
  try {
    return { records: decode(body) };
  } catch (error) {
    return { error };
  }
}

function assertSameOutcome(body: Uint8Array, label: string): 'decoded' | 'refused' {
  const expected = outcome(referenceDecode, body);
  const actual = outcome(decodeProtobufLogs, body);
  const hex = (): string => Buffer.from(body).toString('hex');
  const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
  if ('error' in expected) {
    if (!('error' in actual)) assert.fail(`${label}: the reference refused (${message(expected.error)}) but the decoder accepted ${hex()}`);
    assert.ok(hasErrorCode(actual.error, 'CIA_ERR_RECEIVER_DECODE'), `${label}: ${String(actual.error)}`);
    return 'refused';
  }
  if ('error' in actual) assert.fail(`${label}: the decoder refused (${message(actual.error)}) what the reference accepted: ${hex()}`);
  if (!isDeepStrictEqual(actual.records, expected.records)) {
    assert.fail(`${label}: records differ at ${firstDifference(actual.records, expected.records, 'records')} for ${hex()}`);
  }
  return 'decoded';
}

/** Where two values first differ, to make a failure readable. */
function firstDifference(actual: unknown, expected: unknown, path: string): string {
  if (typeof actual !== 'object' || typeof expected !== 'object' || actual === null || expected === null || actual instanceof Uint8Array) {
    return `${path}: ${inspect(actual)} instead of ${inspect(expected)}`;
  }
  if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) return `${path}: prototype ${inspect(Object.getPrototypeOf(actual))} instead of ${inspect(Object.getPrototypeOf(expected))}`;
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  for (const key of keys) {
    const a = (actual as Record<string, unknown>)[key];
    const e = (expected as Record<string, unknown>)[key];
    if (!isDeepStrictEqual(a, e) || key in actual !== key in expected) return firstDifference(a, e, `${path}.${key}`);
  }
  return `${path}: ${inspect(actual)} instead of ${inspect(expected)}`;
}

// ---------------------------------------------------------------------------------------------

void test('generated requests decode exactly as protobufjs + the normalizer decoded them', () => {
  const generator = new Generator(20_261_126);
  let records = 0;
  for (let i = 0; i < 2000; i++) {
    const body = generator.request();
    const result = assertSameOutcome(body, `request ${i}`);
    if (result !== 'decoded') assert.fail(`request ${i} was refused by both: ${(outcome(decodeProtobufLogs, body) as { error: Error }).error.message}`);
    records += decodeProtobufLogs(body).length;
  }
  // The generator must really produce records, not mostly empty requests.
  assert.ok(records > 3000, `only ${records} records generated`);
});

void test('damaged requests are refused, or decoded, exactly as protobufjs did', () => {
  const generator = new Generator(7);
  const counts = { decoded: 0, refused: 0 };
  for (let i = 0; i < 4000; i++) {
    const body = generator.damage(generator.request());
    counts[assertSameOutcome(body, `damaged request ${i}`)]++;
  }
  // Both kinds must occur, or the test is not testing what it says.
  assert.ok(counts.decoded > 200 && counts.refused > 200, JSON.stringify(counts));
});

void test('records repeating their predecessor\'s attributes decode exactly as protobufjs decoded them, damaged or not', () => {
  const generator = new Generator(5_061_127);
  const counts = { decoded: 0, refused: 0 };
  for (let i = 0; i < 3000; i++) {
    const body = generator.similarRequest();
    counts[assertSameOutcome(body, `similar request ${i}`)]++;
    counts[assertSameOutcome(generator.damage(body), `damaged similar request ${i}`)]++;
  }
  assert.ok(counts.decoded > 2500 && counts.refused > 1000, JSON.stringify(counts));
});

void test('records with the same attribute bytes share no array, list or bytes value', () => {
  const kv = (key: string, value: Bytes): Bytes => lenField(6, cat([strField(1, key), lenField(2, value)]));
  const attributes = cat([kv('a', lenField(5, lenField(1, strField(1, 'x')))), kv('l', lenField(6, lenField(1, cat([strField(1, 'k'), lenField(2, strField(1, 'v'))])))), kv('b', lenField(7, Uint8Array.of(1, 2))), kv('s', strField(1, 'same'))]);
  const body = lenField(1, lenField(2, cat([lenField(2, attributes), lenField(2, attributes)])));
  assert.equal(assertSameOutcome(body, 'two records, the same attributes'), 'decoded');
  const [first, second] = decodeProtobufLogs(body);
  for (const key of ['a', 'l', 'b']) assert.notEqual(first!.attributes[key], second!.attributes[key], key);
  assert.deepEqual(first!.attributes, second!.attributes);
});

void test('nesting at and just beyond the recursion limit: the same outcome as protobufjs', () => {
  const nestArrays = (levels: number): Bytes => {
    let value = strField(1, 'bottom');
    for (let i = 0; i < levels; i++) value = lenField(5, lenField(1, value));
    return value;
  };
  const nestKvlists = (levels: number): Bytes => {
    let value = strField(1, 'bottom');
    for (let i = 0; i < levels; i++) value = lenField(6, lenField(1, cat([strField(1, `k${i}`), lenField(2, value)])));
    return value;
  };
  const nestGroups = (levels: number): Bytes => {
    let inner = vField(1, 1n);
    for (let i = 0; i < levels; i++) inner = cat([Uint8Array.from(tag(20, 3)), inner, Uint8Array.from(tag(20, 4))]);
    return inner;
  };
  const inBody = (anyValue: Bytes): Bytes => lenField(1, lenField(2, lenField(2, lenField(5, anyValue))));
  const inResource = (anyValue: Bytes): Bytes => lenField(1, lenField(1, lenField(1, cat([strField(1, 'k'), lenField(2, anyValue)]))));
  const outcomes: string[] = [];
  for (let levels = 40; levels <= 52; levels++) {
    outcomes.push(assertSameOutcome(inBody(nestArrays(levels)), `${levels} arrays in a body`));
    outcomes.push(assertSameOutcome(inResource(nestArrays(levels)), `${levels} arrays in a resource attribute`));
  }
  for (let levels = 28; levels <= 36; levels++) outcomes.push(assertSameOutcome(inBody(nestKvlists(levels)), `${levels} kvlists in a body`));
  for (let levels = 90; levels <= 102; levels++) {
    outcomes.push(assertSameOutcome(nestGroups(levels), `${levels} groups in the request`));
    outcomes.push(assertSameOutcome(lenField(1, lenField(2, lenField(2, nestGroups(levels)))), `${levels} groups in a record`));
  }
  assert.ok(outcomes.includes('decoded') && outcomes.includes('refused'));
});

void test('merges and last-wins rules of protobuf: the same records as protobufjs', () => {
  const record = (...fields: Bytes[]): Bytes => lenField(1, lenField(2, lenField(2, cat(fields))));
  const any = (...members: Bytes[]): Bytes => cat(members);
  const array = (...values: Bytes[]): Bytes => lenField(5, cat(values.map((v) => lenField(1, v))));
  const kvlist = (...pairs: Array<[string, Bytes]>): Bytes => lenField(6, cat(pairs.map(([k, v]) => lenField(1, cat([strField(1, k), lenField(2, v)])))));
  const cases: Array<[string, Bytes, unknown]> = [
    ['two arrayValues append', record(lenField(5, any(array(strField(1, 'a')), array(strField(1, 'b'))))), ['a', 'b']],
    ['a body sent twice merges', record(lenField(5, array(vField(3, 1n))), lenField(5, array(vField(3, 2n)))), [1, 2]],
    ['two kvlists merge', record(lenField(5, any(kvlist(['a', vField(2, 1n)]), kvlist(['b', vField(2, 0n)])))), { a: true, b: false }],
    ['the last oneof member wins', record(lenField(5, any(array(strField(1, 'a')), strField(1, 'text')))), 'text'],
    ['an array after a string starts afresh', record(lenField(5, any(strField(1, 'text'), array(strField(1, 'a'))))), ['a']],
    ['an empty body after a value keeps the value', record(lenField(5, strField(1, 'kept')), lenField(5, new Uint8Array(0))), 'kept'],
    ['an empty string is a string', record(lenField(5, strField(1, ''))), ''],
    ['false is a boolean', record(lenField(5, vField(2, 0n))), false],
    ['an empty array', record(lenField(5, lenField(5, new Uint8Array(0)))), []],
    ['an empty kvlist', record(lenField(5, lenField(6, new Uint8Array(0)))), {}],
    ['an empty bytes value', record(lenField(5, lenField(7, new Uint8Array(0)))), new Uint8Array(0)],
  ];
  for (const [name, body, expected] of cases) {
    assert.equal(assertSameOutcome(body, name), 'decoded');
    assert.deepStrictEqual(decodeProtobufLogs(body)[0]!.body, expected, name);
  }
  // Scalars: the last one wins; an empty string sent last clears an earlier one.
  const scalars = record(strField(3, 'WARN'), strField(3, ''), vField(2, 9n), vField(2, 13n), strField(12, 'a'), strField(12, 'b'));
  assert.equal(assertSameOutcome(scalars, 'scalars twice'), 'decoded');
  const [decoded] = decodeProtobufLogs(scalars);
  assert.deepEqual([decoded!.severityText, decoded!.severityNumber, decoded!.eventName], ['', 13, 'b']);
  // A resource sent twice is merged, even after the scope_logs that use it.
  const late = lenField(1, cat([lenField(2, lenField(2, new Uint8Array(0))), lenField(1, lenField(1, cat([strField(1, 'a'), lenField(2, strField(1, '1'))]))), lenField(1, lenField(1, cat([strField(1, 'b'), lenField(2, strField(1, '2'))])))]));
  assert.equal(assertSameOutcome(late, 'resource twice, after its records'), 'decoded');
  assert.deepEqual(decodeProtobufLogs(late)[0]!.resource, { a: '1', b: '2' });
});

void test('the one deliberate difference: a wrong wire type inside a oneof member that a later member replaces is refused', () => {
  // body { array_value { values [ { string_value sent as a varint } ] }, string_value "x" }: protobufjs
  // dropped the array (and with it the bad field) when the string came, so it never saw the misfit.
  const body = lenField(1, lenField(2, lenField(2, lenField(5, cat([lenField(5, lenField(1, vField(1, 1n))), strField(1, 'x')])))));
  assert.equal(referenceDecode(body)[0]!.body, 'x');
  assert.throws(() => decodeProtobufLogs(body), /body\.arrayValue\.values\[0\]\.stringValue: field 1 has wire type 0, which does not fit its type string/);
});
