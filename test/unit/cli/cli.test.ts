import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../../cli/main.ts';

const bin = fileURLToPath(new URL('../../../bin/ci-audit.js', import.meta.url));

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function allCommands(cmd: Command, path: string[] = []): string[][] {
  return [path, ...cmd.commands.flatMap((c) => allCommands(c, [...path, c.name()]))];
}

test('every command and subcommand answers --help with exit code 0', () => {
  const paths = allCommands(buildProgram());
  assert.ok(paths.some((p) => p.join(' ') === 'agent run'));
  assert.ok(paths.some((p) => p.join(' ') === 'aggregator run'));
  for (const path of paths) {
    const r = run([...path, '--help']);
    assert.equal(r.status, 0, `${path.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: ci-audit/m, path.join(' '));
  }
});

test('--version prints the package version', () => {
  const r = run(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+/);
});

test('usage errors exit with 64 and say what is wrong', () => {
  const r = run(['agent', 'run']);
  assert.equal(r.status, 64);
  assert.match(r.stderr, /required option '-c, --config <file>' not specified/);
  assert.equal(run(['no-such-command']).status, 64);
});

test('a missing config file exits with 78 and names the file', () => {
  const r = run(['agent', 'run', '--config', '/nonexistent/agent.yaml']);
  assert.equal(r.status, 78);
  assert.match(r.stderr, /CIA_ERR_CONFIG_NOT_FOUND: cannot read configuration file \/nonexistent\/agent\.yaml/);
});

test('an invalid aggregator config exits with 78 and names file, line and option', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'aggregator.yaml');
  await writeFile(file, 'listen:\n  port: seventy\n');
  const r = run(['aggregator', 'run', '--config', file]);
  assert.equal(r.status, 78);
  assert.match(r.stderr, new RegExp(`CIA_ERR_CONFIG_INVALID: invalid configuration:\\n  ${file}:2:3: listen\\.port: `));
});

test('a bad option value found by a command exits with 64 and names the option', () => {
  const r = run(['logins', '--since', 'yesterdayish']);
  assert.equal(r.status, 64);
  assert.match(r.stderr, /CIA_ERR_CLI_USAGE: .*--since/);
});

test('bad URLs and a missing key file exit with their code and a message, never a stack trace or the value', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cia-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const agent = join(dir, 'agent.yaml');
  await writeFile(agent, `agent: { id: runner-01, state_dir: ${dir}/state }\nsources: [{ type: file, id: f, include: [${dir}/*.log], dataset: ci }]\noutput: { url: 'http://127.0.0.1:1' }\n`);
  const aggregator = join(dir, 'aggregator.yaml');
  await writeFile(aggregator, 'elasticsearch:\n  url: http://elastic:50%off@127.0.0.1:1\n');
  const enrollEnv = { CI_AUDIT_ENROLLMENT_TOKEN: 'cia_enroll_x' };
  const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
    [['agent', 'enroll', '-c', agent, '--url', 'not a url'], enrollEnv, 64, /^ci-audit: CIA_ERR_CLI_USAGE: --url: expected an http:\/\/ or https:\/\/ URL/],
    [['agent', 'enroll', '-c', agent, '--public-key-file', join(dir, 'nonexistent.pem')], enrollEnv, 64, /^ci-audit: CIA_ERR_CLI_USAGE: --public-key-file \S+nonexistent\.pem: cannot read it: no such file/],
    [['search', 'x'], { ES_URL: 'not a url' }, 78, /^ci-audit: CIA_ERR_CONFIG_INVALID: environment variable ES_URL: an http:\/\/ or https:\/\/ URL/],
    [['search', 'x'], { ES_URL: 'ftp://127.0.0.1:9200' }, 78, /^ci-audit: CIA_ERR_CONFIG_INVALID: environment variable ES_URL: an http:\/\/ or https:\/\/ URL/],
    [['search', 'x', '-c', aggregator], { ES_URL: '' }, 78, /^ci-audit: CIA_ERR_CONFIG_INVALID: invalid configuration:\n {2}\S+:2:3: elasticsearch\.url: a URL whose user name and password are percent-encoded/],
  ];
  for (const [args, env, status, message] of cases) {
    const r = run(args, env);
    const what = `${args.join(' ')} ${JSON.stringify(env)}`;
    assert.equal(r.status, status, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, what);
    assert.doesNotMatch(r.stderr, /unexpected error|\n\s+at /, `${what}: no stack trace`);
    assert.doesNotMatch(r.stderr, /not a url|50%off/, `${what}: the value is not repeated`);
  }
});
