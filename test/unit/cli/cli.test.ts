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

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } });
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
