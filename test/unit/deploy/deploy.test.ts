// The deployment files, checked with what runs offline here: the systemd units with
// systemd-analyze verify, the Dockerfiles with dockerfile-utils, the Kubernetes manifests against
// the Kubernetes schemas (kubernetes-models), the compose file with dclint; and the invariants
// each must keep (non-root, read-only mounts, health checks, resource limits, hardening).
// The agent presets, rendered by the installer itself, must pass the agent's configuration schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { validate as validateDockerfile } from 'dockerfile-utils';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { loadAgentConfig, loadAggregatorConfig } from '../../../config/loader.ts';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const exec = promisify(execFile);

async function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(file, args);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cia-deploy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------- systemd

/** systemd-analyze verify of a unit whose ExecStart points at an executable that exists. */
async function verifyUnit(dir: string, name: string, text: string): Promise<{ code: number; stderr: string }> {
  const exe = join(dir, 'ci-audit');
  await writeFile(exe, '#!/bin/sh\nexit 0\n');
  await chmod(exe, 0o755);
  const unit = join(dir, name);
  await writeFile(unit, text.replaceAll('/opt/ci-audit/bin/ci-audit', exe));
  const result = await run('systemd-analyze', ['verify', unit]);
  return { code: result.code, stderr: result.stderr.trim() };
}

for (const name of ['ci-audit-agent.service', 'ci-audit-aggregator.service']) {
  test(`${name} passes systemd-analyze verify without a warning`, async (t) => {
    const dir = await tempDir(t);
    const text = await readFile(join(repo, 'deploy/systemd', name), 'utf8');
    assert.deepEqual(await verifyUnit(dir, name, text), { code: 0, stderr: '' });
  });
}

test('systemd-analyze verify, as used here, fails a unit with a bad value or an unknown key', async (t) => {
  const dir = await tempDir(t);
  const text = await readFile(join(repo, 'deploy/systemd/ci-audit-agent.service'), 'utf8');
  const badValue = await verifyUnit(dir, 'bad-value.service', text.replace('ProtectSystem=strict', 'ProtectSystem=sometimes'));
  assert.notDeepEqual(badValue, { code: 0, stderr: '' });
  assert.match(badValue.stderr, /protect system value/);
  const unknownKey = await verifyUnit(dir, 'unknown-key.service', text.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  assert.match(unknownKey.stderr, /Unknown key/);
  const noExec = await verifyUnit(dir, 'no-exec.service', text.replace('/opt/ci-audit/bin/ci-audit', '/nonexistent/ci-audit'));
  assert.notEqual(noExec.code, 0);
});

test('the units are hardened: no new privileges, read-only system, writable state only, restart on failure, no capabilities', async () => {
  for (const [name, state] of [['ci-audit-agent.service', '/var/lib/ci-audit'], ['ci-audit-aggregator.service', '/var/lib/ci-audit-aggregator']] as const) {
    const lines = (await readFile(join(repo, 'deploy/systemd', name), 'utf8')).split('\n');
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', `ReadWritePaths=${state}`, 'Restart=on-failure', 'CapabilityBoundingSet=', 'PrivateTmp=yes', 'UMask=0077']) {
      assert.ok(lines.includes(line), `${name}: ${line}`);
    }
    assert.equal(lines.filter((l) => l.startsWith('ReadWritePaths=')).length, 1, `${name}: one writable path`);
    assert.ok(lines.some((l) => /^User=(?!root$)\S+$/.test(l)), `${name}: runs as its own user`);
  }
});

// ---------------------------------------------------------------------------------- Dockerfiles

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions of a Dockerfile (continuation lines joined, comments dropped). */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

for (const name of ['Dockerfile.agent', 'Dockerfile.aggregator']) {
  test(`${name}: dockerfile-utils finds nothing; the final stage runs as a non-root user with a health check`, async () => {
    const text = await readFile(join(repo, 'deploy/container', name), 'utf8');
    assert.deepEqual(validateDockerfile(text).map((d) => `${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`), []);
    const all = instructions(text);
    const finalStage = all.slice(all.map((i) => i.keyword).lastIndexOf('FROM'));
    assert.match(finalStage[0]!.args, /^node:24[-.\w]*$/, 'a pinned Node.js 24 base image');
    const users = finalStage.filter((i) => i.keyword === 'USER');
    assert.equal(users.length, 1);
    assert.match(users[0]!.args, /^[1-9][0-9]*(:[1-9][0-9]*)?$/, 'USER is a numeric non-root uid (runAsNonRoot can check it)');
    const health = finalStage.filter((i) => i.keyword === 'HEALTHCHECK');
    assert.equal(health.length, 1);
    assert.match(health[0]!.args, /\/healthz/);
    // Every file the image copies exists in the repository.
    for (const copy of finalStage.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) await readFile(join(repo, source)).catch(async () => readdir(join(repo, source)));
    }
  });
}

test('dockerfile-utils reports a broken Dockerfile (the check can fail)', () => {
  assert.notDeepEqual(validateDockerfile('FROM node:24\nHEALTHCHECK --interval=abc CMD true\nEXPOSE notaport\n'), []);
});

test('the aggregator image\'s default configuration is valid', async () => {
  const { config } = await loadAggregatorConfig(join(repo, 'deploy/container/aggregator.yaml'), {});
  assert.equal(config.listen.port, 4318);
  assert.equal(config.auth.mode, 'token');
  const compose = await loadAggregatorConfig(join(repo, 'deploy/compose/aggregator.yaml'), {});
  assert.equal(compose.config.listen.host, '0.0.0.0');
});

// --------------------------------------------------------------------------------- Kubernetes

const kinds: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
};

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { template?: { spec: PodSpec } };
}
interface Container {
  name: string;
  image: string;
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[]; add?: string[] }; runAsUser?: number };
  resources?: { limits?: { cpu?: string; memory?: string }; requests?: unknown };
  livenessProbe?: unknown;
  readinessProbe?: unknown;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string } }[];
}

async function manifests(): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const file of await readdir(join(repo, 'deploy/kubernetes'))) {
    for (const doc of parseAllDocuments(await readFile(join(repo, 'deploy/kubernetes', file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      out.push(doc.toJS() as Manifest);
    }
  }
  return out;
}

test('every Kubernetes manifest validates against the Kubernetes schema of its kind', async () => {
  const all = await manifests();
  assert.deepEqual(all.map((m) => m.kind).sort(), ['ConfigMap', 'ConfigMap', 'DaemonSet', 'Deployment', 'Namespace', 'PersistentVolumeClaim', 'Service']);
  for (const m of all) {
    const Model = kinds[`${m.apiVersion}/${m.kind}`];
    assert.ok(Model !== undefined, `known kind ${m.apiVersion}/${m.kind}`);
    assert.doesNotThrow(() => new Model(m as never).validate(), `${m.kind} ${m.metadata.name}`);
    if (m.kind !== 'Namespace') assert.equal(m.metadata.namespace, 'ci-audit');
  }
  // The validation can fail: a container without an image name of the right type.
  assert.throws(() => new DaemonSet({ metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'a', image: 5 }] } } } } as never).validate());
});

test('pods run as non-root with limits, probes and read-only root filesystems; host logs are mounted read-only', async () => {
  const workloads = (await manifests()).filter((m) => m.kind === 'DaemonSet' || m.kind === 'Deployment');
  for (const w of workloads) {
    const pod = w.spec!.template!.spec;
    assert.equal(pod.securityContext?.runAsNonRoot, true, `${w.kind}: runAsNonRoot`);
    assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${w.kind}: a non-root uid`);
    for (const c of pod.containers) {
      assert.ok(c.livenessProbe !== undefined && c.readinessProbe !== undefined, `${c.name}: probes`);
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${c.name}: read-only root`);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${c.name}: drops all capabilities`);
      assert.ok(c.resources?.limits?.cpu !== undefined && c.resources.limits.memory !== undefined, `${c.name}: limits`);
      if (c.securityContext?.runAsUser === 0) {
        assert.deepEqual(c.securityContext.capabilities?.add, ['CHOWN', 'FOWNER'], `${c.name}: root only to chown the state folder`);
      }
    }
    const hostPaths = new Map((pod.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => [v.name, v.hostPath!.path]));
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const mount of c.volumeMounts ?? []) {
        const host = hostPaths.get(mount.name);
        if (host === undefined || host === '/var/lib/ci-audit') continue;
        assert.equal(mount.readOnly, true, `${c.name}: host path ${host} is mounted read-only`);
      }
    }
  }
});

test('the configurations in the Kubernetes ConfigMaps are valid', async (t) => {
  const dir = await tempDir(t);
  const maps = (await manifests()).filter((m) => m.kind === 'ConfigMap');
  const agent = maps.find((m) => m.metadata.name === 'ci-audit-agent')!.data!['agent.yaml']!;
  await writeFile(join(dir, 'agent.yaml'), agent);
  const { config } = await loadAgentConfig(join(dir, 'agent.yaml'), { NODE_NAME: 'node-1' });
  assert.equal(config.agent.id, 'node-1');
  assert.equal(config.http?.listen, '0.0.0.0:8318');
  const aggregator = maps.find((m) => m.metadata.name === 'ci-audit-aggregator')!.data!['aggregator.yaml']!;
  await writeFile(join(dir, 'aggregator.yaml'), aggregator);
  assert.equal((await loadAggregatorConfig(join(dir, 'aggregator.yaml'), {})).config.listen.port, 4318);
});

// ------------------------------------------------------------------------------------ compose

test('the compose file passes dclint and runs the aggregator read-only as a non-root user', async () => {
  const file = join(repo, 'deploy/compose/compose.yaml');
  const lint = await run(join(repo, 'node_modules/.bin/dclint'), [file]);
  assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  const compose = parse(await readFile(file, 'utf8')) as { services: Record<string, { user?: string; read_only?: boolean; healthcheck?: unknown; build?: unknown; ports?: string[] }> };
  assert.deepEqual(Object.keys(compose.services).sort(), ['aggregator', 'elasticsearch', 'kibana', 'kibana-password']);
  const aggregator = compose.services.aggregator!;
  assert.match(aggregator.user ?? '', /^[1-9][0-9]*:[1-9][0-9]*$/);
  assert.equal(aggregator.read_only, true);
  for (const name of ['elasticsearch', 'kibana']) assert.ok(compose.services[name]!.healthcheck !== undefined, `${name}: health check`);
  for (const service of Object.values(compose.services)) for (const port of service.ports ?? []) assert.match(port, /^127\.0\.0\.1:/, 'ports only on loopback');
});

test('dclint reports a broken compose file (the check can fail)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'compose.yaml'), 'services:\n  a:\n    image: x\n    build: .\n    ports: [notaport]\n');
  assert.notEqual((await run(join(repo, 'node_modules/.bin/dclint'), [join(dir, 'compose.yaml')])).code, 0);
});

// ------------------------------------------------------------------------------------- presets

const presets = ['generic', 'github-actions', 'gitlab', 'jenkins', 'buildkite'] as const;

for (const preset of presets) {
  test(`the ${preset} preset, as the installer renders it, is a valid agent configuration`, async (t) => {
    const dir = await tempDir(t);
    const rendered = await run('bash', [join(repo, 'deploy/install.sh'), 'render-config', '--preset', preset, '--aggregator-url', 'https://aggregator.example:4318', '--agent-id', 'runner-7', '--runner-uid', '1001', '--ca-file', '/tmp/ca.pem']);
    assert.equal(rendered.code, 0, rendered.stderr);
    assert.doesNotMatch(rendered.stdout, /@[A-Z_]+@/, 'every placeholder filled');
    await writeFile(join(dir, 'agent.yaml'), rendered.stdout);
    const { config } = await loadAgentConfig(join(dir, 'agent.yaml'), {});
    assert.equal(config.agent.id, 'runner-7');
    assert.equal(config.agent.state_dir, '/var/lib/ci-audit');
    assert.equal(config.output.url, 'https://aggregator.example:4318');
    assert.equal(config.output.tls?.ca_file, '/etc/ci-audit/aggregator-ca.pem');
    assert.equal(config.http?.listen, '127.0.0.1:8318');
    assert.ok(config.sources.some((s) => s.id === 'auth' && s.dataset === 'auth'), 'host authentication is always read');
    if (preset !== 'generic') {
      assert.deepEqual(config.job_hooks?.trusted_uids, [1001]);
      assert.equal(config.job_hooks?.spool_dir, '/var/lib/ci-audit/job-hooks');
      assert.equal(config.agent.runner_type, preset === 'github-actions' ? 'github_actions' : preset);
      assert.ok(config.sources.some((s) => s.dataset === 'ci'), 'the runner\'s own log is read');
    }
  });
}

test('the installer refuses an unknown preset and the jobs running as the agent\'s account', async () => {
  const unknown = await run('bash', [join(repo, 'deploy/install.sh'), 'render-config', '--preset', 'travis', '--aggregator-url', 'http://a:4318']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /unknown preset travis \(presets: .*github-actions/);
  const same = await run('bash', [join(repo, 'deploy/install.sh'), 'install', '--destdir', join(tmpdir(), 'cia-never-created'), '--dry-run', '--aggregator-url', 'http://a:4318', '--preset', 'generic', '--runner-user', 'daemon', '--agent-user', 'daemon']);
  assert.notEqual(same.code, 0);
  assert.match(same.stderr, /must not run as root or as the agent's account/);
});

test('install.sh is valid bash', async () => {
  const result = await run('bash', ['-n', join(repo, 'deploy/install.sh')]);
  assert.equal(result.code, 0, result.stderr);
});
