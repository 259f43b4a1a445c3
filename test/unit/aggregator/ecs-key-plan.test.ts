// mapToEcs decides what each attribute key is and where it goes once per key list, and reuses that
// for the next records with the same keys. Records of one key list whose values take different
// turns (a dataset taken or kept, a chain valid or not, a gap value scalar or not, a field that does
// not fit its type) must map as each one does on its own: the reference for each record is a fresh
// instance of the module, which has seen no record before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttributeValue, DecodedLogRecord } from '../../../aggregator/log-record.ts';
import { mapToEcs } from '../../../aggregator/map/ecs.ts';
import { seededRandom } from '../../helpers/random.ts';

type MapToEcs = typeof mapToEcs;

const options = { namespace: 'default', ingested: new Date('2026-11-27T06:00:00.000Z') };
const hash = (n: number): string => n.toString(16).padStart(64, '0');

/** Values each key may take: some taken by mapToEcs, some left as attributes, some that do not fit the field. */
const choices: Record<string, AttributeValue[]> = {
  'ci_audit.dataset': ['auth', 'Not A Dataset', 7, undefined],
  'ci_audit.record.id': ['r-1', '', 12n],
  'log.file.path': ['/var/log/auth.log', '', ['a']],
  'log.offset': [240, -1, '360', 'x', 2n ** 70n],
  'ci_audit.chain.seq': [2, 0, 'two'],
  'ci_audit.chain.hash': [hash(2), 'short'],
  'ci_audit.chain.prev_hash': [hash(1), 'short'],
  'ci_audit.gap.first_seq': [5, 6n, { nested: 'x' }, undefined],
  'ci_audit.checkpoint.seq': [9, ['a']],
  'ci_audit.parser': ['sshd', 1, { a: 'b' }],
  'source.ip': ['203.0.113.17', 'no ip'],
  'source.port': [50002, 'port'],
  'event.category': ['authentication', ['authentication', 'session'], [1]],
  'user.name': ['deploy', true],
  user: ['root'],
  'labels.x': ['y', { deep: 'z' }],
  message: ['parsed message', undefined],
  'other.thing': ['kept', [1, 2]],
};

function records(seed: number, count: number): DecodedLogRecord[] {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  // Three key lists, in turn, so that plans are reused and kept side by side; two of one length.
  const keys = Object.keys(choices);
  const keyLists = [keys, keys.toReversed(), keys.filter((_, i) => i % 3 !== 0)];
  return Array.from({ length: count }, (_, n) => {
    const attributes: Record<string, AttributeValue> = {};
    for (const key of keyLists[n % 3]!) attributes[key] = pick(choices[key]!);
    return {
      resource: { 'ci_audit.agent.id': 'agent-1', 'service.name': 'ci-audit-agent' },
      scope: { name: '', version: '', attributes: {} },
      timeUnixNano: 1_795_688_521_482_113_789n,
      observedTimeUnixNano: 0n,
      severityNumber: 9,
      severityText: '',
      body: random() < 0.5 ? 'a line' : undefined,
      attributes,
      droppedAttributesCount: 0,
      flags: 0,
      traceId: '',
      spanId: '',
      eventName: '',
    };
  });
}

async function freshMapToEcs(n: number): Promise<MapToEcs> {
  const module = (await import(`../../../aggregator/map/ecs.ts?fresh=${n}`)) as { mapToEcs: MapToEcs };
  return module.mapToEcs;
}

void test('records of one key list map as each does on its own, whatever the records before them', async () => {
  const all = records(2_611_27, 300);
  for (const [n, record] of all.entries()) {
    const alone = (await freshMapToEcs(n))(structuredClone(record), options);
    const inTurn = mapToEcs(record, options);
    // JSON text: the property order of the document is part of its bytes.
    assert.equal(JSON.stringify(inTurn, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)), JSON.stringify(alone, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value)), `record ${n}`);
  }
});
