// More fault scenarios of the file source with the real agent process: rotation faster than the
// agent reads, truncation and pruning while it was stopped, a kill during a checkpoint write,
// over-long and binary input, and a file the agent may not read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { checkpointPath, readCheckpoints } from '../../../agent/sources/file/checkpoint.ts';
import { recordAttr } from '../../../core/wire.ts';
import { assertExactlyOnceAfterDedup, logged, numberedLine, sigterm, spawnAgent, startReceiver, until, writeAgentConfig } from './harness.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-faults-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(`${dir}/logs`);
  return dir;
}

function lines(prefix: string, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => numberedLine(prefix, from + i, 120));
}

void test('rotation faster than the agent reads, while downstream is blocked: every line of every rotated file is delivered', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  receiver.blocked = true;
  // Rotated names match include (logrotate's app.log.1, .2, ...), so a file rotated before the agent
  // even saw it under its first name is still read, and its identity keeps it from being read twice.
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/app.log*`], receiverUrl: receiver.url });
  const agent = spawnAgent(t, config);
  const expected: string[] = [];
  const log = `${dir}/logs/app.log`;
  for (let r = 0; r < 5; r++) {
    const batch = lines(`rot${r}`, 0, 3000);
    expected.push(...batch);
    writeFileSync(log, batch.join('\n') + '\n');
    // Shift app.log.N -> app.log.N+1, then app.log -> app.log.1, with no pause in between.
    for (let n = r; n >= 1; n--) renameSync(`${log}.${n}`, `${log}.${n + 1}`);
    renameSync(log, `${log}.1`);
  }
  const last = lines('current', 0, 100);
  expected.push(...last);
  writeFileSync(log, last.join('\n') + '\n');
  await new Promise((r) => setTimeout(r, 500));
  receiver.blocked = false;
  await until(() => receiver.bodies().size >= expected.length, 60_000, 'every line of every rotated file');
  await sigterm(agent);
  assertExactlyOnceAfterDedup(receiver.records, expected);
});

void test('truncation while the agent was stopped: warned, and the new contents are read from the start', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/job.log`;
  const before = lines('before', 0, 1000);
  writeFileSync(log, before.join('\n') + '\n');
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= before.length, 30_000, 'the first contents');
  await sigterm(agent);
  // Shorter than the checkpoint: copytruncate, or `> job.log`, while the agent was down.
  truncateSync(log, 0);
  const after = lines('after', 0, 10);
  appendFileSync(log, after.join('\n') + '\n');
  agent = spawnAgent(t, config);
  await until(() => after.every((l) => receiver.bodies().has(l)), 30_000, 'the lines written after the truncation');
  await sigterm(agent);
  assert.equal(logged(agent, 'CIA_ERR_SOURCE_TRUNCATED').length, 1, agent.log.join('\n'));
  assertExactlyOnceAfterDedup(receiver.records, [...before, ...after]);
});

void test('rotated files pruned while the agent was down: a gap is reported, nothing else is lost, the stale checkpoint is collected for good', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/app.log*`], receiverUrl: receiver.url });
  const log = `${dir}/logs/app.log`;
  const first = lines('first', 0, 500);
  writeFileSync(log, first.join('\n') + '\n');
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= first.length, 30_000, 'the first lines');
  await sigterm(agent);
  const checkpointed = Buffer.byteLength(first.join('\n') + '\n');
  // While the agent is down: lines appended (never read), rotated, and the rotation pruned.
  appendFileSync(log, lines('lost', 0, 50).join('\n') + '\n');
  renameSync(log, `${log}.1`);
  const second = lines('second', 0, 300);
  writeFileSync(log, second.join('\n') + '\n');
  rmSync(`${log}.1`);

  agent = spawnAgent(t, config);
  await until(() => second.every((l) => receiver.bodies().has(l)), 30_000, 'the new file');
  await until(() => receiver.records.some((r) => r.attributes[recordAttr.gap] === true), 10_000, 'the gap record');
  await sigterm(agent);
  const gaps = receiver.records.filter((r) => r.attributes[recordAttr.gap] === true);
  assert.equal(new Set(gaps.map((g) => g.id)).size, 1);
  assert.equal(gaps[0]!.attributes[recordAttr.logFilePath], log);
  assert.equal(Number(gaps[0]!.attributes[recordAttr.logOffset]), checkpointed);
  assert.equal(logged(agent, 'CIA_ERR_SOURCE_GAP').length, 1);
  assertExactlyOnceAfterDedup(
    receiver.records.filter((r) => r.attributes[recordAttr.gap] !== true),
    [...first, ...second],
  );
  // Only the file that exists keeps a checkpoint, and a further restart reports no gap again.
  const saved = await readCheckpoints(checkpointPath(`${dir}/state`, 'logs'));
  assert.equal(saved.length, 1);
  assert.equal(saved[0]!.offset, Buffer.byteLength(second.join('\n') + '\n'));
  const gapsBefore = gaps.length;
  agent = spawnAgent(t, config);
  appendFileSync(log, 'one more\n');
  await until(() => receiver.bodies().has('one more'), 30_000, 'a line after the second restart');
  await sigterm(agent);
  assert.equal(receiver.records.filter((r) => r.attributes[recordAttr.gap] === true).length, gapsBefore);
  assert.equal(logged(agent, 'CIA_ERR_SOURCE_GAP').length, 0);
});

void test('killed in the middle of a checkpoint write (a stray temp file): the previous checkpoint is used, nothing starts over, nothing is lost', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/job.log`;
  const first = lines('first', 0, 1000);
  writeFileSync(log, first.join('\n') + '\n');
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= first.length, 30_000, 'the first lines');
  await sigterm(agent);
  // What a SIGKILL between the temp file's write and its rename leaves: a torn temp file beside the
  // intact checkpoint (the rename never happened, so the checkpoint is the previous one).
  const file = checkpointPath(`${dir}/state`, 'logs');
  const stray = `${file}.tmp-999999`;
  writeFileSync(stray, '{"version":2,"source":"logs","files":[{"dev":"1","ino');
  const received = receiver.records.length;
  const second = lines('second', 0, 200);
  appendFileSync(log, second.join('\n') + '\n');
  agent = spawnAgent(t, config);
  await until(() => second.every((l) => receiver.bodies().has(l)), 30_000, 'the lines after the restart');
  await sigterm(agent);
  // Resumed at the checkpoint: not one line of the first run was sent again.
  assert.equal(receiver.records.length - received, second.length);
  assert.equal(existsSync(stray), false, 'the stray temp file is removed');
  assertExactlyOnceAfterDedup(receiver.records, [...first, ...second]);
});

void test('an over-long line, then a restart: fragments are flagged, nothing is doubled, offsets stay right', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url, source: { max_line_bytes: 1024 } });
  const log = `${dir}/logs/job.log`;
  const long = 'L'.repeat(5000);
  writeFileSync(log, `before\n${long}\nafter\n`);
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('after'), 30_000, 'the lines around the long one');
  await sigterm(agent);
  appendFileSync(log, 'later\n');
  agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('later'), 30_000, 'the line after the restart');
  await sigterm(agent);
  const ids = receiver.records.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'nothing sent twice');
  const fragments = receiver.records.filter((r) => r.body.startsWith('L'));
  assert.equal(fragments.map((f) => f.body).join(''), long);
  assert.equal(fragments.length, 5);
  assert.ok(fragments.slice(0, -1).every((f) => f.attributes[recordAttr.split] === true));
  const later = receiver.records.find((r) => r.body === 'later')!;
  assert.equal(Number(later.attributes[recordAttr.logOffset]), Buffer.byteLength(`before\n${long}\nafter\n`));
});

void test('a 50 MB line and a binary file: split or flagged, the agent survives and other lines keep flowing', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const big = Buffer.alloc(50 * 1024 * 1024, 'b');
  writeFileSync(`${dir}/logs/big.log`, Buffer.concat([big, Buffer.from('\nafter big\n')]));
  const binary = Buffer.alloc(256 * 1024);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 7919) % 256;
  writeFileSync(`${dir}/logs/blob.log`, binary);
  writeFileSync(`${dir}/logs/plain.log`, 'plain line\n');
  const agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('after big') && receiver.bodies().has('plain line'), 60_000, 'the lines after the big one');
  const fragments = receiver.records.filter((r) => r.body.startsWith('b') && r.attributes[recordAttr.logFilePath] === `${dir}/logs/big.log`);
  // Default max_line_bytes is 1 MiB: 50 fragments, all but the last flagged split.
  assert.equal(fragments.reduce((n, f) => n + f.body.length, 0), big.length);
  assert.equal(fragments.filter((f) => f.attributes[recordAttr.split] === true).length, 49);
  const blob = receiver.records.filter((r) => r.attributes[recordAttr.logFilePath] === `${dir}/logs/blob.log`);
  assert.ok(blob.length > 0);
  assert.ok(blob.some((r) => r.attributes[recordAttr.invalidUtf8] === true) && blob.some((r) => r.attributes[recordAttr.nulBytes] === true));
  assert.equal(agent.child.exitCode, null, 'the agent is still running');
  // Peak memory is reported, not asserted (no timed or machine-dependent assertions): the pipeline
  // queue is bounded in bytes too (8 MiB of bodies), so 50 fragments of 1 MiB are not all held at once.
  const status = readFileSync(`/proc/${agent.child.pid}/status`, 'utf8');
  t.diagnostic(`agent peak RSS with a 50 MB line: ${/VmHWM:\s*(\d+ kB)/.exec(status)?.[1] ?? 'unknown'}`);
  await sigterm(agent);
});

void test('a file the agent may not read: a clear error naming it, and the other files keep flowing', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  await mkdir(`${dir}/state`);
  // The agent runs without the capabilities to override file permissions: it may write its state
  // (it owns the folders) but not read secret.log, whose mode grants nobody anything.
  writeFileSync(`${dir}/logs/secret.log`, 'hidden\n', { mode: 0o000 });
  await chmod(`${dir}/logs/secret.log`, 0o000);
  writeFileSync(`${dir}/logs/open.log`, 'visible 1\n', { mode: 0o644 });
  const agent = spawnAgent(t, config, { unprivileged: true });
  await until(() => receiver.bodies().has('visible 1'), 30_000, 'the readable file');
  appendFileSync(`${dir}/logs/open.log`, 'visible 2\n');
  await until(() => receiver.bodies().has('visible 2'), 30_000, 'more of the readable file');
  await sigterm(agent);
  assert.equal(receiver.bodies().has('hidden'), false);
  const errors = logged(agent, 'CIA_ERR_SOURCE_READ').filter((e) => e.path === `${dir}/logs/secret.log`);
  assert.ok(errors.length >= 1, agent.log.join('\n'));
  assert.match(String(errors[0]!.err), /EACCES|permission denied/i);
  assert.ok((await readdir(`${dir}/state/checkpoints`)).includes('logs.json'));
});
