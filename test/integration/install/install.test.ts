// deploy/install.sh end to end, into a temporary root (DESTDIR): the real installer copies the app
// and its Node.js, writes the GitHub Actions preset, enrolls with a real aggregator, installs the
// hardened unit (checked by systemd-analyze) and the runner's job hooks. The installed agent then
// runs from there as its own account and ships a line to Elasticsearch; the jobs' account cannot
// read its key or write its state or configuration. Upgrade keeps state and chain; uninstall
// leaves only state and configuration, --purge nothing. Nothing outside the temporary root is
// changed: accounts are existing ones (daemon for the agent, nobody for the jobs), no systemctl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { cleanupNamespace, esClient, eventually, requireEsUrl, uniqueNamespace } from '../../helpers/elasticsearch.ts';
import { CliProcess } from '../../../scripts/lib/cli-process.ts';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const installer = join(repo, 'deploy/install.sh');
const bin = join(repo, 'bin/ci-audit.js');
const exec = promisify(execFile);

const agentUser = 'daemon';
const runnerUser = 'nobody';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(file, args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Runs a command as another (existing) account, as the runner runs the jobs. */
function asUser(user: string, command: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return sh('setpriv', [`--reuid=${user}`, `--regid=${user === 'nobody' ? 'nogroup' : user}`, '--init-groups', ...command], env);
}

async function install(root: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const result = await sh('bash', [installer, ...args, '--destdir', root], env);
  assert.equal(result.code, 0, `install.sh ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** Every path below `root`, relative, with a trailing / for folders. */
async function tree(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(`${relative(root, full)}/`, ...(await tree(root, full)));
    else out.push(relative(root, full));
  }
  return out.sort();
}

const modeOf = async (path: string): Promise<string> => ((await lstat(path)).mode & 0o7777).toString(8).padStart(4, '0');

void test('install.sh installs a hardened agent into a temporary root that ships to the aggregator; upgrade keeps state and chain; uninstall keeps only state and config', async (t) => {
  const esUrl = requireEsUrl();
  const es = esClient(esUrl);
  const namespace = uniqueNamespace('install_it');
  const dir = await mkdtemp(join(tmpdir(), 'cia-install-it-'));
  // The agent's and the jobs' accounts must reach into the root, as they would reach /.
  await chmod(dir, 0o755);
  const root = join(dir, 'root');
  t.after(async () => {
    try {
      await cleanupNamespace(es, namespace);
    } finally {
      await es.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  // A runner host: GitHub's runner folder with its log, and the host's auth log.
  const runnerDir = join(root, 'home/runner/actions-runner');
  await mkdir(join(runnerDir, '_diag'), { recursive: true });
  await writeFile(join(runnerDir, '.env'), 'LANG=C.UTF-8\n');
  await writeFile(join(runnerDir, '_diag/Runner_20261126-091500-utc.log'), '[2026-11-26 09:16:12Z INFO JobDispatcher] Job request 88213 received.\n');
  await mkdir(join(root, 'var/log'), { recursive: true });
  const marker = `install-it-${Date.now()}`;
  const authLine = `2026-11-26T09:12:01.482113+00:00 runner-01 sshd[2811]: Accepted publickey for ${marker} from 203.0.113.17 port 52144 ssh2`;
  await writeFile(join(root, 'var/log/auth.log'), `${authLine}\n`);
  // Readable through the agent's group, as adm makes /var/log/auth.log readable on Debian.
  await chown(join(root, 'var/log/auth.log'), 0, Number((await exec('id', ['-g', agentUser])).stdout.trim()));
  await chmod(join(root, 'var/log/auth.log'), 0o640);

  // An aggregator that requires enrolled agents, and a token for this one.
  const aggregatorYaml = join(dir, 'aggregator.yaml');
  await writeFile(aggregatorYaml, [
    'listen: { host: 127.0.0.1, port: 0 }',
    `auth: { mode: token, registry_file: ${join(dir, 'registry/agents.json')} }`,
    `elasticsearch: { namespace: ${namespace} }`,
    'retention: { enforce: false }',
    'log: { format: json }',
    '',
  ].join('\n'));
  const aggregatorProcess = new CliProcess(['aggregator', 'run', '--config', aggregatorYaml], { ES_URL: esUrl });
  t.after(() => aggregatorProcess.stop());
  const aggregator = { url: String((await aggregatorProcess.waitForLog((l) => l.msg === 'receiver listening')).url) };
  const token = (await exec(process.execPath, [bin, 'aggregator', 'enrollment-token', '-c', aggregatorYaml, '--uses', '1'])).stdout.trim();
  assert.match(token, /^cia_enroll_/);

  const agentId = `it-install-${Date.now()}`;
  const installArgs = [
    'install', '--preset', 'github-actions', '--aggregator-url', aggregator.url, '--agent-id', agentId,
    '--agent-user', agentUser, '--runner-user', runnerUser, '--runner-dir', '/home/runner/actions-runner', '--http-port', '0', '--no-start',
  ];

  // A dry run changes nothing.
  const dry = join(dir, 'dry');
  const dryRun = await sh('bash', [installer, ...installArgs, '--destdir', dry, '--dry-run']);
  assert.equal(dryRun.code, 0, dryRun.stderr);
  assert.match(dryRun.stdout, /would write \/etc\/ci-audit\/agent\.yaml/);
  await assert.rejects(stat(dry), { code: 'ENOENT' });

  const first = await install(root, installArgs, { CI_AUDIT_ENROLLMENT_TOKEN: token });
  assert.doesNotMatch(first.stdout + first.stderr, new RegExp(token), 'the enrollment token is never printed');
  assert.match(first.stdout, /skipped \(DESTDIR\): systemctl|not started \(--no-start\)/);

  // Ownership and modes, as set on disk and as recorded for the real accounts.
  const manifestText = await readFile(join(root, 'opt/ci-audit/install-manifest.tsv'), 'utf8');
  const manifest = new Map(manifestText.trim().split('\n').slice(1).map((line) => {
    const [kind, path, mode, owner, group] = line.split('\t');
    return [path!, { kind, mode, owner, group }];
  }));
  const expectations: [string, string, string, string][] = [
    ['/etc/ci-audit', '0750', 'root', agentUser],
    ['/etc/ci-audit/agent.yaml', '0640', 'root', agentUser],
    ['/var/lib/ci-audit', '0711', agentUser, agentUser],
    ['/var/lib/ci-audit/job-hooks', '1733', agentUser, agentUser],
    ['/var/lib/ci-audit/credentials.json', '0600', agentUser, agentUser],
    ['/var/lib/ci-audit/signing-key.pem', '0600', agentUser, agentUser],
    ['/etc/systemd/system/ci-audit-agent.service', '0644', 'root', 'root'],
    ['/opt/ci-audit/bin/ci-audit', '0755', 'root', 'root'],
  ];
  for (const [path, mode, owner, group] of expectations) {
    assert.deepEqual(manifest.get(path), { kind: manifest.get(path)?.kind, mode, owner, group }, `manifest entry of ${path}`);
    assert.equal(await modeOf(join(root, path)), mode, `mode of ${path}`);
  }
  const uidOf = async (user: string): Promise<number> => Number((await exec('id', ['-u', user])).stdout.trim());
  assert.equal((await stat(join(root, 'var/lib/ci-audit/credentials.json'))).uid, await uidOf(agentUser), 'enrolled as the agent\'s account');

  // The preset: the runner's logs below the root, the jobs' account trusted for hooks, http on.
  const agentYaml = join(root, 'etc/ci-audit/agent.yaml');
  const config = await readFile(agentYaml, 'utf8');
  assert.match(config, new RegExp(`id: ${agentId}`));
  assert.match(config, new RegExp(`trusted_uids: \\[${await uidOf(runnerUser)}\\]`));
  assert.match(config, /runner_type: github_actions/);
  assert.match(await readFile(join(runnerDir, '.env'), 'utf8'), /^LANG=C\.UTF-8\n# added by ci-audit install\nACTIONS_RUNNER_HOOK_JOB_STARTED=.*\/opt\/ci-audit\/hooks\/job-started\nACTIONS_RUNNER_HOOK_JOB_COMPLETED=.*\/opt\/ci-audit\/hooks\/job-completed\n$/);

  // systemd accepts the unit as installed (its ExecStart exists below the root).
  const unit = join(root, 'etc/systemd/system/ci-audit-agent.service');
  const verify = await sh('systemd-analyze', ['verify', unit]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify warned:\n${verify.stderr}`);
  const unitText = await readFile(unit, 'utf8');
  for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', `ReadWritePaths=${root}/var/lib/ci-audit`, 'Restart=on-failure', `User=${agentUser}`]) {
    assert.ok(unitText.split('\n').includes(line), `unit has ${line}`);
  }

  // Installing again changes nothing: same manifest, same config, same credential.
  const credential = await readFile(join(root, 'var/lib/ci-audit/credentials.json'), 'utf8');
  const again = await install(root, installArgs);
  assert.match(again.stdout, /already enrolled/);
  assert.equal(await readFile(join(root, 'opt/ci-audit/install-manifest.tsv'), 'utf8'), manifestText);
  assert.equal(await readFile(agentYaml, 'utf8'), config);
  assert.equal(await readFile(join(root, 'var/lib/ci-audit/credentials.json'), 'utf8'), credential);
  assert.equal((await readFile(join(runnerDir, '.env'), 'utf8')).match(/ACTIONS_RUNNER_HOOK_JOB_STARTED/g)?.length, 1);

  // The installed agent, started as its unit starts it: its account, umask 077, the installed wrapper.
  const wrapper = join(root, 'usr/bin/ci-audit');
  const agent = spawn('sh', ['-c', `umask 077; exec setpriv --reuid=${agentUser} --regid=${agentUser} --init-groups "$0" agent run --config "$1"`, wrapper, agentYaml], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const raw: string[] = [];
  createInterface({ input: agent.stderr }).on('line', (line) => {
    raw.push(line);
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  });
  await eventually(() => Promise.resolve(logs.some((l) => l.msg === 'agent started') || agent.exitCode !== null), 'the installed agent started');
  assert.equal(agent.exitCode, null, `the installed agent exited:\n${raw.join('\n')}`);
  const httpUrl = String(logs.find((l) => l.msg === 'agent http listening')?.url);

  await eventually(async () => {
    await es.indices.refresh({ index: `logs-ci_audit.*-${namespace}`, allow_no_indices: true });
    const found = await es.search({ index: `logs-ci_audit.auth-${namespace}`, query: { match_phrase: { message: marker } }, ignore_unavailable: true });
    return (found.hits.hits as { _source?: { agent?: { id?: string } } }[]).some((h) => h._source?.agent?.id === agentId);
  }, 'the auth line shipped by the installed agent is in Elasticsearch');

  // Health, metrics and status of the running agent.
  const health = await request(`${httpUrl}/healthz`);
  assert.equal(health.statusCode, 200);
  await health.body.dump();
  await eventually(async () => {
    const metrics = await (await request(`${httpUrl}/metrics`)).body.text();
    const acked = /^ci_audit_agent_acked_records (\d+)$/m.exec(metrics);
    return acked !== null && Number(acked[1]) >= 1 && /^ci_audit_agent_source_lag_bytes\{source="auth"\} 0$/m.test(metrics);
  }, 'metrics count the acknowledged records and no lag');
  // Status lists the checkpointed files: a checkpoint is written a moment (checkpoint_interval_ms)
  // after its lines were acknowledged, so the file may not be listed at the first ask.
  const checkpointed = new RegExp(`${root}/var/log/auth\\.log  offset ${authLine.length + 1} of ${authLine.length + 1}, lag 0`);
  let status: Result = { code: -1, stdout: '', stderr: '' };
  await eventually(async () => {
    status = await sh(wrapper, ['status', '--config', agentYaml, '--url', httpUrl, '--require-running']);
    return status.code !== 0 || checkpointed.test(status.stdout);
  }, 'status lists the auth log at its end');
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /running: pid \d+/);
  assert.match(status.stdout, /last acknowledgement: \d{4}-/);
  assert.match(status.stdout, checkpointed);

  // The jobs' account: the hook works, the agent's secrets and state do not.
  const hook = await asUser(runnerUser, [join(root, 'opt/ci-audit/hooks/job-started')], { GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'build', RUNNER_NAME: 'runner-01' });
  assert.equal(hook.code, 0, hook.stderr);
  assert.doesNotMatch(hook.stderr, /warning/, 'the job hook could write into the spool');
  const stateFiles = (await tree(join(root, 'var/lib/ci-audit'))).filter((p) => !p.startsWith('job-hooks'));
  assert.ok(stateFiles.includes('checkpoints/') || stateFiles.some((p) => p.startsWith('checkpoints')), `checkpoints exist: ${stateFiles.join(', ')}`);
  assert.ok(stateFiles.includes('signing-key.pem'), `the agent's signing key exists: ${stateFiles.join(', ')}`);
  assert.equal(await modeOf(join(root, 'var/lib/ci-audit/signing-key.pem')), '0600');
  for (const path of stateFiles) {
    const full = join(root, 'var/lib/ci-audit', path);
    if (path.endsWith('/')) {
      assert.notEqual((await asUser(runnerUser, ['ls', full])).code, 0, `the jobs' account lists ${path}`);
      assert.notEqual((await asUser(runnerUser, ['touch', join(full, 'planted')])).code, 0, `the jobs' account writes into ${path}`);
    } else {
      assert.notEqual((await asUser(runnerUser, ['cat', full])).code, 0, `the jobs' account reads ${path}`);
      assert.notEqual((await asUser(runnerUser, ['sh', '-c', 'echo x >> "$0"', full])).code, 0, `the jobs' account writes ${path}`);
    }
  }
  for (const path of ['var/lib/ci-audit/planted', 'etc/ci-audit/planted', 'opt/ci-audit/app/planted']) {
    assert.notEqual((await asUser(runnerUser, ['touch', join(root, path)])).code, 0, `the jobs' account creates ${path}`);
  }
  assert.notEqual((await asUser(runnerUser, ['cat', agentYaml])).code, 0, 'the jobs\' account reads the config');
  assert.notEqual((await asUser(runnerUser, ['ls', join(root, 'var/lib/ci-audit')])).code, 0, 'the jobs\' account lists the state folder');

  agent.kill('SIGTERM');
  assert.equal(await exited, 0, raw.slice(-20).join('\n'));

  // Upgrade: app replaced, configuration, state and chain untouched.
  const stateBefore = new Map<string, string>();
  for (const name of ['chain.json', 'signing-key.pem', 'credentials.json']) {
    const text = await readFile(join(root, 'var/lib/ci-audit', name), 'utf8').catch(() => undefined);
    if (text !== undefined) stateBefore.set(name, text);
  }
  assert.ok(stateBefore.has('credentials.json') && stateBefore.has('signing-key.pem') && stateBefore.has('chain.json'), [...stateBefore.keys()].join(', '));
  const upgrade = await install(root, ['upgrade', '--agent-user', agentUser, '--no-start']);
  assert.match(upgrade.stdout, /upgrade: /);
  for (const [name, text] of stateBefore) assert.equal(await readFile(join(root, 'var/lib/ci-audit', name), 'utf8'), text, `${name} kept by upgrade`);
  assert.equal(await readFile(agentYaml, 'utf8'), config);
  assert.equal((await sh(wrapper, ['--version'])).code, 0);

  // Uninstall: what remains is the state and the configuration, and the runner's own files.
  await install(root, ['uninstall', '--runner-dir', '/home/runner/actions-runner']);
  const left = (await tree(root)).filter((p) => !p.endsWith('/'));
  const allowed = (p: string): boolean => p.startsWith('var/lib/ci-audit/') || p.startsWith('etc/ci-audit/') || p.startsWith('var/log/') || p.startsWith('home/runner/');
  assert.deepEqual(left.filter((p) => !allowed(p)), [], 'nothing else is left');
  assert.ok(left.includes('var/lib/ci-audit/credentials.json') && left.includes('etc/ci-audit/agent.yaml'));
  assert.equal(await readFile(join(runnerDir, '.env'), 'utf8'), 'LANG=C.UTF-8\n', 'the runner\'s .env is as it was');

  // Purge: state and configuration go too.
  await install(root, installArgs, { CI_AUDIT_ENROLLMENT_TOKEN: '' });
  await install(root, ['uninstall', '--purge']);
  assert.deepEqual((await tree(root)).filter((p) => !p.endsWith('/') && !p.startsWith('var/log/') && !p.startsWith('home/runner/')), []);
});

void test('install.sh puts the job hooks where the runner reads them (Buildkite) and prints the line where it does not (GitLab, Jenkins)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-install-hooks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const root = join(dir, 'root');
  const hooks = join(root, 'etc/buildkite-agent/hooks');
  await mkdir(hooks, { recursive: true });
  // The operator's own post-command hook stays as it is.
  await writeFile(join(hooks, 'post-command'), '#!/bin/sh\necho own hook\n');
  const common = ['--aggregator-url', 'http://127.0.0.1:4318', '--agent-user', agentUser, '--runner-user', runnerUser, '--no-start'];
  // A CA for an http:// aggregator would never be checked: refused before anything is installed.
  const refused = await sh('bash', [installer, 'install', '--preset', 'buildkite', ...common, '--ca-file', join(dir, 'ca.pem'), '--destdir', root]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr + refused.stdout, /--ca-file needs an https:\/\/ --aggregator-url/);
  assert.equal((await readdir(hooks)).includes('pre-command'), false, 'nothing linked');
  const buildkite = await install(root, ['install', '--preset', 'buildkite', ...common]);
  assert.match(buildkite.stdout, /add to \/etc\/buildkite-agent\/hooks\/post-command: .*\/opt\/ci-audit\/hooks\/job-completed/);
  assert.equal((await lstat(join(hooks, 'pre-command'))).isSymbolicLink(), true);
  assert.equal(await readFile(join(hooks, 'pre-command'), 'utf8'), await readFile(join(root, 'opt/ci-audit/hooks/job-started'), 'utf8'));
  assert.equal(await readFile(join(hooks, 'post-command'), 'utf8'), '#!/bin/sh\necho own hook\n');
  assert.match(await readFile(join(root, 'etc/ci-audit/agent.yaml'), 'utf8'), /units: \[buildkite-agent\.service\]/);
  // An upgrade finds the hook link in place: it stays in the manifest, so uninstall still removes it.
  await install(root, ['upgrade', '--agent-user', agentUser, '--no-start']);
  assert.match(await readFile(join(root, 'opt/ci-audit/install-manifest.tsv'), 'utf8'), /^hook\t\/etc\/buildkite-agent\/hooks\/pre-command\t/m);
  await install(root, ['uninstall', '--purge']);
  assert.deepEqual(await readdir(hooks), ['post-command'], 'uninstall removed the hook it linked, and only that');

  const gitlab = await install(root, ['install', '--preset', 'gitlab', ...common]);
  assert.match(gitlab.stdout, /pre_build_script = ".*ci-audit hook job-started" and post_build_script = ".*ci-audit hook job-completed --result \$CI_JOB_STATUS"/);
  await install(root, ['uninstall', '--purge']);
  const jenkins = await install(root, ['install', '--preset', 'jenkins', ...common]);
  assert.match(jenkins.stdout, /sh '.*ci-audit hook job-started'/);
  await install(root, ['uninstall', '--purge']);
});
