// mapToEcs and the bulk lines over many generated records, against a digest of what the mapping
// wrote before it was rewritten for speed (one pass over the attributes, resource parts once per
// request, timestamps from integer arithmetic): the documents Elasticsearch gets must not change
// by a byte. Records mix every attribute the mapping treats specially with odd keys (blank,
// __proto__, dotted, unicode, a lone surrogate), odd values (bigints beyond int64, NaN, bytes,
// nested lists and maps) and odd times. A deliberate change of the mapping changes the digest:
// check the new documents by hand, then update `expected`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { bulkLine } from '../../../aggregator/index/bulk-line.ts';
import { mapToEcs } from '../../../aggregator/map/ecs.ts';
import type { AttributeValue, Attributes, DecodedLogRecord } from '../../../aggregator/log-record.ts';

/** A small seeded generator (LCG), so that every run sees the same records. */
function generator(seed: number): { rnd: () => number; pick: <T>(xs: readonly T[]) => T } {
  let state = seed;
  const rnd = (): number => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  return { rnd, pick: <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]! };
}

const oddKeys = [
  'ci_audit.dataset', 'ci_audit.record.id', 'log.file.path', 'log.offset', 'ci_audit.chain.seq', 'ci_audit.chain.hash', 'ci_audit.chain.prev_hash',
  'ci_audit.gap.from', 'ci_audit.gap.to', 'ci_audit.gap.reason', 'ci_audit.checkpoint.seq', 'ci_audit.checkpoint.key', 'ci_audit.checkpoint.hash',
  'ci_audit.checkpoint.__proto__', 'message', 'event.kind', 'event.category', 'event.action', 'event.dataset', 'event.original', 'user.name', 'user',
  'user.effective.name', 'source.ip', 'source.port', 'process.pid', 'host.hostname', 'host', 'related.ip', 'related.user', 'labels.team',
  'labels.__proto__.x', 'labels', 'cicd.pipeline.run.id', 'vcs.ref', 'vcs.ref.head', 'system.auth.ssh.method', 'ci_audit.parse.status', 'custom.thing',
  '', ' ', '__proto__', 'constructor', 'toString', '0', '12', 'a.b', 'a', 'ci_audit.verified', 'ci_audit.chain', 'data_stream.type', 'agent.id',
  'ci_audit.foo', 'ü.ключ', '\ud800x',
];

function records(seed: number, count: number, keys: readonly string[] = oddKeys, maxAttributes = 12): Array<{ record: DecodedLogRecord; ingested: Date; chain: { canonical: string; verified: boolean } | undefined; checkpointVerified: boolean | undefined }> {
  const { rnd, pick } = generator(seed);
  const hash = (): string => pick(['0'.repeat(64), 'ab'.repeat(32), 'AB'.repeat(32), 'zz']);
  /** Sets a key as the decoder does: as an own property, even `__proto__`. */
  const put = (target: Attributes, key: string, value: AttributeValue): void => {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  };
  const value = (depth = 0): AttributeValue => {
    switch (Math.floor(rnd() * (depth > 1 ? 9 : 11))) {
      case 0: return pick(['', 'x', 'auth', 'Auth!', '192.0.2.1', '2001:db8::1', '42', '-7', '12345678901234567890', 'é\u2028\ud800', 'a"b\\c\n\u0001']);
      case 1: return pick([0, 1, -1, 42, 1.5, 2 ** 53, 2 ** 60, NaN, Infinity, -0, 1e21]);
      case 2: return pick([0n, 5n, 2n ** 63n, -3n, 2n ** 64n]);
      case 3: return rnd() < 0.5;
      case 4: return new Uint8Array([1, 2, 255].slice(0, Math.floor(rnd() * 4)));
      case 5: return undefined;
      case 6: return hash();
      case 7: return pick(['ssh_login', 'deploy', 'root', '😀']);
      case 8: return Math.floor(rnd() * 100000);
      case 9: return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
      default: {
        const o: Attributes = {};
        for (let i = 0; i < rnd() * 3; i++) put(o, pick(keys), value(depth + 1));
        return o;
      }
    }
  };
  const resources: Attributes[] = [
    { 'host.name': 'runner-1', 'service.name': 'ci-audit-agent', 'service.version': '0.1.0', 'ci_audit.agent.id': 'agent-1' },
    { 'host.name': '', 'service.name': 'other', 'os.type': 'darwin', 'os.name': 'macOS', 'host.id': 'h1', 'host.arch': 'arm64', 'os.description': 'd', 'os.version': '14', 'k8s.pod': 'p', x: { y: [1, 2] } },
    {},
    { 'ci_audit.agent.id': 'a'.repeat(600), ' ': 1, extra: 2n ** 64n },
  ];
  return Array.from({ length: count }, () => {
    const attributes: Attributes = {};
    for (let i = 0, n = Math.floor(rnd() * maxAttributes); i < n; i++) {
      const key = pick(keys);
      put(attributes, key, key === 'ci_audit.chain.seq' ? pick<AttributeValue>([1, 5, 0, -1, 5n, 'x', 2 ** 60]) : key.includes('hash') ? hash() : value());
    }
    const record: DecodedLogRecord = {
      resource: pick(resources),
      scope: pick([{ name: 's', version: '1', attributes: {} }, { name: '', version: '', attributes: { a: 1, b: { c: 'd' } } }]),
      timeUnixNano: pick([0n, 1n, 1_795_688_521_482_113_789n + BigInt(Math.floor(rnd() * 1e15)), 2n ** 63n - 1n, 2n ** 63n, 951_782_400_000_000_000n + BigInt(Math.floor(rnd() * 1e14))]),
      observedTimeUnixNano: pick([0n, 5n, 1_795_688_521_000_000_000n, 2n ** 64n]),
      severityNumber: pick([0, 9, 17, 24]),
      severityText: pick(['', 'WARN']),
      body: rnd() < 0.8 ? pick(['line', 'a"\u0000', '\ud800']) : value(),
      attributes,
      droppedAttributesCount: pick([0, 2]),
      flags: pick([0, 1]),
      traceId: pick(['', 'ab'.repeat(16)]),
      spanId: pick(['', 'cd'.repeat(8)]),
      eventName: pick(['', 'e']),
    };
    return {
      record,
      ingested: new Date(pick([0, 1_795_688_521_123, -5000])),
      chain: pick([undefined, { canonical: '{"x":"é\\"1"}', verified: true }]),
      checkpointVerified: pick([undefined, true, false]),
    };
  });
}

/** The bulk lines of `count` records of each seed, and their issues, as one SHA-256. */
function digestOf(seeds: readonly number[], count: number, keys?: readonly string[], maxAttributes?: number): string {
  const digest = createHash('sha256');
  for (const seed of seeds) {
    for (const { record, ingested, chain, checkpointVerified } of records(seed, count, keys, maxAttributes)) {
      const mapped = mapToEcs(record, { namespace: 'default', ingested, chain, checkpointVerified });
      const lines = bulkLine(mapped);
      assert.equal(lines.document, JSON.stringify(mapped.document));
      digest.update(`${lines.action}\n${lines.document}\n${JSON.stringify(mapped.issues)}\n`);
    }
  }
  return digest.digest('hex');
}

void test('the documents and bulk lines of 20,000 generated records are byte for byte what the mapping wrote before', () => {
  assert.equal(digestOf([1, 2, 3, 4], 5000), expected);
});

/**
 * The fields a parser places (ECS, CI/CD, ci_audit.parse*), with keys that collide with them or with
 * the document's own fields, so that records place many fields at once, some into the same objects,
 * some refused, in every order; and a message with and without a body.
 */
const placedKeys = [
  'message', 'event.kind', 'event.category', 'event.type', 'event.action', 'event.outcome', 'event.timezone', 'event', 'event.dataset',
  'user.name', 'user.effective.name', 'user.effective', 'user', 'group.id', 'source.ip', 'source.port', 'source', 'process.pid', 'process.name',
  'process.exit_code', 'host.hostname', 'host.name', 'host', 'related.user', 'related.ip', 'related.hash', 'related.hosts', 'system.auth.ssh.event',
  'system.auth.ssh.method', 'system.auth.ssh.dropped_ip', 'system.auth.ssh', 'system.auth.sudo.command', 'labels.a', 'labels.a.b', 'labels.b',
  'cicd.pipeline.name', 'cicd.pipeline.run.id', 'cicd.pipeline', 'vcs.ref', 'vcs.ref.head', 'vcs.ref.head.name', 'ci_audit.parser',
  'ci_audit.parse.status', 'ci_audit.parse', 'ci_audit.redacted.rules', 'ci_audit.gap.reason', 'ci_audit.checkpoint.seq', 'ci_audit.dataset',
  'ci_audit.record.id', 'log.file.path', 'log.offset', 'log.level', 'custom', '__proto__', 'labels.__proto__',
];

void test('records that place many ECS fields are byte for byte what the mapping wrote when it merged them in', () => {
  assert.equal(digestOf([5, 6, 7, 8], 5000, placedKeys, 40), expectedPlaced);
});

// Both digests were computed with the mapping as it was at the commits named below, then updated
// once when unchained records' `_id`s got their `:id:` part (core/integrity/document.ts): with
// recordDocumentId giving the earlier `<agent>:<record id>`, the mapping still gives the earlier
// digests (7a183ba7..., ba75bfb3...), so that `_id` is the only change.
/** Computed with the mapping as it was at commit 6a54981, before the rewrite. */
const expected = '67f90c169f0ed4c4fa2aff72d3d3114bcf0551f0db260a66c054d09e9c318c3c';
/** Computed with the mapping as it was at commit 3608fbc, which merged the placed fields into the document. */
const expectedPlaced = '09ef4552fc0008608743b1b5fa7cb011d31e4cd485f38d9118e1a28fe9217fec';
