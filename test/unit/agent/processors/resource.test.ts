// The agent's Resource detectors on real file contents (os-release of Ubuntu, Rocky, Alpine), and
// the aggregator placing them at ECS host.* / host.os.*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentResource, hostArch, machineId, osAttributes } from '../../../../agent/resource.ts';
import { semconvSchemaUrl } from '../../../../core/wire.ts';

const ubuntu = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
ID=ubuntu
`;
const rocky = `NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
VERSION_ID="9.4"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
`;
const alpine = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
`;

test('os.* from os-release of three distributions', () => {
  assert.deepEqual(osAttributes(ubuntu), { 'os.name': 'Ubuntu', 'os.version': '24.04', 'os.description': 'Ubuntu 24.04.1 LTS' });
  assert.deepEqual(osAttributes(rocky), { 'os.name': 'Rocky Linux', 'os.version': '9.4', 'os.description': 'Rocky Linux 9.4 (Blue Onyx)' });
  assert.deepEqual(osAttributes(alpine), { 'os.name': 'Alpine Linux', 'os.version': '3.20.3', 'os.description': 'Alpine Linux v3.20' });
  assert.deepEqual(osAttributes(undefined), {});
});

test('host.id only from a real machine id; host.arch in the conventions\' words', () => {
  assert.equal(machineId('4c4c4544004b3510804cb4c04f4e4a32\n'), '4c4c4544004b3510804cb4c04f4e4a32');
  assert.equal(machineId('uninitialized\n'), undefined);
  assert.equal(machineId(''), undefined);
  assert.equal(hostArch('x64'), 'amd64');
  assert.equal(hostArch('arm64'), 'arm64');
});

test('the Resource: detectors, runner type, labels and the semantic conventions schema URL', () => {
  const r = agentResource({ agentId: 'a1', hostName: 'runner-01', runnerType: 'gitlab', labels: { team: 'platform' }, machineId: '4c4c4544004b3510804cb4c04f4e4a32', osRelease: rocky });
  assert.equal(r.schemaUrl, semconvSchemaUrl);
  const a = r.attributes;
  assert.equal(a['host.name'], 'runner-01');
  assert.equal(a['host.id'], '4c4c4544004b3510804cb4c04f4e4a32');
  assert.equal(typeof a['host.arch'], 'string');
  assert.equal(a['os.type'], 'linux');
  assert.equal(a['os.description'], 'Rocky Linux 9.4 (Blue Onyx)');
  assert.equal(a['service.name'], 'ci-audit-agent');
  assert.equal(a['ci_audit.agent.id'], 'a1');
  assert.equal(a['ci_audit.runner.type'], 'gitlab');
  assert.equal(a['ci_audit.semconv.schema_url'], semconvSchemaUrl);
  assert.equal(a['labels.team'], 'platform');
  const bare = agentResource({ agentId: 'a1', hostName: 'h', machineId: undefined, osRelease: undefined });
  assert.equal(bare.attributes['host.id'], undefined);
  assert.equal(bare.attributes['os.name'], undefined);
});

test('the aggregator places the detected resource at ECS host.* and host.os.*', async () => {
  const { mapToEcs } = await import('../../../../aggregator/map/ecs.ts');
  const r = agentResource({ agentId: 'a1', hostName: 'runner-01', machineId: '4c4c4544004b3510804cb4c04f4e4a32', osRelease: ubuntu });
  const mapped = mapToEcs(
    {
      resource: r.attributes as Record<string, string>,
      scope: { name: '', version: '', attributes: {} },
      timeUnixNano: 1_795_688_521_482_113_789n,
      observedTimeUnixNano: 0n,
      severityNumber: 0,
      severityText: '',
      body: 'a line',
      attributes: { 'ci_audit.dataset': 'auth', 'ci_audit.record.id': '1' },
      droppedAttributesCount: 0,
      flags: 0,
      traceId: '',
      spanId: '',
      eventName: '',
    },
    { namespace: 'default', ingested: new Date() },
  );
  const host = mapped.document.host as Record<string, unknown>;
  assert.equal(host.name, 'runner-01');
  assert.equal(host.id, '4c4c4544004b3510804cb4c04f4e4a32');
  assert.equal(typeof host.architecture, 'string');
  assert.deepEqual(host.os, { type: 'linux', name: 'Ubuntu', version: '24.04', full: 'Ubuntu 24.04.1 LTS' });
});
