import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '../../../core/wire.ts';
import { placeEcsField } from '../../../aggregator/map/ecs-fields.ts';
import { mapToEcs } from '../../../aggregator/map/ecs.ts';
import type { DecodedLogRecord } from '../../../aggregator/log-record.ts';

function record(attributes: DecodedLogRecord['attributes'], body = 'Mar  4 09:15:02 h sshd[1]: Accepted password for a from 192.0.2.1 port 22 ssh2'): DecodedLogRecord {
  return {
    resource: { 'host.name': 'runner-1', 'service.name': 'ci-audit-agent', 'ci_audit.agent.id': 'runner-1' },
    scope: { name: 'ci-audit-agent', version: '0', attributes: {} },
    timeUnixNano: 1_741_079_702_000_000_000n,
    observedTimeUnixNano: 1_741_079_703_000_000_000n,
    severityNumber: 0, severityText: '', body, attributes, droppedAttributesCount: 0, flags: 0, traceId: '', spanId: '', eventName: '',
  };
}

test('parsed ECS and CI/CD attributes land at their ECS paths; event.original keeps the whole line', () => {
  const mapped = mapToEcs(record({
    'ci_audit.dataset': 'auth', 'ci_audit.record.id': 'r1',
    message: 'Accepted password for a from 192.0.2.1 port 22 ssh2',
    'event.kind': 'event', 'event.action': 'ssh_login', 'event.category': ['authentication'], 'event.outcome': 'success',
    'user.name': 'a', 'user.effective.name': 'root', 'source.ip': '192.0.2.1', 'source.port': 22, 'process.pid': 1, 'process.name': 'sshd',
    'host.hostname': 'h', 'related.user': ['a'], 'related.ip': ['192.0.2.1'], 'system.auth.ssh.method': 'password',
    'cicd.pipeline.run.id': '42', 'vcs.ref.head.revision': 'abc', 'labels.team': 'ci', 'ci_audit.parse.status': 'parsed',
    'event.dataset': 'forged', 'custom.thing': 'x',
  }), { namespace: 'default', ingested: new Date(0) });
  const at = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], mapped.document);
  assert.equal(at('message'), 'Accepted password for a from 192.0.2.1 port 22 ssh2');
  assert.match(String(at('event.original')), /^Mar {2}4 09:15:02 h sshd/);
  assert.equal(at('event.action'), 'ssh_login');
  assert.equal(at('event.dataset'), 'ci_audit.auth', 'an attribute cannot overwrite the aggregator\'s own field');
  assert.deepEqual(at('user'), { name: 'a', effective: { name: 'root' } });
  assert.deepEqual(at('source'), { ip: '192.0.2.1', port: 22 });
  assert.deepEqual(at('host'), { name: 'runner-1', hostname: 'h' });
  assert.deepEqual(at('related'), { user: ['a'], ip: ['192.0.2.1'] });
  assert.equal(at('system.auth.ssh.method'), 'password');
  assert.equal(at('cicd.pipeline.run.id'), '42');
  assert.equal(at('vcs.ref.head.revision'), 'abc');
  assert.equal(at('labels.team'), 'ci');
  assert.equal(at('ci_audit.parse.status'), 'parsed');
  assert.equal((at('ci_audit.attributes') as Record<string, unknown>)['custom.thing'], 'x');
  assert.equal((at('ci_audit.attributes') as Record<string, unknown>)['event.dataset'], 'forged');
  assert.deepEqual(mapped.issues, []);
});

test('a value that does not fit its field type stays an attribute and is flagged', () => {
  const mapped = mapToEcs(record({ 'ci_audit.dataset': 'auth', 'ci_audit.record.id': 'r2', 'source.ip': 'not-an-ip', 'source.port': 'eighty' }), { namespace: 'default', ingested: new Date(0) });
  const at = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], mapped.document);
  assert.equal(at('source'), undefined);
  assert.equal((at('ci_audit.attributes') as Record<string, unknown>)['source.ip'], 'not-an-ip');
  assert.ok(mapped.issues.includes('ecs_field_invalid'));
});

test('a sender\'s key naming __proto__ stays a flat attribute and pollutes no prototype', () => {
  const mapped = mapToEcs(record({ 'ci_audit.dataset': 'auth', 'labels.__proto__.polluted': 'yes', 'cicd.constructor.prototype.x': 'y', ['__proto__']: 'scalar' }), { namespace: 'default', ingested: new Date(0) });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).x, undefined);
  const attributes = (mapped.document.ci_audit as Record<string, Record<string, unknown>>).attributes ?? {};
  assert.equal(attributes['labels.__proto__.polluted'], 'yes');
  assert.equal(attributes['cicd.constructor.prototype.x'], 'y');
  assert.ok(Object.hasOwn(attributes, '__proto__'));
  assert.equal(Object.getOwnPropertyDescriptor(attributes, '__proto__')?.value, 'scalar');
  assert.ok(mapped.issues.includes('ecs_field_invalid'));
  // And it survives the way to Elasticsearch: JSON text keeps the key.
  assert.match(JSON.stringify(mapped.document), /"labels\.__proto__\.polluted":"yes".*"__proto__":"scalar"/);
});

test('no ECS field lands on or runs through a field the mapping sets itself, but message and ci_audit.*', () => {
  // mapToEcs places these fields straight into the document after its own, where it merged them in
  // before; that gives the same document only as long as this holds (message replaces the body, and
  // ci_audit.* is merged in last). A field added to ecs-fields.ts that breaks it fails here.
  const maximal = mapToEcs({
    resource: {
      'host.name': 'h', 'service.name': 'ci-audit-agent', 'service.version': '1', 'ci_audit.agent.id': 'a', 'k8s.pod': 'p',
      ...Object.fromEntries(Object.values(wire.resourceDetectAttr).map((key) => [key, 'x'])),
    },
    scope: { name: 's', version: '1', attributes: { a: 1 } },
    timeUnixNano: 2n ** 63n, observedTimeUnixNano: 1_741_079_703_000_000_000n, severityNumber: 9, severityText: 'WARN', body: 'line',
    attributes: {
      'ci_audit.dataset': 'auth', 'ci_audit.record.id': 'r', 'log.file.path': '/var/log/auth.log', 'log.offset': 5,
      'ci_audit.chain.seq': 5, 'ci_audit.chain.hash': 'ab'.repeat(32), 'ci_audit.chain.prev_hash': 'cd'.repeat(32), 'custom.thing': 'x',
    },
    droppedAttributesCount: 1, flags: 1, traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), eventName: 'e',
  }, { namespace: 'default', ingested: new Date(0), chain: { canonical: '{}', verified: true } });
  const own = new Map<string, 'object' | 'value'>();
  const walk = (prefix: string, node: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(node)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
      own.set(path, isObject ? 'object' : 'value');
      if (isObject) walk(path, value as Record<string, unknown>);
    }
  };
  walk('', maximal.document);
  for (const path of ['@timestamp', 'event.original', 'log.file.path', 'host.os.type', 'agent.version', 'trace.id', 'span.id', 'data_stream.type']) assert.ok(own.has(path), path);

  const wireKeys = Object.values(wire).flatMap((group) => (typeof group === 'object' && !(group instanceof RegExp) ? Object.values(group) : []));
  const candidates = [...wireKeys, 'labels.team', 'labels.a.b', 'system.auth.x', 'cicd.x.y', 'vcs.x'];
  const placeable = candidates.filter((key) => placeEcsField(key, 'x', {}) !== undefined);
  assert.ok(placeable.includes('host.hostname') && placeable.includes('event.action') && placeable.includes('labels.a.b'));
  for (const key of placeable) {
    if (key === 'message' || key.startsWith('ci_audit.')) continue;
    assert.equal(own.get(key), undefined, `${key} is a field the mapping sets`);
    const parts = key.split('.');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('.');
      assert.notEqual(own.get(prefix), 'value', `${key} runs through ${prefix}, a value the mapping sets`);
    }
  }
});
