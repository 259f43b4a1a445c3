// Fault tests of the file source with real processes: the agent runs as a child process, is
// SIGKILLed, and restarted; a local receiver decodes what it ships. "Delivered" means decoded by
// the receiver; duplicates are allowed (at-least-once) but must carry the id of the first copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { assertExactlyOnceAfterDedup, numberedLine, sigkill, spawnAgent, startReceiver, until, writeAgentConfig } from './harness.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-audit-faults-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(`${dir}/logs`);
  return dir;
}

void test('10 SIGKILLs during 200,000 lines written at full speed: every line delivered, exactly once after dropping duplicate ids', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/job.log`;
  const total = 200_000;
  const kills = 10;
  const expected = Array.from({ length: total }, (_, i) => numberedLine('line', i, 199));
  const fd = openSync(log, 'a');
  t.after(() => closeSync(fd));
  let written = 0;
  const writeBurst = async (count: number): Promise<void> => {
    const end = Math.min(total, written + count);
    while (written < end) {
      const upTo = Math.min(end, written + 2000);
      writeSync(fd, expected.slice(written, upTo).join('\n') + '\n');
      written = upTo;
      await new Promise((r) => setImmediate(r));
    }
  };

  let agent = spawnAgent(t, config);
  for (let k = 0; k < kills; k++) {
    const before = receiver.records.length;
    const burst = writeBurst(total / kills);
    // Kill once the agent is shipping (so the kill lands mid-stream, with batches in flight).
    await until(() => receiver.records.length >= before + 3000, 60_000, `records after restart ${k}`);
    await sigkill(agent);
    await burst;
    agent = spawnAgent(t, config);
  }
  assert.equal(written, total);
  await until(() => receiver.bodies().size >= total, 120_000, 'every line');
  await sigkill(agent);
  const { duplicates } = assertExactlyOnceAfterDedup(receiver.records, expected);
  // A kill may tear the disk buffer's last entry; that must be declared as a torn tail, nothing else.
  for (const gap of receiver.bufferDamage) assert.match(gap.body, /torn write/, gap.body);
  t.diagnostic(
    `${receiver.records.length} records received for ${total} lines: ${duplicates} re-sent with their ids after ${kills} SIGKILLs; ` +
      `${receiver.bufferDamage.length} torn buffer tails declared`,
  );
});

void test('a SIGKILL while the last line has no newline: the line arrives whole, once, after the restart', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url, source: { partial_line_timeout_ms: 60_000 } });
  const log = `${dir}/logs/step.log`;
  appendFileSync(log, 'first\nsecond\nhalf of the th');
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('second'), 20_000, 'the complete lines');
  await sigkill(agent);
  appendFileSync(log, 'ird line\nfourth\n');
  agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('fourth'), 20_000, 'the lines after the restart');
  await sigkill(agent);
  assertExactlyOnceAfterDedup(receiver.records, ['first', 'second', 'half of the third line', 'fourth']);
});

void test('rename rotation while downstream is blocked: the rotated file is read to its end, then the new one', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/app.log`;
  const expected = Array.from({ length: 30_000 }, (_, i) => numberedLine('rot', i, 120));
  appendFileSync(log, expected.slice(0, 1000).join('\n') + '\n');
  const agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= 1000, 20_000, 'the first lines');
  receiver.blocked = true;
  appendFileSync(log, expected.slice(1000, 20_000).join('\n') + '\n');
  // logrotate's default: rename (out of the include pattern), then a new file at the old name.
  const { renameSync } = await import('node:fs');
  renameSync(log, `${log}.1`);
  appendFileSync(log, expected.slice(20_000).join('\n') + '\n');
  await new Promise((r) => setTimeout(r, 1500));
  receiver.blocked = false;
  await until(() => receiver.bodies().size >= expected.length, 60_000, 'every line of both files');
  await sigkill(agent);
  assertExactlyOnceAfterDedup(receiver.records, expected);
});

void test('copytruncate while writing: lines after the truncation are read from the start of the file', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/app.log`;
  const expected = Array.from({ length: 6000 }, (_, i) => numberedLine('ct', i, 80));
  appendFileSync(log, expected.slice(0, 3000).join('\n') + '\n');
  const agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= 3000, 20_000, 'the lines before the rotation');
  const { copyFileSync, truncateSync } = await import('node:fs');
  copyFileSync(log, `${log}.1`);
  truncateSync(log, 0);
  // More than was there before, at once: the size never looks smaller to the agent; the changed
  // first bytes give the truncation away.
  appendFileSync(log, expected.slice(3000).join('\n') + '\n');
  await until(() => receiver.bodies().size >= expected.length, 30_000, 'the lines after the truncation');
  await sigkill(agent);
  assertExactlyOnceAfterDedup(receiver.records, expected);
  assert.ok(receiver.records.some((r) => r.body === expected[3000]));
});

void test('a file deleted before it was read to its end is drained through the open descriptor', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const log = `${dir}/logs/step.log`;
  const expected = Array.from({ length: 20_000 }, (_, i) => numberedLine('del', i, 150));
  appendFileSync(log, expected.slice(0, 10).join('\n') + '\n');
  const agent = spawnAgent(t, config);
  await until(() => receiver.bodies().size >= 10, 20_000, 'the first lines');
  receiver.blocked = true;
  appendFileSync(log, expected.slice(10).join('\n') + '\n');
  await new Promise((r) => setTimeout(r, 300));
  await rm(log);
  await new Promise((r) => setTimeout(r, 1000));
  receiver.blocked = false;
  await until(() => receiver.bodies().size >= expected.length, 60_000, 'every line of the deleted file');
  await sigkill(agent);
  assertExactlyOnceAfterDedup(receiver.records, expected);
});

void test('inode reuse and many files with the same banner: identities stay right, nothing skipped', async (t) => {
  const dir = await tempDir(t);
  const receiver = await startReceiver(t);
  const config = await writeAgentConfig({ dir, include: [`${dir}/logs/*.log`], receiverUrl: receiver.url });
  const banner = 'Running with gitlab-runner 17.0.0\non runner-1 via host\n';
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) {
    appendFileSync(`${dir}/logs/job-${i}.log`, `${banner}job ${i} step\n`);
    expected.push(`job ${i} step`);
  }
  let agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('job 19 step') && receiver.records.length >= 60, 20_000, 'the jobs');
  await sigkill(agent);
  // While the agent is down, a job log is deleted and a new one written at the same path (ext4
  // and overlayfs tend to hand the freed inode out again), shorter than the old one's checkpoint.
  await rm(`${dir}/logs/job-0.log`);
  appendFileSync(`${dir}/logs/job-0.log`, 'new\n');
  expected.push('new');
  agent = spawnAgent(t, config);
  await until(() => receiver.bodies().has('new'), 20_000, 'the new file');
  await sigkill(agent);
  const ids = new Set(receiver.records.filter((r) => r.body === banner.split('\n')[0]).map((r) => r.id));
  assert.equal(ids.size, 20, 'each file\'s banner line has its own id');
  for (const b of expected) assert.ok(receiver.bodies().has(b), b);
});
